"""Restarts (issue 12 item 10): a restarted daemon says which start-up phase it is in, and reaches
"trading on" (the sync `consistent`, new entries allowed) before the parts that need not block it
(the turn engine, the alert service) start. Its phase is in the store's meta, and `revagent status`
shows it. The order and the state at each phase are asserted here; the time they take is measured in
`benchmarks/restart_bench.py` (no timed tests in the suite)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.gateway import Action
from revagent.risk import OpenTrade
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_LLM__PROVIDER", "offline")
    async with paper_venue(monkeypatch, seed=12, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


@dataclass
class Seen:
    phase: str
    sync_phase: str | None
    engine: bool
    alerts: bool


class PhaseWatch(logging.Handler):
    """Each `start-up:` line of the session's log, with the session's state at that moment."""

    def __init__(self, session: Session) -> None:
        super().__init__(logging.INFO)
        self.session = session
        self.seen: list[Seen] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith("start-up: "):
            return
        s = self.session
        self.seen.append(Seen(message.removeprefix("start-up: ").split(" (")[0],
                              s.sync.phase if s.sync is not None else None, s.engine is not None,
                              s.alerts is not None))


async def status_json() -> dict[str, object]:
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "revagent", "status", "--json"],
                                  capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


async def test_a_restarted_daemon_is_trading_on_before_its_engine_and_says_so(
        sim: SimServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="revagent.runtime.session")
    cfg = load_config()
    # a previous session's state: an open trade with its stop, its fill in the ledger, a stored snapshot
    first = Session(cfg, cfg.wallet(), role="daemon")
    await first.start(serve_commands=False)
    try:
        await first.start_trading()
        assert first.gateway is not None and first.sync is not None
        sync = first.sync
        await eventually(lambda: asyncio.sleep(0, sync.phase == "consistent"), timeout=20)
        opened = await first.gateway.submit(OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"),
                                                      risk_usd=Decimal("20"), target_px=Decimal("63000"),
                                                      conviction=60), Action.command("restart-1"))
        assert opened.status == "done", opened.message
        await eventually(lambda: asyncio.sleep(0, bool((v := sync.view) and v.positions and v.triggers)),
                         timeout=20)
    finally:
        await first.stop("restart")

    session = Session(cfg, cfg.wallet(), role="daemon")
    watch = PhaseWatch(session)
    logging.getLogger("revagent.runtime.session").addHandler(watch)
    try:
        await session.start(serve_commands=False)
        await session.start_runtime()
        session.phase("running")  # what run_daemon says once start_runtime returned
        phases = [s.phase for s in watch.seen]
        assert phases == ["connecting to Redis, taking the lease", "trading: the venue, the agent's approval",
                          "sync: reconciling with the exchange", "trading on", "engine: the turn engine",
                          "alerts: loading the scheduler and the queue", "running"], phases
        at = {s.phase: s for s in watch.seen}
        on = at["trading on"]
        assert on.sync_phase == "consistent", "trading on means the sync is consistent"
        assert not on.engine and not on.alerts, "trading on comes before the engine and the alerts start"
        # the previous session's trade is the one the reconciliation found: adopted, with its stop
        assert session.sync is not None
        view = session.sync.view
        assert view is not None and [p.market for p in view.positions] == ["BTC"] and view.triggers
        # the phase is in the store and `revagent status` shows it for this owner
        await eventually(lambda: _meta_phase(session, "running"), timeout=10)
        owner = (await status_json())["owner"]
        assert isinstance(owner, dict) and owner["pid"] == os.getpid() and owner["phase"] == "running", owner
    finally:
        logging.getLogger("revagent.runtime.session").removeHandler(watch)
        await session.stop("test finished")
    # a stopped owner's phase is not shown as anyone's: no owner, no phase
    assert (await status_json())["owner"] is None


async def _meta_phase(session: Session, phase: str) -> bool:
    meta = await session.store.meta()
    return meta.get("startup_phase") == phase and meta.get("startup_pid") == str(os.getpid())
