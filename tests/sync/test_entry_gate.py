"""A session places no new entry until its sync phase is `consistent` (issue 6), end to end on the
simulator: an entry made at start-up waits for the first reconciliation; during a websocket outage
(phase `checking`) new entries are refused with the reason while protection still passes; a
one-shot shell session reconciles once before its first entry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.exchange.sim.controls import SimControls
from revagent.gateway import Action
from revagent.risk import ClosePosition, EnsureStop, OpenTrade
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_SYNC__ENTRY_WAIT", "1s")
    async with paper_venue(monkeypatch, seed=5, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


def long_btc(risk: str = "20") -> OpenTrade:
    return OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"), risk_usd=Decimal(risk),
                     target_px=Decimal("63000"), conviction=60)


async def started(role: str) -> Session:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role=role)  # type: ignore[arg-type]
    await session.start(serve_commands=False)
    return session


async def test_an_entry_at_start_up_waits_for_the_first_reconciliation(sim: SimServer) -> None:
    session = await started("daemon")
    try:
        await session.start_trading()
        assert session.gateway is not None and session.sync is not None
        assert session.sync.phase != "consistent"  # the reconciliation runs in the background
        result = await session.gateway.submit(long_btc(), Action.command("gate-1"))
        assert result.status == "done", result.message
        assert session.sync.last_report is not None  # it went through only once reconciled
        assert session.sync.phase == "consistent"
    finally:
        await session.stop("test finished")


async def test_during_a_websocket_outage_entries_are_refused_and_protection_passes(sim: SimServer) -> None:
    session = await started("daemon")
    try:
        await session.start_trading()
        gateway, sync = session.gateway, session.sync
        assert gateway is not None and sync is not None
        assert (await gateway.submit(long_btc(), Action.command("gate-2"))).status == "done"
        async with SimControls(sim.base_url) as ctl:
            assert await ctl.websocket_outage() >= 1
            await eventually(lambda: asyncio.sleep(0, sync.phase == "checking"), timeout=10)

            t0 = time.monotonic()
            refused = await gateway.submit(long_btc("10"), Action.command("gate-3"))
            waited = time.monotonic() - t0
            assert refused.status == "refused", refused.message
            reasons = " | ".join(r.message for r in (refused.verdict.reasons if refused.verdict else []))
            assert "the account is not in sync (phase checking, needs consistent): " in reasons
            assert "websocket" in reasons  # the phase's reason, in words
            assert waited >= 0.9  # it waited `entry_wait` (1 s) for the phase first
            preview = await gateway.preview(long_btc("10"))
            assert not preview.approved

            # protection never waits for the phase
            t0 = time.monotonic()
            ensured = await gateway.submit(EnsureStop(market="BTC"), Action.command("gate-4"))
            assert ensured.status == "done", ensured.message
            closed = await gateway.submit(ClosePosition(market="BTC", origin="human", fraction=Decimal("0.5")),
                                          Action.command("gate-5"))
            assert closed.status == "done", closed.message
            assert time.monotonic() - t0 < 0.9

            await ctl.websocket_outage(down=False)  # the stream comes back: reconcile, then entries pass
            await eventually(lambda: asyncio.sleep(0, sync.phase == "consistent"), timeout=20)
            # an add small enough that the trade stays under the per-trade cap (it binds the trade)
            again = await gateway.submit(long_btc("4"), Action.command("gate-6"))
            assert again.status == "done", again.message
    finally:
        await session.stop("test finished")


async def test_a_waiting_entry_never_holds_up_protection_and_goes_once_consistent(
        sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVAGENT_SYNC__ENTRY_WAIT", "30s")
    session = await started("daemon")
    try:
        await session.start_trading()
        gateway, sync = session.gateway, session.sync
        assert gateway is not None and sync is not None
        assert (await gateway.submit(long_btc(), Action.command("wait-1"))).status == "done"
        async with SimControls(sim.base_url) as ctl:
            await ctl.websocket_outage()
            await eventually(lambda: asyncio.sleep(0, sync.phase == "checking"), timeout=10)
            # an add the per-trade cap leaves room for (20 realized + 5 would be over 25 with the fees)
            entry = asyncio.create_task(gateway.submit(long_btc("4"), Action.command("wait-2")))
            await asyncio.sleep(0.2)
            assert not entry.done()  # waiting for the phase
            t0 = time.monotonic()
            # at the live stop: a stop at the per-trade cap would leave no room for the add below
            ensured = await gateway.submit(EnsureStop(market="BTC", stop_px=Decimal("59000")),
                                           Action.command("wait-3"))
            assert ensured.status == "done" and time.monotonic() - t0 < 2, ensured.message
            assert not entry.done()
            await ctl.websocket_outage(down=False)
            result = await asyncio.wait_for(entry, 25)
            assert result.status == "done", result.message  # it went as soon as the phase was consistent
    finally:
        await session.stop("test finished")


async def test_a_one_shot_shell_session_reconciles_before_its_first_entry(sim: SimServer) -> None:
    session = await started("cli")
    try:
        await session.start_trading()
        assert session.gateway is not None and session.sync is not None
        assert session.sync.last_report is None  # a shell command runs no sync loop
        preview = await session.gateway.preview(long_btc())
        assert preview.approved, [r.message for r in preview.reasons]
        assert session.sync.phase == "consistent" and session.sync.last_report is not None
    finally:
        await session.stop("test finished")
