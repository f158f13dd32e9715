"""Issue 23 items 2 and 6 on the paper venue: `/risk` renders the risk report, and confirmations
show the resolved, tick-rounded prices that will be sent and the expected entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.risk.rounding import round_price
from revagent.runtime.session import Session
from revagent.tui import format as fmt
from revagent.tui.app import RevagentApp
from revagent.tui.screens.confirm import ConfirmScreen
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


def last_notice(app: RevagentApp) -> str:
    from revagent.tui.widgets.thread_view import Notice

    view = app.view()
    assert view is not None
    notices = list(view.query(Notice))
    return str(notices[-1].render()) if notices else ""


async def connected(pilot: object, app: RevagentApp) -> None:
    assert await until(pilot, lambda: app.model.snapshot.account is not None), app.model.snapshot.problem


async def confirm_text(pilot: object, app: RevagentApp, line: str) -> str:
    app.input_box.value = line
    await pilot.press("enter")  # type: ignore[attr-defined]
    assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen)), screen_text(app)
    return screen_text(app)


@pytest.mark.timeout(180)
async def test_risk_report_and_resolved_prices_in_every_confirmation(venue: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="tui")
    await session.start(serve_commands=False)
    try:
        adapter = SessionAdapter(session)
        app = RevagentApp(adapter, initial=await adapter.load_snapshot(), live_clock=False, refresh_interval=3600)
        async with app.run_test(size=(160, 48)) as pilot:
            await connected(pilot, app)
            # item 2: /risk renders like `revagent risk show`
            app.input_box.value = "/risk"
            await pilot.press("enter")
            assert await until(pilot, lambda: "Settings" in screen_text(app)), screen_text(app)
            text = screen_text(app)
            assert "{'state'" not in text and "✗" not in text, text
            assert "ACTIVE  multiplier 1.00  drawdown 0.00%" in text
            assert "Open risk (USD lost at the stops)" in text and "TOTAL" in text and "caps: per trade" in text
            report = last_notice(app)  # longer than the pane: its head scrolled up
            assert "max_leverage                                5  default" in report, report
            # item 6: the open's confirmation shows the expected entry and the stop that is sent
            text = await confirm_text(pilot, app, "/long ETH --stop 2% --risk 20")
            assert "entry ~" in text and "worst " in text, text
            await pilot.press("y")
            assert await until(pilot, lambda: app.model.snapshot.account is not None
                               and app.model.snapshot.account.position("ETH") is not None), screen_text(app)
            account = app.model.snapshot.account
            assert account is not None
            rules = account.markets["ETH"]
            mark = rules.mark_px
            assert mark is not None
            # /stop 1.5%: the price it sends, on the tick grid (a long's stop is a sell: rounded up)
            text = await confirm_text(pilot, app, "/stop ETH 1.5%")
            raw = mark * (1 - Decimal("0.015"))
            sent = round_price(raw, rules.sz_decimals, is_buy=False)
            assert f"sends: stop at {fmt.price(sent)}" in text, text
            await pilot.press("n")
            text = await confirm_text(pilot, app, "/target ETH 6% --take-profit 7%")
            assert "sends: planned target " in text and "take-profit order at " in text, text
            await pilot.press("n")
    finally:
        await session.stop("test finished")
