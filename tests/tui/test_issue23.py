"""Issue 23, TUI items: tabs that do not fit, /mode, /risk, confirmation prices, link states,
scrolling panes, fresh figures after a fill, the input's frame, the offline reply, the lockout."""

from __future__ import annotations

import pytest

from revagent.events import AlertSignal, TurnEvent
from revagent.tui.app import RevagentApp
from revagent.tui.screens.confirm import ConfirmScreen
from revagent.tui.screens.threads import ThreadListScreen
from tests.tui.scenes import Scene, open_account
from tests.tui.screen import screen_text

pytestmark = pytest.mark.usefixtures("tui_home")

ALERTS = (("alert-eth", "watcher", "ETH 3,120 ↑"), ("alert-btc", "watcher", "BTC 98,500 ↑"),
          ("alert-sol", "watcher", "SOL 140 ↓"), ("alert-time", "time", "check funding now"))


async def settle(pilot: object, rounds: int = 4) -> None:
    for _ in range(rounds):
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def fire_alerts(scene: Scene) -> None:
    assert scene.session is not None
    for tid, kind, detail in ALERTS:
        scene.session.bus.publish(AlertSignal(status="started", trigger_key=f"{tid}:1", kind=kind, thread_id=tid,
                                              detail=detail))
        scene.session.bus.publish(TurnEvent(thread_id=tid, turn_id=f"t-{tid}", kind="started"))


async def wait_for(pilot: object, app: RevagentApp, needle: str, seconds: float = 10) -> str:
    """The screen's text once `needle` shows (or after `seconds`)."""
    for _ in range(int(seconds / 0.1)):
        text = screen_text(app)
        if needle in text:
            return text
        await pilot.pause(0.1)  # type: ignore[attr-defined]
    return screen_text(app)


async def type_line(pilot: object, app: RevagentApp, line: str) -> None:
    app.input_box.value = line
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_alert_tabs_that_do_not_fit_keep_the_active_one_visible_and_count_the_rest(
        size: tuple[int, int]) -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        fire_alerts(scene)
        await settle(pilot, 8)
        for _ in ALERTS:  # walk every alert tab: the active one is always on screen
            await pilot.press("f6")
            await settle(pilot, 6)
            title = app.tabs[app.active or ""].title
            assert f"[{title}" in screen_text(app), (app.active, screen_text(app))
        text = screen_text(app)
        alert_row = next(line for line in text.splitlines() if "alerts:" in line)
        hidden = sum(f"[{d[:10]}" not in alert_row for _, _, d in ALERTS)
        if size[0] < 110:
            assert hidden > 0
        if hidden:
            assert f"+{hidden}" in alert_row, alert_row
        await pilot.press("f6")  # back to the chat
        await settle(pilot)
        app.action_thread_list()
        await settle(pilot)
        assert isinstance(app.screen, ThreadListScreen)
        listed = "\n".join(text for _, text in app.screen.lines)
        assert "alerts running" in listed
        assert "watcher ETH  ETH 3,120 ↑" in listed and "time  check funding now" in listed
        assert "check funding now" in screen_text(app)
        # newest first
        assert listed.index("check funding now") < listed.index("SOL 140") < listed.index("ETH 3,120")
        await pilot.press("down", "enter")  # from the active chat, past the heading: the newest alert
        await settle(pilot)
        assert not isinstance(app.screen, ThreadListScreen)
        assert app.active == "alert-time"
        assert app.focused is app.input_box


async def test_the_thread_list_is_in_the_palette() -> None:
    from revagent.tui.palette import ACTIONS

    assert any(action == "thread_list" for _, action, _ in ACTIONS)


async def test_mode_shows_in_header_and_tab_and_readonly_refuses_orders() -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await type_line(pilot, app, "/mode")
        text = screen_text(app)
        assert "mode: chat threads autonomous, alert threads autonomous" in text, text
        assert "autonomous" in text.splitlines()[0]  # the header
        await type_line(pilot, app, "/mode readonly")
        await settle(pilot)
        text = screen_text(app)
        assert "chat threads are now readonly" in text
        assert "readonly" in text.splitlines()[0]
        assert "[main ro]" in text
        await type_line(pilot, app, "/long ETH --stop 3000 --risk 20")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert "/long refused: chat threads are read-only (no orders)" in text
        await type_line(pilot, app, "/halt")  # protection still passes (it asks first)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        await type_line(pilot, app, "/mode autonomous")
        await settle(pilot)
        assert "[main]" in screen_text(app)


async def test_the_header_shows_each_link_with_the_age_of_its_last_news() -> None:
    from datetime import timedelta
    from decimal import Decimal

    from revagent.events import ConnectionChanged, MidsUpdated
    from tests.tui.scenes import NOW

    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        header = screen_text(app).splitlines()[0]
        assert "redis ● 0s" in header and "model ?" in header and "ws ?" in header, header
        assert scene.session is not None
        bus = scene.session.bus
        bus.publish(ConnectionChanged(link="exchange_ws", up=True))
        bus.publish(ConnectionChanged(link="model", up=False, detail="overloaded"))
        await settle(pilot)
        header = screen_text(app).splitlines()[0]
        assert "ws ● 0s" in header and "model ○ 0s" in header, header
        app.clock = lambda: NOW + timedelta(seconds=42)
        bus.publish(MidsUpdated(mids={"ETH": Decimal("3120")}, at=NOW))  # ticks: the ws is live
        await settle(pilot)
        app.paint_header()
        await settle(pilot, 1)
        header = screen_text(app).splitlines()[0]
        assert "ws ● 0s" in header and "model ○ 42s" in header, header
        bus.publish(ConnectionChanged(link="exchange_ws", up=False, detail="closed"))
        await settle(pilot)
        assert "ws ○ 0s" in screen_text(app).splitlines()[0]


async def test_a_fill_reads_the_account_from_the_exchange_at_once() -> None:
    from decimal import Decimal

    from revagent.events import FillRecorded
    from revagent.risk import AccountView

    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "$10,250.18" in screen_text(app)
        fresh = open_account().model_copy(update={"equity": Decimal("10001.28")})

        async def exchange_now() -> AccountView:  # what the exchange says now (the live view lags)
            return fresh

        assert scene.session is not None
        scene.session._fresh_account = exchange_now  # the gateway's REST read, as start_trading sets it
        scene.session.bus.publish(FillRecorded(market="ETH", side="sell", px=Decimal("3118"), sz=Decimal("0.412"),
                                               fee=Decimal("0.5"), closed_pnl=Decimal("7")))
        await settle(pilot, 8)
        assert "$10,001.28" in screen_text(app)


async def test_the_folded_account_view_scrolls_with_the_keyboard() -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f8")
        await settle(pilot)
        text = screen_text(app)
        assert "Positions" in text and "ETH reclaimed 3,100" not in text  # the notes are below the fold
        await pilot.press("pagedown", "pagedown")
        await settle(pilot)
        assert "ETH reclaimed 3,100" in screen_text(app)
        assert app.focused is app.input_box
        await pilot.press("shift+pageup", "shift+pageup")
        await settle(pilot)
        assert "Positions" in screen_text(app) and "ETH reclaimed 3,100" not in screen_text(app)


async def test_a_lockout_thread_says_what_happened_and_what_the_trader_can_do() -> None:
    from tests.tui.scenes import flat_account, locked_state

    scene = Scene(account=flat_account(), risk=locked_state())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert scene.session is not None
        scene.session.bus.publish(AlertSignal(status="started", trigger_key="lockout:start", kind="lockout",
                                              thread_id="alert-lock", detail="lockout (lockout)"))
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        text = screen_text(app)
        assert "Trading is LOCKED until 2026-11-25 08:14 UTC (18h12m left)" in text, text
        assert "Drawdown 14.64% from the peak $12,000.00; equity $10,243.18." in text
        assert "/close MARKET, /flatten, /stop MARKET PX still work" in text
        assert "revagent risk unlock" in text


async def test_the_offline_reply_lists_the_help_tables_commands_one_a_line() -> None:
    from revagent.engine.providers.base import Message, ModelRequest, TextDelta
    from revagent.engine.providers.offline import OfflineProvider
    from revagent.tui.slash import SPECS

    req = ModelRequest(model="offline", max_tokens=100, messages=(Message.user("should I long BTC?"),))
    steps = [("text", {"text": e.text}) async for e in OfflineProvider(chunk_chars=80).stream(req)
             if isinstance(e, TextDelta)]
    scene = Scene(account=open_account(), script=steps)
    app = scene.build()
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot)
        await type_line(pilot, app, "should I long BTC?")
        text = await wait_for(pilot, app, "/help [COMMAND]")
        lines = [line.strip("│ ") for line in text.splitlines()]
        for spec in SPECS.values():  # the same syntax as /help, each on its own bulleted line
            head = spec.usage[:40]
            assert any(line.startswith("• " + head) for line in lines), (spec.usage, text)
        assert any(line.startswith("• /close MARKET [--fraction 0.5]") for line in lines)
