"""Issue 22 item 7: the timings that are policy come from the settings (with today's values as their
defaults), so a user can change them in the file or with `REVAGENT_*`, and a started Session's
parts run with them: the alert scheduler (its own stop grace is the user's `risk.stop_grace`), the
sync loop and the lease."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from revagent.alerts.scheduler import SchedulerTimings
from revagent.alerts.service import AlertService
from revagent.config import Config, load_config
from revagent.exchange.sim import SimConfig, SimServer
from revagent.runtime.session import Session
from revagent.sync.options import SyncOptions

pytestmark = pytest.mark.timeout(120)

S = timedelta(seconds=1)
ENV = {
    "REVAGENT_ALERTS__TRADE_REFRESH": "12s",
    "REVAGENT_ALERTS__HEALTH_GRACE": "7s",
    "REVAGENT_ALERTS__PRICES_STALE_AFTER": "45s",
    "REVAGENT_ALERTS__APPROVAL_WARNING": "2h",
    "REVAGENT_ALERTS__APPROVAL_CHECK_EVERY": "3m",
    "REVAGENT_RISK__STOP_GRACE": "4s",
    "REVAGENT_SYNC__RISK_INTERVAL": "2s",
    "REVAGENT_SYNC__CORRECTION_COOLDOWN": "8s",
    "REVAGENT_SYNC__PROTECT_UNCONFIRMED_AFTER": "900ms",
    "REVAGENT_SYNC__RECONCILE_BACKOFF_MAX": "20s",
    "REVAGENT_SYNC__HISTORY": "30d",
    "REVAGENT_SESSION__LEASE_TTL": "9s",
}


@pytest.fixture
async def session(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Session]:
    sim = SimServer(SimConfig(seed=5, controls=True, manual_clock=True, history_minutes=0))
    await sim.start()
    sim.set_price("BTC", "60000")
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", sim.base_url)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    cfg = load_config()
    s = Session(cfg, cfg.wallet(), role="daemon")
    await s.start(serve_commands=False)
    try:
        await s.start_trading()
        yield s
    finally:
        await s.stop("test finished")
        await sim.stop()


async def test_a_started_session_runs_its_parts_with_the_configured_timings(session: Session) -> None:
    alerts = AlertService.for_session(session)
    try:
        t = alerts.scheduler.timings
        assert (t.trade_refresh, t.health_grace, t.stale_after, t.approval_warning, t.approval_check_every) == (
            12 * S, 7 * S, 45 * S, timedelta(hours=2), timedelta(minutes=3))
        assert t.stop_grace == 4 * S  # the fallback is the user's risk.stop_grace, not a number of its own
    finally:
        await alerts.aclose()
    assert session.sync is not None
    o = session.sync.options
    assert (o.risk_interval, o.correction_cooldown, o.protect_unconfirmed_after, o.backoff_max, o.history) == (
        2 * S, 8 * S, timedelta(milliseconds=900), 20 * S, timedelta(days=30))
    assert session.lease.ttl_ms == 9000


def test_the_settings_defaults_are_the_parts_defaults() -> None:
    from revagent.alerts.service import scheduler_timings
    from revagent.sync.options import sync_options

    cfg = Config()
    assert scheduler_timings(cfg, cfg.wallet()) == SchedulerTimings()
    assert sync_options(cfg.sync) == SyncOptions()
    assert cfg.session.lease_ttl == timedelta(seconds=15)


def test_a_zero_interval_is_refused_naming_the_setting(tmp_path: Path) -> None:
    from revagent.errors import ConfigError

    p = tmp_path / "config.toml"
    p.write_text("[alerts]\ntrade_refresh = '0s'\n")
    with pytest.raises(ConfigError, match=r"alerts\.trade_refresh: Input should be greater than"):
        load_config(p, environ={})
