"""Issue 23, the rest of the slice on the paper venue: the stored account view painted in the first
frame (item 18), and a viewer that refreshes its figures from the exchange after a fill (item 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.models import utc_now
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.session_port import SessionAdapter
from tests.paper_venue import paper_venue
from tests.tui.screen import screen_text


@pytest.fixture
async def venue(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=1, start_ms=1_767_225_600_000) as server:
        yield server


async def until(pilot: object, check: object, seconds: float = 60) -> bool:
    for _ in range(int(seconds / 0.1)):
        if check():  # type: ignore[operator]
            return True
        await pilot.pause(0.1)  # type: ignore[attr-defined]
    return bool(check())  # type: ignore[operator]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_first_frame_shows_the_stored_account_with_its_age_before_the_session_is_live(
        venue: SimServer, size: tuple[int, int]) -> None:
    cfg = load_config()
    first = Session(cfg, cfg.wallet(), role="tui")  # a first run shows the live account (and stores it)
    await first.start()
    try:
        adapter = SessionAdapter(first)
        assert (await adapter.connect()).ok
        assert (await adapter.load_snapshot()).account is not None
    finally:
        await first.stop("the first run is over")

    later = utc_now() + timedelta(minutes=3)
    again = Session(cfg, cfg.wallet(), role="tui")  # the restart: nothing is live before connect()
    await again.start()
    try:
        adapter = SessionAdapter(again, clock=lambda: later)
        initial = await adapter.load_snapshot()
        app = RevagentApp(adapter, initial=initial, live_clock=False, clock=lambda: later)
        async with app.run_test(size=size) as pilot:
            text = screen_text(app)  # the first frame
            assert "stored 3m ago" in text and "$10,000.00" in text, text
            assert app.model.snapshot.stored_at is not None, "the session went live before the first frame"
            if size[0] >= 110:
                assert "stored 3m ago: connecting to the exchange" in text, text
            assert await until(pilot, lambda: app.model.snapshot.stored_at is None), app.model.snapshot.problem
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "stored" not in text and "$10,000.00" in text, text
    finally:
        await again.stop("test over")
