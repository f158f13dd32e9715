"""Issue 22.4 (one owner for risk upkeep): a halt written through the command channel is on the bus as
`RiskStateChanged` at once, not at the sync's next risk tick (`sync.risk_interval`, 5 s), so the UI
and the alerts see it within 100 ms. End to end: a daemon session on the simulator serving its
command channel, the halt sent as another process would (`remote.call_once`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.events import RiskStateChanged
from revagent.exchange.sim import SimServer
from revagent.runtime.remote import call_once
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=5, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


async def test_a_halt_via_the_command_channel_reaches_the_bus_within_100_ms(sim: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start()
    try:
        await session.start_trading()
        sync = session.sync
        assert sync is not None
        await eventually(lambda: asyncio.sleep(0, sync.phase == "consistent"), timeout=60)
        changes = session.bus.subscribe(RiskStateChanged)
        await sync.update_risk()  # the first tick has published the state as it is ("normal")
        await asyncio.sleep(0.2)
        while not changes.queue.empty():
            changes.queue.get_nowait()
        result, via = await call_once(cfg, cfg.wallet(), "risk.halt", {"by": "test"})
        answered = time.monotonic()
        assert via == "owner" and result["halted"] is True
        event = await asyncio.wait_for(changes.get(), timeout=sync.options.risk_interval.total_seconds() + 5)
        late = time.monotonic() - answered
        assert isinstance(event, RiskStateChanged) and event.state == "halted"
        assert late < 0.1, f"the halt reached the bus {late:.3f} s after the owner answered"
    finally:
        await session.stop("test finished")
