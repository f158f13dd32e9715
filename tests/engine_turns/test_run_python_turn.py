"""`run_python` end to end: a scripted model (the fake Anthropic server, the real SDK) reads candles of
the simulator with `get_candles`, then computes the ATR distance itself in the python worker (pandas,
and the project's indicator functions) and gets the same numbers; plus the tool's figure, its compact
result and its refusal where no sandbox works."""

from __future__ import annotations

import ast
import asyncio
import base64
import dataclasses
import json
import stat
from datetime import datetime
from pathlib import Path

import pytest

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.service import jsonl_event
from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.events import TurnEvent
from revagent.models import utc_now
from revagent.worker import WorkerPool
from revagent.worker import sandbox as sandbox_mod
from revagent.worker.figures import FigureStore
from tests.engine_turns.test_tools_sim import Desk, desk  # noqa: F401  - the simulator desk fixture
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool
from tests.worker.conftest import confinement_reason

pytestmark = pytest.mark.timeout(120)

ATR_CODE = """
import pandas as pd
h, l, c = df["high"], df["low"], df["close"]
prev = c.shift()
tr = pd.concat([h - l, (h - prev).abs(), (l - prev).abs()], axis=1).max(axis=1)
tr.iloc[0] = h.iloc[0] - l.iloc[0]
atr_pd = tr.iloc[:14].mean()
for x in tr.iloc[14:]:
    atr_pd = (atr_pd * 13 + x) / 14
atr_ind = indicators.atr(h.tolist(), l.tolist(), c.tolist(), 14)[-1]
ema20 = indicators.ema(c.tolist(), 20)[-1]
print(f"{len(df)} candles, last close {c.iloc[-1]}")
{"atr_pandas": float(atr_pd), "atr_indicators": atr_ind, "ema20": ema20,
 "distance_atr": float((c.iloc[-1] - ema20) / atr_pd)}
"""


def _frozen(d: Desk) -> Desk:
    """The same desk with a frozen clock: both tools read the very same candle window."""
    now: datetime = utc_now()
    return dataclasses.replace(d, services=dataclasses.replace(d.services, clock=lambda: now))


async def test_a_scripted_turn_computes_the_atr_distance_that_get_candles_reports(
        desk: Desk, fake: FakeAnthropic) -> None:  # noqa: F811
    reason = await asyncio.to_thread(confinement_reason)
    if reason is not None:
        pytest.skip(f"no confinement on this machine: {reason}")
    desk = _frozen(desk)
    candles = {"market": "BTC", "interval": "5m", "count": 100}
    fake.script(reply(text("Reading candles."), tool("get_candles", {**candles, "rows": 2}, id="toolu_candles")),
                reply(tool("run_python", {"code": ATR_CODE, "inputs": {"candles": [candles]}}, id="toolu_py")),
                reply(text("BTC is this many ATRs from its EMA20.")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=30)
    try:
        thread = await desk.ops.chat()
        outcome = await desk.runner(provider).submit(thread.id, "how far is BTC from its EMA20 in ATRs?")
    finally:
        await provider.aclose()
    assert outcome.status == "done", outcome.error
    read = fake.requests[1].body["messages"][-1]["content"][0]
    ran = fake.requests[2].body["messages"][-1]["content"][0]
    assert read["tool_use_id"] == "toolu_candles" and ran["tool_use_id"] == "toolu_py"
    assert ran.get("is_error") is not True, ran["content"]
    latest = json.loads(read["content"])["latest"]
    doc = json.loads(ran["content"] if isinstance(ran["content"], str) else ran["content"][0]["text"])
    value = ast.literal_eval(doc["value"])
    assert doc["stdout"].startswith("100 candles")
    assert value["atr_indicators"] == pytest.approx(value["atr_pandas"], rel=1e-12)
    assert float(f"{value['atr_pandas']:.6g}") == latest["atr14"]
    assert float(f"{value['ema20']:.6g}") == latest["ema20"]
    expected = (latest["close"] - value["ema20"]) / value["atr_pandas"]
    assert value["distance_atr"] == pytest.approx(expected, rel=1e-9)
    assert await desk.services.journal.all() == []  # it decided nothing


async def test_a_figure_comes_back_as_an_image_and_big_output_is_cut(desk: Desk) -> None:  # noqa: F811
    reason = await asyncio.to_thread(confinement_reason)
    if reason is not None:
        pytest.skip(f"no confinement on this machine: {reason}")
    pool = WorkerPool()
    services = dataclasses.replace(desk.services, python=pool)
    ctx = ToolContext("th_py", "toolu_fig", "chat", "autonomous", services)
    try:
        code = "print('é' * 50_000)\ndf['close'].plot()\nplt.title('BTC')\nlen(df)"
        result = await default_tools().execute(
            "run_python", {"code": code, "inputs": {"candles": [{"market": "BTC", "interval": "5m", "count": 50}]}},
            ctx)
    finally:
        await pool.aclose()
    assert not result.is_error, result.content
    assert result.image is not None and base64.b64decode(result.image.data_b64)[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(result.content)
    assert doc["value"] == "50"
    assert doc["stdout"].startswith("é" * 100) and doc["stdout"].endswith("more characters cut]")
    assert len(result.content) < 8_000  # compact: the transcript never carries the 50,000 characters
    assert "figure" in doc and result.data["code"] == code


async def test_the_tool_refuses_where_no_sandbox_works(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(sandbox_mod, "detect", lambda: "the python worker needs util-linux `unshare` (not found)")
    ctx = ToolContext("th_py", "toolu_refused", "chat", "autonomous", desk.services)
    result = await default_tools().execute("run_python", {"code": "open('/tmp/ran', 'w')"}, ctx)
    assert result.is_error
    assert "run_python refused: no sandbox on this machine" in result.content and "not run" in result.content


async def test_the_snapshot_funding_and_closed_trades_come_in_as_data(desk: Desk) -> None:  # noqa: F811
    reason = await asyncio.to_thread(confinement_reason)
    if reason is not None:
        pytest.skip(f"no confinement on this machine: {reason}")
    ctx = ToolContext("th_py", "toolu_inputs", "chat", "autonomous", desk.services)
    code = ("print(sorted(snapshot)[:3], type(trades).__name__, len(trades))\n"
            "f = funding['BTC']\n"
            "list(f.columns)")
    inputs = {"snapshot": True, "closed_trades": 5, "funding": [{"market": "BTC", "hours": 24}]}
    result = await default_tools().execute("run_python", {"code": code, "inputs": inputs}, ctx)
    assert not result.is_error, result.content
    doc = json.loads(result.content)
    assert "DataFrame 0" in doc["stdout"]  # no closed trade yet: an empty frame
    assert "'account'" in doc["stdout"]  # the snapshot's sections, as a dict
    assert doc["value"] == "['t_ms', 'funding_rate', 'premium']"  # the simulator's funding history (may be empty)


async def test_a_turns_figure_is_saved_and_its_tool_result_event_carries_the_path(
        desk: Desk, fake: FakeAnthropic, tmp_path: Path) -> None:  # noqa: F811
    """What `revagent ask --json` streams (the runner's `tool_result` event) names the PNG saved under
    the session's data dir, owner-only, with the chart's first line as a sparkline."""
    reason = await asyncio.to_thread(confinement_reason)
    if reason is not None:
        pytest.skip(f"no confinement on this machine: {reason}")
    figures = FigureStore(tmp_path / "figures" / "paper", keep=10)
    pool = WorkerPool(figures=figures)
    desk = dataclasses.replace(desk, services=dataclasses.replace(desk.services, python=pool))
    code = "plt.plot(list(range(20)) + list(range(20, 0, -1)))\nplt.title('up then down')"
    fake.script(reply(tool("run_python", {"code": code}, id="toolu_chart")), reply(text("Plotted.")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=30)
    events: list[TurnEvent] = []
    try:
        thread = await desk.ops.chat()
        outcome = await desk.runner(provider).submit(thread.id, "plot it", listener=events.append)
    finally:
        await provider.aclose()
        await pool.aclose()
    assert outcome.status == "done", outcome.error
    result = next(e.data for e in events if e.kind == "tool_result")
    assert result["image"] is True and not result["is_error"], result
    path = Path(result["figure_path"])
    assert path.parent == figures.directory and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    spark = result["figure_sparkline"]
    assert 8 <= len(spark) <= 48 and set(spark) <= set("▁▂▃▄▅▆▇█")
    assert spark[0] == "▁" and spark[-1] == "▁" and "█" in spark  # up, then down
    assert json.dumps(jsonl_event("tool_result", result))  # an `ask --json` line as is
    sent = fake.requests[1].body["messages"][-1]["content"][0]
    assert str(path) not in json.dumps(sent)  # the host path is for the trader, not the model
