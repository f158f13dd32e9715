"""A trade typed in the TUI reaches the paper venue: `/long` previews through the risk engine,
asks, opens through the gateway on an in-process simulator, and the panel shows the position."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.screens.confirm import ConfirmScreen
from revagent.tui.session_port import SessionAdapter
from tests.paper_venue import paper_venue
from tests.tui.screen import screen_text


@pytest.fixture
async def venue(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=1, start_ms=1_767_225_600_000) as server:
        yield server


def diagnose(app: RevagentApp) -> str:
    """What the app holds, for a failure message: tabs, views, the active one, workers."""
    views = {tid: (v.id, len(v.children), v.display) for tid, v in app._views.items()}
    workers = [(w.name, w.group, w.state.name) for w in app.workers]
    sync = getattr(getattr(app.port, "session", None), "sync", None)
    phases = (sync.phase, sync.phase_reason, sync.last_report.phases if sync.last_report else None) if sync else None
    return (f"tabs={app.tabs!r}\nviews={views!r}\nactive={app.active!r}\nworkers={workers!r}\n"
            f"sync={phases!r}\n" + screen_text(app))


async def settle(pilot: object, rounds: int = 6) -> None:
    for _ in range(rounds):
        await pilot.pause(0.1)  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
async def test_slash_long_previews_asks_and_opens_on_the_paper_venue(venue: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="tui")
    await session.start(serve_commands=False)
    try:
        adapter = SessionAdapter(session)
        app = RevagentApp(adapter, initial=await adapter.load_snapshot(), live_clock=False, refresh_interval=3600)
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(100):  # the exchange link comes up in the background
                await pilot.pause(0.1)
                if app.model.snapshot.account is not None:
                    break
            assert app.model.snapshot.account is not None, app.model.snapshot.problem
            assert "$10,000.00" in screen_text(app)
            app.input_box.value = "/long ETH --stop 2% --risk 20"
            await pilot.press("enter")
            for _ in range(600):  # the preview waits for the sync phase (up to sync.entry_wait)
                await pilot.pause(0.1)
                if isinstance(app.screen, ConfirmScreen):
                    break
            assert isinstance(app.screen, ConfirmScreen), diagnose(app)
            text = screen_text(app)
            assert "Open LONG ETH  stop 2%  risk $20?" in text and "risk $" in text and "R:R" in text
            await pilot.press("y")
            for _ in range(100):
                await pilot.pause(0.1)
                if app.model.snapshot.account is not None and app.model.snapshot.account.position("ETH"):
                    break
            await settle(pilot)
            text = screen_text(app)
            position = app.model.snapshot.account.position("ETH") if app.model.snapshot.account else None
            assert position is not None and position.size > 0, text
            assert "✓" in text
            assert "ETH  +" in text and "stop " in text
    finally:
        await session.stop("test finished")


@pytest.mark.timeout(120)
async def test_a_refused_open_shows_the_reasons_and_never_asks(venue: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="tui")
    await session.start(serve_commands=False)
    try:
        adapter = SessionAdapter(session)
        app = RevagentApp(adapter, initial=await adapter.load_snapshot(), live_clock=False, refresh_interval=3600)
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(100):
                await pilot.pause(0.1)
                if app.model.snapshot.account is not None:
                    break
            app.input_box.value = "/long ETH --stop 2% --risk 5000"
            await pilot.press("enter")
            for _ in range(600):  # the preview waits for the sync phase (up to sync.entry_wait)
                await pilot.pause(0.1)
                if "the risk engine refuses" in screen_text(app):
                    break
            text = screen_text(app)
            assert not isinstance(app.screen, ConfirmScreen)
            assert "✗ the risk engine refuses" in text, diagnose(app)
            assert "- risk 5000.00 USD exceeds the per-trade cap 25.00 USD" in text  # every reason, in words
            assert "exceeds the portfolio cap 100.00 USD" in text
            assert app.model.snapshot.account is not None and app.model.snapshot.account.position("ETH") is None
    finally:
        await session.stop("test finished")
