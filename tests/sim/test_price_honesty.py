"""Where the paper venue's prices come from is said everywhere a trader looks (issue 17 item 3): the sync
view (and so the TUI header and the model's snapshot) and `revagent status`; when the venue's upstream drops
mid-session the sync phase leaves `consistent` (new entries refused, protection passes) until it is back.
Against a second simulator acting as "the market": reachable, unreachable, dropping."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.engine.snapshot import SnapshotInputs, build_snapshot
from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.upstream import UpstreamFeed
from revagent.gateway import Action
from revagent.risk import EnsureStop, OpenTrade, RiskSettings, RiskState
from revagent.runtime.session import Session
from revagent.tui.panel_model import PanelModel
from revagent.tui.port import Identity, PanelSnapshot
from revagent.tui.widgets.header import header_text
from tests.sim.conftest import START_MS
from tests.sim.test_upstream import _free_port, eventually

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def market() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=11, controls=True, history_minutes=0))
    await server.start()
    try:
        server.set_price("BTC", "60000")
        yield server
    finally:
        await server.stop()


async def paper_on(upstream: str, monkeypatch: pytest.MonkeyPatch, **extra: object) -> SimServer:
    server = SimServer(SimConfig.exchange_like(manual_clock=True, start_ms=START_MS, seed=2, prices="live",
                                               upstream=upstream, history_minutes=0, controls=True, **extra))
    await server.start()
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", server.base_url)
    monkeypatch.setenv("REVAGENT_SYNC__ENTRY_WAIT", "1s")
    return server


async def session_on_paper() -> Session:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    await session.start_trading()
    return session


def long_btc(risk: str = "20") -> OpenTrade:
    return OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"), risk_usd=Decimal(risk),
                     target_px=Decimal("63000"), conviction=60)


def header(session: Session, width: int = 140) -> str:
    assert session.sync is not None
    model = PanelModel()
    model.apply_snapshot(PanelSnapshot(account=session.sync.view, sync_phase=session.sync.phase))
    ident = Identity(wallet="main", network="paper", address="0x" + "ab" * 20)
    return header_text(ident, model, datetime(2026, 1, 1, tzinfo=UTC), width).plain


def snapshot_health(session: Session) -> list[str]:
    assert session.sync is not None
    inputs = SnapshotInputs(now=datetime(2026, 1, 1, tzinfo=UTC), settings=RiskSettings(),
                            risk_state=RiskState(), account=session.sync.view)
    return build_snapshot(inputs).sections["health"]


def status_json() -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "revagent", "status", "--json"], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ), start_new_session=True)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


async def test_live_prices_are_said_and_a_dropped_upstream_holds_entries_until_back(
        revagent_home: Path, market: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    paper = await paper_on(market.base_url, monkeypatch)
    session = None
    try:
        feed = paper.feed
        assert isinstance(feed, UpstreamFeed)
        await eventually(lambda: feed.link == "connected")
        session = await session_on_paper()
        sync, gateway = session.sync, session.gateway
        assert sync is not None and gateway is not None
        live = f"live prices from {market.base_url}"
        await eventually(lambda: sync.phase == "consistent" and sync.view is not None
                         and sync.view.price_source == live, timeout=20)
        assert f"PAPER · {live}" in header(session)
        assert f"venue prices: {live}" in snapshot_health(session)
        assert (await gateway.submit(long_btc("10"), Action.command("honest-1"))).status == "done"
        status = await asyncio.to_thread(status_json)
        assert status["venue"] == {"url": paper.base_url, "prices": live}

        # the market drops: prices freeze, the phase leaves consistent, entries wait, protection passes
        market.faults.refuse_websockets = True
        await market.drop_websockets()
        await eventually(lambda: sync.phase == "checking", timeout=15)
        frozen = f"prices frozen: {market.base_url} disconnected, reconnecting"
        assert sync.phase_reason == frozen
        view = sync.view
        assert view is not None and view.price_source == frozen and view.sync_reason == frozen
        assert f"PAPER · {frozen}" in header(session)
        assert f"venue prices: {frozen}" in snapshot_health(session)
        refused = await gateway.submit(long_btc("4"), Action.command("honest-2"))
        assert refused.status == "refused", refused.message
        reasons = " | ".join(r.message for r in (refused.verdict.reasons if refused.verdict else []))
        assert "prices frozen" in reasons
        ensured = await gateway.submit(EnsureStop(market="BTC", stop_px=Decimal("59000")), Action.command("honest-3"))
        assert ensured.status == "done", ensured.message
        await asyncio.sleep(1.5)  # a snapshot or a reconciliation in between does not make it consistent
        assert sync.phase == "checking"

        # back: reconcile, consistent, entries pass again
        market.faults.refuse_websockets = False
        await eventually(lambda: sync.phase == "consistent", timeout=40)
        view = sync.view
        assert view is not None and view.price_source == live
        again = await gateway.submit(long_btc("4"), Action.command("honest-4"))
        assert again.status == "done", again.message
    finally:
        if session is not None:
            await session.stop("test finished")
        await paper.stop()


async def test_unreachable_upstream_says_synthetic_everywhere(
        revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    paper = await paper_on(dead, monkeypatch, upstream_timeout_s=1.0)
    paper.set_price("BTC", "60000")
    session = None
    try:
        session = await session_on_paper()
        sync = session.sync
        assert sync is not None
        said = f"synthetic prices: {dead} unreachable"
        await eventually(lambda: sync.phase == "consistent" and sync.view is not None
                         and sync.view.price_source == said, timeout=20)
        assert f"PAPER · {said}" in header(session)
        assert "PAPER · synthetic prices " in header(session, width=90)  # narrow: the short form
        assert f"venue prices: {said}" in snapshot_health(session)
        status = await asyncio.to_thread(status_json)
        assert status["venue"] == {"url": paper.base_url, "prices": said}
        # synthetic at start is a working venue, said so: entries are allowed
        assert session.gateway is not None
        assert (await session.gateway.submit(long_btc(), Action.command("synth-1"))).status == "done"
    finally:
        if session is not None:
            await session.stop("test finished")
        await paper.stop()


def test_status_says_when_no_paper_venue_runs(revagent_home: Path) -> None:
    doc = status_json()
    assert doc["venue"] == {"url": None, "prices": None}


def test_a_relative_replay_file_is_read_from_the_config_files_directory(tmp_path: Path) -> None:
    from revagent.config import Config, PaperSettings
    from revagent.venue import paper_prices

    cfg = Config(paper=PaperSettings(prices="replay:rec/market.jsonl"), source=str(tmp_path / "config.toml"))
    assert paper_prices(cfg) == f"replay:{tmp_path / 'rec' / 'market.jsonl'}"
    absolute = Config(paper=PaperSettings(prices=f"replay:{tmp_path}/x.jsonl"), source="(defaults)")
    assert paper_prices(absolute) == f"replay:{tmp_path}/x.jsonl"
    assert paper_prices(Config(paper=PaperSettings(prices="live"))) == "live"
