"""Issue 14, "Done when": the trade loop as a trader lives it, a whole Session (sync loop, gateway,
alert scheduler and queue, turn engine) on the simulator.

Open BTC long at market with a 2% stop; move the stop five times and the target twice (the gateway's
paths `/stop` and `/target` use); move the price through the early warning, then through the target
(the simulator's price controls). With the offline policy, and with a scripted model (the fake
Anthropic server, the real SDK). Throughout, the live view and the panel built from it are polled.
The scripted model holds at the early warning: "hold" is a recorded outcome (the alert's history
says so), not a failure, and nothing fires again for it.

Asserted: no stop_loss_verification alert at all; the panel never shows the protected position
without a stop (nor its stop as an entry); exactly one alert turn per crossing (one early warning,
one profit target); the partial close at the target executed. The realized risk at the stop against
the declared risk (item 14.1) is its own test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.gateway import Action
from revagent.models import utc_now
from revagent.risk import ModifyStop, OpenTrade, SetTarget, risk_usage
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually
from tests.alerts_runtime.test_stop_move_sim import panel_problems
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(120)
D = Decimal
PRICE = D("60000")
DECLARED = D("20")


@pytest.fixture
async def venue(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=7, prices={"BTC": str(PRICE)}, history_minutes=0) as sim:
        yield sim


async def start(monkeypatch: pytest.MonkeyPatch, *, model: FakeAnthropic | None) -> Session:
    if model is None:
        monkeypatch.setenv("REVAGENT_LLM__PROVIDER", "offline")
    else:
        monkeypatch.setenv("REVAGENT_LLM__BASE_URL", model.base_url)
        monkeypatch.setenv("REVAGENT_LLM__MODEL", "claude-sonnet-4-6")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    await session.start_runtime()
    await session.start_trading()
    await session.start_engine()
    return session


async def open_trade(session: Session) -> str:
    assert session.gateway is not None
    opened = await session.gateway.submit(
        OpenTrade(market="BTC", side="long", stop_px=PRICE * D("0.98"), risk_usd=DECLARED,
                  target_px=PRICE * D("1.05"), conviction=60), Action.command("e2e-open"))
    assert opened.status == "done", opened.message
    assert opened.trade_id is not None

    async def settled() -> bool:
        return session.sync is not None and session.sync.phase == "consistent" and not await panel_problems(session)

    await eventually(settled, timeout=15)
    return opened.trade_id


def scripted_model(trade_id: str) -> Any:
    """A model that holds at the early warning (issue 14.2: a valid, recorded outcome) and takes half
    off at the target (a text answer after the tool results)."""
    def respond(body: dict[str, Any]) -> Any:
        last = body["messages"][-1]
        content = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
        if any(block.get("type") == "tool_result" for block in content):
            return reply(text("Done."))
        said = json.dumps(content)
        n = len(body["messages"])
        if "profit_target" in said:
            return reply(text("Target reached: taking half off."),
                         tool("close_position", {"trade_id": trade_id, "fraction": "0.5", "reason": "target"},
                              id=f"toolu_pt_{n}"))
        return reply(text("Halfway to the stop, the thesis stands: holding."))  # the early warning: hold

    return respond


async def scenario(session: Session, sim: SimServer, trade_id: str, *, early_warning: str) -> None:
    """`early_warning`: what the early-warning turn decides (`acted`: the stop tightened; `hold`)."""
    assert session.gateway is not None and session.alerts is not None and session.journal is not None
    problems: list[str] = []
    stop_polling = asyncio.Event()

    async def poll() -> None:
        while not stop_polling.is_set():
            problems.extend(await panel_problems(session))
            await asyncio.sleep(0.01)

    poller = asyncio.create_task(poll(), name="e2e:poll")
    try:
        for i, stop in enumerate(("58850", "58900", "58950", "59000", "59050")):
            moved = await session.gateway.submit(ModifyStop(market="BTC", origin="human", stop_px=D(stop)),
                                                 Action.command(f"e2e-stop-{i}"))
            assert moved.status == "done", moved.message
            if i in (1, 3):
                target = D("63500") if i == 1 else D("64000")
                done = await session.gateway.submit(SetTarget(market="BTC", origin="human", target_px=target),
                                                    Action.command(f"e2e-target-{i}"))
                assert done.status == "done", done.message
        async def last_stop_in_view() -> Any:  # the view follows the exchange's order updates (websocket)
            p = (await session.account()).position("BTC")
            return p if p is not None and p.stop_px == D("59050") else None

        position = await eventually(last_stop_in_view, timeout=5)
        size = abs(position.size)
        entry = position.entry_px
        early = entry + (D("59050") - entry) / 2  # alerts.early_warning_fraction 0.5

        sch = session.alerts.scheduler

        async def armed() -> Any:  # the levels of the plan as it is now (a level armed late, past, never fires)
            levels = {v.key.slot: v.level for v in sch.trade_alerts() if v.key.alert_id == trade_id}
            return levels if levels.get("early_warning") == early and levels.get("profit_target") == 64000 else None

        await eventually(armed, timeout=10)
        sim.set_price("BTC", (early - 30).quantize(D(1)))  # through the early warning, above the stop
        await eventually(lambda: finished(session, "early_warning"), timeout=30)
        sim.set_price("BTC", D("64200"))  # through the target
        await eventually(lambda: finished(session, "profit_target"), timeout=30)

        async def halved() -> bool:
            p = (await session.account()).position("BTC")
            return p is not None and abs(p.size) < size

        await eventually(halved, timeout=15)
        await asyncio.sleep(1.0)  # any re-fire or stop report would come now
    finally:
        stop_polling.set()
        await poller

    history = await session.alerts.queue.history()
    kinds = [h["event"]["kind"] for h in history if h["event"]["alert_id"] == trade_id]
    assert sorted(kinds) == ["early_warning", "profit_target"]  # one alert turn per crossing, no stop report
    assert [h for h in history if h["event"]["kind"] == "stop_loss_verification"] == []
    decisions = {h["event"]["kind"]: (h["status"], h["extra"].get("decision")) for h in history
                 if h["event"]["alert_id"] == trade_id}
    assert decisions == {"early_warning": ("finished", early_warning), "profit_target": ("finished", "acted")}
    assert sorted({p[:150] for p in problems}) == []
    closes = [r for r in await session.journal.all() if r.role == "close" and r.trade_id == trade_id]
    assert [r.status for r in closes] == ["filled"]
    p = (await session.account()).position("BTC")
    assert p is not None and abs(p.size) == size - closes[0].filled_size
    assert closes[0].filled_size == pytest.approx(size / 2, rel=D("0.01"))
    assert p.stop_px is not None
    if early_warning == "acted":  # the offline policy tightened it, then moved it to break-even
        assert p.stop_px > D("59050")
    else:  # held at the early warning; the model only took half off at the target
        assert p.stop_px == D("59050")


async def finished(session: Session, kind: str) -> Any:
    assert session.alerts is not None
    history = await session.alerts.queue.history()
    if any(h["event"]["kind"] == kind and h["status"] == "finished" for h in history):
        return True
    return _Falsy([(h["trigger_key"], h["status"], h["extra"]) for h in history])


class _Falsy(list[Any]):
    """The queue's history so far (shown when a wait fails), falsy while the awaited turn is not done."""

    def __bool__(self) -> bool:
        return False


async def test_the_trade_loop_with_the_offline_policy(venue: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    session = await start(monkeypatch, model=None)
    try:
        trade_id = await open_trade(session)
        await scenario(session, venue, trade_id, early_warning="acted")
    finally:
        await session.stop("test finished")


async def test_the_trade_loop_with_a_scripted_model(venue: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeAnthropic() as fake:
        session = await start(monkeypatch, model=fake)
        try:
            trade_id = await open_trade(session)
            fake.script(*[scripted_model(trade_id)] * 40)
            await scenario(session, venue, trade_id, early_warning="hold")
            assert any("close_position" in json.dumps(r.body.get("messages", [])) for r in fake.requests)
        finally:
            await session.stop("test finished")


async def test_the_realized_risk_at_the_stop_is_the_declared_risk(venue: SimServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    session = await start(monkeypatch, model=None)
    try:
        await open_trade(session)
        assert session.risk is not None
        view = await session.account()
        usage = risk_usage(view, await session.risk.settings(), await session.risk.get(), utc_now())
        [btc] = [m for m in usage.markets if m.market == "BTC"]
        assert D("0.97") <= btc.open_risk_usd / DECLARED <= D("1.03"), btc.open_risk_usd
    finally:
        await session.stop("test finished")
