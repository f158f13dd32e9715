"""The gateway's verdicts read no network in steady state (issue 18.1), end to end on the simulator: a
trading daemon session holds a protected position. Once a REST snapshot has confirmed the live view
after the gateway's last send, with nothing in flight, a verdict reads the live view: it is given with
`/info` failing. Right after a send (the view not yet confirmed), the verdict reads REST again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.gateway import Action
from revagent.risk import ModifyStop, OpenTrade
from revagent.runtime.session import Session
from tests.paper_venue import paper_venue


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_SYNC__SNAPSHOT_INTERVAL", "1s")
    async with paper_venue(monkeypatch, seed=7, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


@pytest.mark.timeout(90)
async def test_a_verdict_in_steady_state_reads_the_live_view_not_rest(sim: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    try:
        await session.start_trading()
        gateway, sync = session.gateway, session.sync
        assert gateway is not None and sync is not None
        opened = await gateway.submit(OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"),
                                                risk_usd=Decimal("20"), target_px=Decimal("63000"), conviction=60),
                                      Action.command("vs-1"))
        assert opened.status == "done", opened.message
        assert sync.settled_view(gateway.changed_at) is None  # just sent: the view is not confirmed yet
        deadline = time.monotonic() + 30
        while sync.settled_view(gateway.changed_at) is None:
            assert time.monotonic() < deadline, f"the view never settled (phase {sync.phase})"
            await asyncio.sleep(0.05)
        tighter = ModifyStop(market="BTC", origin="human", stop_px=Decimal("59200"))
        sim.inject_http_fault(502, count=10**9, path="/info")  # any REST read fails from here on
        try:
            started = time.monotonic()
            verdict = await asyncio.wait_for(gateway.preview(tighter), 5)
            took = time.monotonic() - started
        finally:
            sim.faults.clear()
        assert verdict.approved, verdict.reasons
        assert took < 0.5, f"the verdict took {took:.2f} s"
        position = sync.settled_view(gateway.changed_at)
        assert position is not None and position.position("BTC") is not None
    finally:
        await session.stop("test finished")
