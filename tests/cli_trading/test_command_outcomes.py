"""Commands sent to a wallet's owner report what really happened (issue 14 item 6): a command held
past its sender's deadline (here: an entry waiting for the sync during a websocket outage) is not
run, and the sender is told so; a command the owner started is followed past the deadline to its
outcome; a command taken after its deadline is skipped and the reply stream says so; the same
typed command sent again while its outcome is unknown reuses its id and runs once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from revagent.config import load_config
from revagent.errors import NotRunError, OutcomeUnknownError
from revagent.exchange.sim import SimServer
from revagent.exchange.sim.controls import SimControls
from revagent.runtime.commands import Emit
from revagent.runtime.remote import call_once
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(120)

OPEN_ARGS = {"market": "BTC", "side": "long", "stop": "59000", "risk": "20", "origin": "human"}


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_SYNC__ENTRY_WAIT", "15s")
    async with paper_venue(monkeypatch, seed=5, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


@pytest.fixture
async def owner(sim: SimServer) -> AsyncIterator[Session]:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start()
    try:
        await session.start_trading()
        assert session.sync is not None
        await session.sync.wait_consistent(30)
        yield session
    finally:
        await session.stop("test finished")


async def btc_size(session: Session) -> Decimal:
    position = (await session.fresh_account()).position("BTC")
    return position.size if position is not None else Decimal(0)


async def test_an_entry_held_past_its_deadline_is_not_run_and_the_sender_is_told(
        sim: SimServer, owner: Session) -> None:
    cfg = load_config()
    assert owner.sync is not None and owner.journal is not None
    async with SimControls(sim.base_url) as ctl:
        await ctl.websocket_outage()
        sync = owner.sync
        await eventually(lambda: asyncio.sleep(0, sync.phase != "consistent"), timeout=10)
        sender = asyncio.create_task(call_once(cfg, cfg.wallet(), "trade.open",
                                               {**OPEN_ARGS, "action_id": "c_held_1"}, timeout=1.5, settle=20))
        await asyncio.sleep(2.5)  # past the sender's deadline, the entry still waits for the sync
        await ctl.websocket_outage(False)
        await eventually(lambda: asyncio.sleep(0, sync.phase == "consistent"), timeout=20)
        with pytest.raises(NotRunError) as failed:
            await sender
    assert "not run" in failed.value.message and "nothing was done" in failed.value.message
    await asyncio.sleep(1)
    assert await btc_size(owner) == 0  # it did not run after the sender gave up
    assert await owner.journal.for_action("cmd:c_held_1") == []


async def test_a_started_command_is_followed_past_the_deadline_to_its_outcome(owner: Session) -> None:
    from revagent.runtime.commands import still_wanted

    async def slow(args: dict[str, Any], emit: Emit) -> Any:
        await still_wanted()  # passes: the command starts before its deadline
        await asyncio.sleep(2.5)
        return {"finished": True}

    owner.register_command("trade.slow_test", slow)
    cfg = load_config()
    t0 = time.monotonic()
    result, via = await call_once(cfg, cfg.wallet(), "trade.slow_test", {}, timeout=1.0, settle=10)
    assert (result, via) == ({"finished": True}, "owner")
    assert time.monotonic() - t0 >= 2.4


async def test_a_started_command_without_an_outcome_is_reported_unknown(owner: Session) -> None:
    from revagent.runtime.commands import still_wanted

    async def stuck(args: dict[str, Any], emit: Emit) -> Any:
        await still_wanted()
        await asyncio.sleep(6)
        return {"finished": True}

    owner.register_command("trade.stuck_test", stuck)
    cfg = load_config()
    with pytest.raises(OutcomeUnknownError) as unknown:
        await call_once(cfg, cfg.wallet(), "trade.stuck_test", {}, timeout=0.5, settle=1)
    assert unknown.value.exit_code == 9
    assert "may have run" in unknown.value.message and "revagent orders" in unknown.value.message


async def test_a_command_taken_after_its_deadline_is_skipped_and_says_so(owner: Session) -> None:
    ran: list[str] = []

    async def busy(args: dict[str, Any], emit: Emit) -> Any:
        await asyncio.sleep(2)
        return {}

    async def later(args: dict[str, Any], emit: Emit) -> Any:
        ran.append("later")
        return {}

    owner.register_command("busy_test", busy)
    owner.register_command("later_test", later)
    cfg = load_config()
    first = asyncio.create_task(call_once(cfg, cfg.wallet(), "busy_test", {}, timeout=10))
    await asyncio.sleep(0.3)
    with pytest.raises(NotRunError) as skipped:  # queued behind `busy`, taken after its deadline
        await call_once(cfg, cfg.wallet(), "later_test", {}, timeout=0.5, settle=5)
    await first
    assert "reached its deadline before the owner started it" in skipped.value.message
    assert ran == []
