"""Issue 16 item 3: under a running session (daemon) the snapshot's HEALTH is the real one: the sync
phase, the websocket's state from the bus's ConnectionChanged and the age of the last account update,
through a websocket outage on the simulator and back; the performance line follows the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.exchange.sim.controls import SimControls
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_LLM__PROVIDER", "offline")
    async with paper_venue(monkeypatch, seed=11, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


async def test_the_daemons_snapshot_shows_the_websocket_outage_and_its_end(sim: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    try:
        await session.start_runtime()
        await session.start_trading()
        engine = await session.start_engine()
        source = engine.runner.services.snapshot
        assert source is not None and session.sync is not None
        sync = session.sync

        async def health() -> str:
            return (await source.build()).section("health")

        await eventually(lambda: asyncio.sleep(0, sync.phase == "consistent"), timeout=20)
        text = await health()
        assert text.startswith("## HEALTH\nsync consistent  websocket connected  last account update ")
        assert "unknown" not in text and "STALE" not in text
        assert "## CLOSED TRADES\nall: 0 trades" in (await source.build()).text()  # the ledger's book is wired

        async with SimControls(sim.base_url) as ctl:
            assert await ctl.websocket_outage() >= 1

            async def down() -> bool:
                return "websocket DOWN since " in await health()

            await eventually(down, timeout=10)
            text = await health()
            assert "sync checking (websocket down" in text and "STALE: open no new risk" in text
            await ctl.websocket_outage(down=False)

            async def back() -> bool:
                return "sync consistent  websocket connected" in await health()

            await eventually(back, timeout=20)
    finally:
        await session.stop("test finished")
