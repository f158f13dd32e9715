"""Issue 19, "Done when": a synthetic replay with a scripted model (the fake Anthropic server, the real
SDK) that opens a trade on a watcher alert and manages it on its trade-management alerts; the report
is checked against that run's ledger (same trades, same R, same equity path); the offline-policy
baseline runs in the same test; two identical runs give byte-identical report.json files."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from revagent.replay.driver import Replay, ReplaySpec
from revagent.replay.report import ledger_trades, run_and_report
from revagent.replay.seeds import Seeds
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool

pytestmark = pytest.mark.timeout(240)
D = Decimal
HOURS = 3.0
SEEDS = {"watchers": [{"id": "w-btc", "market": "BTC", "upper": "+0.25%", "lower": "-0.25%",
                       "thesis": "a break of the morning range", "setup": {"conviction": 60}}],
         "notes": [{"text": "replay test: trade the first break of the range"}]}
TRADE_ID = re.compile(r"\btr_[0-9a-f]{8}\b")
PRICE = re.compile(r"mid ([0-9][0-9,]*(?:\.[0-9]+)?) is")


def scripted_model() -> Any:
    """Opens a trade in the watcher's direction with a 0.3% stop and a 0.4% target; holds at the early
    warning; closes the whole trade at the profit target; ensures the stop when asked."""
    calls = {"n": 0}

    def respond(body: dict[str, Any]) -> Any:
        last = body["messages"][-1]
        content = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
        if any(block.get("type") == "tool_result" for block in content):
            return reply(text("Done."))
        said = json.dumps(content)
        calls["n"] += 1
        n = calls["n"]
        if "profit_target" in said:
            [trade_id, *_] = TRADE_ID.findall(said)
            return reply(text("Target: closing."), tool("close_position", {"trade_id": trade_id, "fraction": "1",
                                                                           "reason": "target"}, id=f"toolu_pt_{n}"))
        if "stop_loss_verification" in said:
            [trade_id, *_] = TRADE_ID.findall(said)
            return reply(text("Re-placing the stop."), tool("ensure_stop", {"trade_id": trade_id}, id=f"toolu_sl_{n}"))
        if "watcher" in said and "w-btc" in said:
            px = D(PRICE.findall(said)[0].replace(",", ""))
            side = "long" if "upper" in said else "short"
            sign = 1 if side == "long" else -1
            stop = (px * (1 - sign * D("0.003"))).quantize(D(1))
            target = (px * (1 + sign * D("0.004"))).quantize(D(1))
            return reply(text(f"The range broke: {side}."), tool("open_trade", {
                "market": "BTC", "side": side, "stop_px": str(stop), "target_px": str(target), "conviction": 60,
                "risk_usd": "20", "thesis": "the first break of the range",
                "invalidation": "back inside the range"}, id=f"toolu_open_{n}"))
        return reply(text("Holding: the thesis stands."))

    return respond


async def replay(out: Path, model: str | None) -> tuple[dict[str, Any], Replay]:
    spec = ReplaySpec(data="synthetic:11", out=out, hours=HOURS, model=model, seeds=Seeds(SEEDS))
    run = Replay(spec)
    original = run.aclose
    checked: dict[str, Any] = {}

    async def close_after_checking() -> None:  # read the run's own ledger before the session stops
        checked["trades"] = await ledger_trades(run)
        await original()

    run.aclose = close_after_checking  # type: ignore[method-assign]
    report, _ = await run_and_report(run)
    run.ledger = checked["trades"]  # type: ignore[attr-defined]
    return report, run


def check_against_ledger(report: dict[str, Any], run: Replay) -> None:
    trades = run.ledger  # type: ignore[attr-defined]
    assert [(t["market"], t["side"], t["status"], t["entry_vwap"], t["exit_vwap"], t["net_pnl"], t["r_multiple"])
            for t in report["trades"]] == [
        (t.market, t.side, t.status, str(t.entry_vwap), str(t.exit_vwap) if t.exit_vwap is not None else None,
         str(t.net_pnl), str(t.r_multiple) if t.r_multiple is not None else None) for t in trades]
    equity = {at: D(v) for at, v in report["equity"]}
    start = D(report["summary"]["start_equity"])
    realized = start
    for t in trades:  # flat after each close: the equity path is the start plus the realized net PnL
        if t.status != "closed":
            continue
        realized += t.net_pnl
        after = min(at for at in equity if at >= t.closed_at.isoformat().replace("+00:00", "Z"))
        assert abs(equity[after] - realized) <= D("0.01"), (after, equity[after], realized)
    assert D(report["summary"]["net_pnl"]) == sum((t.net_pnl for t in trades), D(0)).quantize(D("0.01"))


async def test_a_scripted_model_trades_a_synthetic_replay_and_two_runs_report_alike(
        revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVAGENT_LLM__FALLBACK", "")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    async with FakeAnthropic() as fake:  # a fresh fake per run: its prompt cache starts empty each time
        monkeypatch.setenv("REVAGENT_LLM__BASE_URL", fake.base_url)
        fake.script(*[scripted_model()] * 400)
        first, run = await replay(revagent_home / "out-a", "claude-sonnet-4-6")
        [trade, *_] = first["trades"]
        assert trade["thread_id"] == "alert:w-btc" and trade["tool_call"] == "C1"  # opened on the watcher alert
        assert trade["status"] == "closed" and trade["r_multiple"] is not None
        kinds = set(first["alert_turns"])
        assert "watcher" in kinds and kinds & {"early_warning", "profit_target"}, first["alert_turns"]
        assert first["tokens"]["claude-sonnet-4-6"]["calls"] > 0
        check_against_ledger(first, run)
    async with FakeAnthropic() as fake:
        monkeypatch.setenv("REVAGENT_LLM__BASE_URL", fake.base_url)
        fake.script(*[scripted_model()] * 400)
        await replay(revagent_home / "out-b", "claude-sonnet-4-6")
    a = (revagent_home / "out-a" / "report.json").read_bytes()
    b = (revagent_home / "out-b" / "report.json").read_bytes()
    assert a == b
    assert (revagent_home / "out-a" / "equity.png").stat().st_size > 1000
    assert "| T1 | BTC |" in (revagent_home / "out-a" / "report.md").read_text()

    baseline, run = await replay(revagent_home / "out-offline", None)  # the offline policy: no trade on a watcher
    assert baseline["trades"] == [] and baseline["alert_turns"]["watcher"] == {"finished": 1}
    assert baseline["tokens"] == {} or set(baseline["tokens"]) == {"offline"}
    check_against_ledger(baseline, run)
