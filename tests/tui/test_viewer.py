"""A TUI opened while a daemon owns the wallet becomes a viewer of the daemon's session: the panel
comes from the owner (`account.view`), chat runs in the owner's engine and streams back, slash
commands go to the owner, notes go through the store. The owner runs in a thread with its own loop
(as another process would), on an in-process paper venue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from revagent.config import load_config
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.service import TurnEngine
from revagent.exchange.sim import SimConfig, SimServer
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.screens.confirm import ConfirmScreen
from revagent.tui.viewer_port import ViewerPort
from tests.tui.screen import screen_text


@dataclass
class Owner:
    loop: asyncio.AbstractEventLoop
    session: Session
    stop: asyncio.Event

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


@pytest.fixture
def owner(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Owner]:
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        sim = SimServer(SimConfig(seed=1, controls=True, manual_clock=True, start_ms=1_767_225_600_000))
        await sim.start()
        monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", sim.base_url)
        cfg = load_config()
        wallet = cfg.wallet()
        session = Session(cfg, wallet, role="daemon")
        await session.start()
        await session.start_trading()
        assert session.gateway and session.plans and session.journal and session.risk
        engine = TurnEngine.build(wallet=wallet, store=session.store, gateway=session.gateway, plans=session.plans,
                                  journal=session.journal, risk=session.risk, bus=session.bus,
                                  account=session.account, provider=OfflineProvider())
        for name, handler in engine.command_handlers().items():
            session.register_command(name, handler)
        stop = asyncio.Event()
        holder["owner"] = Owner(asyncio.get_running_loop(), session, stop)
        ready.set()
        await stop.wait()
        await engine.aclose()
        await session.stop("test over")
        await sim.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="owner-loop", daemon=True)
    thread.start()
    assert ready.wait(60), "the owner session did not start"
    own: Owner = holder["owner"]
    try:
        yield own
    finally:
        own.loop.call_soon_threadsafe(own.stop.set)
        thread.join(30)


async def wait_for(pilot: Any, cond: Any, rounds: int = 100) -> None:
    for _ in range(rounds):
        await pilot.pause(0.1)
        if cond():
            return


@pytest.mark.timeout(120)
async def test_a_second_screen_views_the_daemons_session(owner: Owner) -> None:
    cfg = load_config()
    port = await ViewerPort.open(cfg, cfg.wallet())
    try:
        initial = await port.load_snapshot()
        assert initial.account is not None and initial.status is not None, initial.problem
        app = RevagentApp(port, initial=initial, live_clock=False, refresh_interval=1.0)
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.active is not None)
            shown = screen_text(app)
            assert "(viewer)" in shown and "$10,000.00" in shown and "ACTIVE" in shown
            await pilot.press(*"hello owner", "enter")
            await wait_for(pilot, lambda: "No language model is configured" in screen_text(app))
            shown = screen_text(app)
            assert "you  hello owner" in shown and "No language model is configured" in shown
            app.input_box.value = "/note seen from the viewer"
            await pilot.press("enter")
            await wait_for(pilot, lambda: "✓ note" in screen_text(app))
            notes = owner.run(owner.session.store.notes.all())
            assert [n.text for n in notes] == ["seen from the viewer"]
            app.input_box.value = "/halt"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: "HALTED" in screen_text(app))
            assert owner.run(owner.session.risk.get()).halted  # type: ignore[union-attr]
            assert "HALTED: no new risk until you /resume" in screen_text(app)
    finally:
        await port.aclose()


@pytest.mark.timeout(120)
async def test_a_viewer_reads_the_owners_fresh_account_after_a_fill(owner: Owner) -> None:
    """Issue 23 item 7 for a viewer: a fill (mirrored from the owner) reads the exchange's figures at
    once, through the owner, instead of the owner's lagging live view."""
    from decimal import Decimal

    from revagent.events import FillRecorded
    from revagent.risk import AccountView

    cfg = load_config()
    port = await ViewerPort.open(cfg, cfg.wallet())
    port.events = port.mirror_feed
    try:
        initial = await port.load_snapshot()
        assert initial.account is not None, initial.problem
        app = RevagentApp(port, initial=initial, live_clock=False, refresh_interval=60.0)
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.active is not None)
            assert "$10,000.00" in screen_text(app)
            live = await owner.session.account()
            exchange = live.model_copy(update={"equity": Decimal("10001.28")})

            async def exchange_now() -> AccountView:  # the exchange's figures; the live view lags them
                return exchange

            owner.session._fresh_account = exchange_now
            await pilot.pause(0.5)  # the viewer's feed is subscribed
            owner.loop.call_soon_threadsafe(owner.session.bus.publish, FillRecorded(
                market="ETH", side="sell", px=Decimal("3118"), sz=Decimal("0.4"), fee=Decimal("0.5"),
                closed_pnl=Decimal("7")))
            await wait_for(pilot, lambda: "$10,001.28" in screen_text(app), rounds=50)
            assert "$10,001.28" in screen_text(app), screen_text(app)
    finally:
        await port.aclose()
