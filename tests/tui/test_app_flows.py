"""Pilot flows against a real Session on the test Redis: events published on its bus, commands
through the session's handlers and store."""

from __future__ import annotations

import pytest

from revagent.tui.app import RevagentApp
from tests.tui.scenes import Scene, open_account

pytestmark = pytest.mark.usefixtures("tui_home")


def screen_text(app: RevagentApp) -> str:
    return app.export_screenshot()


async def test_cold_start_shows_the_account_and_identity() -> None:
    app = Scene(account=open_account()).build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "PAPER" in text
        assert "$10,250.18" in text
