"""Issue 14.3 end to end on the simulator: moving a stop (and the target) again and again through the
gateway's modify path, as `/stop` and `/target` do, while the live view, the panel and the
scheduler's stop check are polled. Nobody may report a missing or wrong stop during a move, the panel
never shows the position without a stop (nor its new stop as an entry), and once the gateway says the
target moved, the panel shows the new target."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.alerts.runner import TurnOutcome, thread_id_for
from revagent.alerts.service import AlertService
from revagent.config import load_config
from revagent.events import AccountChanged, OrderUpdated, StoreChanged
from revagent.exchange.sim import SimServer
from revagent.gateway import Action
from revagent.models import utc_now
from revagent.risk import ModifyStop, OpenTrade, SetTarget, risk_usage
from revagent.runtime.session import Session
from revagent.store.alert_events import AlertKind
from revagent.store.alert_queue import QueuedAlert
from revagent.tui.panel_model import PanelModel, render_orders, render_positions, render_risk
from revagent.tui.port import PanelSnapshot
from tests.alerts_runtime.conftest import FAST, eventually
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(90)
D = Decimal


@pytest.fixture
async def trading(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Session, SimServer]]:
    async with paper_venue(monkeypatch, seed=5, prices={"BTC": "60000"}, history_minutes=0) as sim:
        cfg = load_config()
        session = Session(cfg, cfg.wallet(), role="daemon")
        await session.start(serve_commands=False)
        try:
            yield session, sim
        finally:
            await session.stop("test finished")


async def panel_problems(session: Session) -> list[str]:
    """What the live view and the panel built from it show wrong about the BTC position right now."""
    assert session.risk is not None
    view = await session.account()
    out: list[str] = []
    p = view.position("BTC")
    if p is None:
        return ["no BTC position in the live view"]
    if p.stop_px is None:
        out.append("the live view has no stop")
    if any(e.market == "BTC" for e in view.entries):
        out.append(f"an order listed as an entry: {view.entries}")
    settings, state = await session.risk.settings(), await session.risk.get()
    usage = risk_usage(view, settings, state, utc_now())
    model = PanelModel()
    model.apply_snapshot(PanelSnapshot(account=view, usage=usage))
    positions, risk, orders = (render_positions(model).plain, render_risk(usage).plain, render_orders(view).plain)
    if "stop NONE" in positions:
        out.append("panel: stop NONE")
    if "NO STOP" in risk:
        out.append("panel: NO STOP")
    if "entry" in orders:
        out.append(f"panel orders: {orders!r}")
    return out


async def test_moving_the_stop_and_target_never_shows_an_unprotected_position(
        trading: tuple[Session, SimServer]) -> None:
    session, _sim = trading
    turns: list[str] = []

    async def handler(item: QueuedAlert) -> TurnOutcome:
        turns.append(item.event.trigger_key)
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="seen")

    await session.start_trading()
    service = AlertService.for_session(session, handler=handler, stream_mids=False, poll_marks=False, timings=FAST)
    await service.start(session.tasks)
    assert session.gateway is not None and session.risk is not None and session.sync is not None
    await session.risk.set("stop_grace", "0s")
    opened = await session.gateway.submit(
        OpenTrade(market="BTC", side="long", stop_px=D("58800"), risk_usd=D("20"), target_px=D("63000"),
                  conviction=60), Action.command("open-moves"))
    assert opened.status == "done", opened.message
    sch = service.scheduler
    await eventually(lambda: settled(session), timeout=10)
    assert await sch.refresh_trades() == []

    problems: list[str] = []
    reported: list[str] = []

    stop_polling = asyncio.Event()

    async def poll() -> None:
        while not stop_polling.is_set():  # (a flag, not a cancel: redis-py can swallow a cancel)
            problems.extend(await panel_problems(session))
            for v in await sch.refresh_trades():  # the scheduler's own stop check (and repair)
                reported.append(f"{v.check.status.value}: {v.check.detail}")
            await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll(), name="test:poll")
    try:
        for i, stop in enumerate(("58900", "59000", "59100", "59200", "59300")):
            moved = await session.gateway.submit(ModifyStop(market="BTC", origin="human", stop_px=D(stop)),
                                                 Action.command(f"stop-{i}"))
            assert moved.status == "done", moved.message
            await asyncio.sleep(0.15)
            if i == 1:
                await _target(session, D("63500"), None, "target-1")
            if i == 3:
                await _target(session, D("64000"), D("64000"), "target-2")
        await asyncio.sleep(0.5)
    finally:
        stop_polling.set()
        await poller
    assert reported == []
    assert sorted({p[:150] for p in problems}) == []
    history = [h["trigger_key"] for h in await service.queue.history()]
    assert [k for k in history + turns if AlertKind.STOP_LOSS_VERIFICATION.value in k] == []
    view = await session.account()
    p = view.position("BTC")
    assert p is not None and p.stop_px == D("59300") and p.planned_stop_px == D("59300")


async def _target(session: Session, target: Decimal, take_profit: Decimal | None, key: str) -> None:
    assert session.gateway is not None
    await asyncio.sleep(0.6)  # the snapshots the last stop move asked for are over
    events = session.bus.subscribe(AccountChanged, OrderUpdated, StoreChanged)
    done = await session.gateway.submit(SetTarget(market="BTC", origin="human", target_px=target,
                                                  take_profit_px=take_profit), Action.command(key))
    assert done.status == "done", done.message
    # "✓ BTC target ..." is on the screen. The panel re-reads the live view on these events (tui/routing):
    # after one of them, within a moment (not at the next periodic snapshot), it shows the new target.
    seen: list[str] = []
    try:
        async with asyncio.timeout(1.0):
            while True:
                event = await events.get()
                view = await session.account()
                p = view.position("BTC")
                model = PanelModel()
                model.apply_snapshot(PanelSnapshot(account=view))
                shown = render_positions(model).plain
                seen.append(f"{event.type}: target {p.target_px if p else None}")
                if p is not None and p.target_px == target and f"target {target:,.0f}" in shown:
                    return
    except TimeoutError:
        raise AssertionError(f"the panel still shows the old target after {seen}") from None
    finally:
        events.close()


async def settled(session: Session) -> bool:
    """The sync loop is consistent and the view shows the trade with its stop."""
    return session.sync is not None and session.sync.phase == "consistent" and not await panel_problems(session)


async def test_adding_to_a_trade_never_reports_its_stop_wrong(trading: tuple[Session, SimServer]) -> None:
    """An add moves the whole position to the add's stop (`_consolidate_stops`): from the send to the
    consolidated stop, the scheduler's stop check never reports the stop missing or wrong."""
    session, _sim = trading
    turns: list[str] = []

    async def handler(item: QueuedAlert) -> TurnOutcome:
        turns.append(item.event.trigger_key)
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="seen")

    await session.start_trading()
    service = AlertService.for_session(session, handler=handler, stream_mids=False, poll_marks=False, timings=FAST)
    await service.start(session.tasks)
    assert session.gateway is not None and session.risk is not None and session.sync is not None
    await session.risk.set("stop_grace", "0s")
    opened = await session.gateway.submit(
        OpenTrade(market="BTC", side="long", origin="human", stop_px=D("58800"), risk_usd=D("10"), conviction=60),
        Action.command("open-add"))
    assert opened.status == "done", opened.message
    sch = service.scheduler
    await eventually(lambda: settled(session), timeout=10)
    assert await sch.refresh_trades() == []

    reported: list[str] = []
    stop_polling = asyncio.Event()

    async def poll() -> None:
        while not stop_polling.is_set():
            for v in await sch.refresh_trades():
                reported.append(f"{v.check.status.value}: {v.check.detail}")
            await asyncio.sleep(0.002)

    poller = asyncio.create_task(poll(), name="test:poll-add")
    try:
        for i, stop in enumerate(("59000", "59200")):
            added = await session.gateway.submit(
                OpenTrade(market="BTC", side="long", origin="human", stop_px=D(stop), risk_usd=D("4"), conviction=60),
                Action.command(f"add-{i}"))
            assert added.status == "done", added.message
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.5)
    finally:
        stop_polling.set()
        await poller
    assert reported == []
    history = [h["trigger_key"] for h in await service.queue.history()]
    assert [k for k in history + turns if AlertKind.STOP_LOSS_VERIFICATION.value in k] == []
    view = await session.account()
    p = view.position("BTC")
    assert p is not None and p.stop_px == D("59200")
