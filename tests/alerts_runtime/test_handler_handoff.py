"""Alerts started while the venue was unreachable run on the logging handler; once trading comes up
and the turn engine exists, alert turns go to the engine (they used to stay on the logger)."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest

from revagent.alerts.runner import LoggingHandler
from revagent.config import load_config
from revagent.exchange.sim import SimConfig, SimServer
from revagent.models import TimeAlert, utc_now
from revagent.runtime.session import Session
from tests.alerts_runtime.conftest import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(120)
async def test_alert_turns_go_to_the_engine_once_trading_comes_up(revagent_home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", f"http://127.0.0.1:{port}")  # nothing listens yet
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    sim = SimServer(SimConfig(port=port, seed=11, controls=True, manual_clock=True, history_minutes=0))
    try:
        await session.start_runtime()
        assert session.alerts is not None and session.gateway is None
        assert isinstance(session.alerts.runner.handler, LoggingHandler)

        await sim.start()  # the venue is back; the first command that trades builds the engine
        engine = await session.start_engine()
        assert session.alerts.runner.handler is engine.alert_handler

        alert = await session.store.time_alerts.put(
            TimeAlert(fire_at=utc_now() - timedelta(seconds=1), prompt="summarise the account", created_at=utc_now()))
        thread_id = f"alert:{alert.id}"

        async def ran_in_the_engine() -> bool:
            return any(t.id == thread_id for t in await engine.threads())

        await eventually(ran_in_the_engine, timeout=30)
    finally:
        await session.stop("test finished")
        await sim.stop()
