"""Pilot flows against a real Session on the test Redis: events published on its bus, commands
through the session's store and handlers, chat through a scripted engine at the adapter's seam."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from revagent.bus import Subscription
from revagent.events import (
    AccountChanged,
    AlertSignal,
    ConnectionChanged,
    LeaseChanged,
    MidsUpdated,
    RiskStateChanged,
    TurnEvent,
)
from revagent.models import utc_now
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.port import CommandOutcome, PanelSnapshot
from revagent.tui.screens.confirm import ConfirmScreen
from revagent.tui.widgets.thread_view import ToolCallBlock
from tests.tui.scenes import NOW, Scene, locked_state, open_account
from tests.tui.screen import screen_text
from tests.tui.scripted_engine import ScriptedEngine, Step

pytestmark = pytest.mark.usefixtures("tui_home")

TRADE_SCRIPT: list[Step] = [
    ("text", {"text": "3,100 held on the retest and funding is flat. "}),
    ("text", {"text": "Opening with a stop **under the range low**."}),
    ("tool_call", {"id": "tc1", "name": "open_trade",
                   "input": {"market": "ETH", "side": "long", "risk_usd": 25, "stop": 3040}}),
    ("tool_result", {"id": "tc1", "ok": True, "message": "opened ETH long 0.412 @ 3,101"}),
]


def session_of(scene: Scene) -> Session:
    assert scene.session is not None
    return scene.session


async def settle(pilot: object, app: RevagentApp, rounds: int = 4) -> None:
    """Let the bus feed, the workers and a flush run."""
    for _ in range(rounds):
        await pilot.pause(0.05)  # type: ignore[attr-defined]


async def test_cold_start_paints_the_snapshot_at_once() -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "PAPER" in text and "paper:0x3f2a…9c1d" in text
        assert "14:02:11 UTC" in text and "ACTIVE" in text
        assert "$10,250.18" in text and "$9,120.40" in text
        assert "ETH  +0.412 @ 3,101" in text and "liq 2,410" in text and "stop 3,040  target 3,280" in text
        assert "↑ 98,500" in text and "in 1h58m" in text and "ETH reclaimed 3,100" in text
        assert app.focused is app.input_box


async def test_narrow_terminal_folds_the_account_behind_f8() -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Eq $10,250.18" in text and "Free $9,120.40" in text and "Pos 2" in text
        assert "Positions" not in text
        await pilot.press("f8")
        await pilot.pause()
        text = screen_text(app)
        assert "Positions" in text and "ETH  +0.412 @ 3,101" in text
        await pilot.press("h", "i")  # the input keeps the focus while the panel shows
        assert app.input_box.value == "hi"
        await pilot.press("f8")
        await pilot.pause()
        assert "Positions" not in screen_text(app)


async def test_chat_streams_markdown_and_a_compact_tool_call_that_expands() -> None:
    scene = Scene(account=open_account(), script=TRADE_SCRIPT)
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"long ETH on the reclaim?", "enter")
        await settle(pilot, app)
        assert scene.engine is not None and scene.engine.sent == [("main", "long ETH on the reclaim?")]
        text = screen_text(app)
        assert "you  long ETH on the reclaim?" in text
        assert "3,100 held on the retest and funding is flat. Opening with a stop under the range low." in text
        assert "open_trade ETH long risk $25 stop 3040  ✓" in text
        assert '"stop": 3040' not in text  # collapsed: one line
        await pilot.press("ctrl+o")
        await settle(pilot, app, 2)
        text = screen_text(app)
        assert '"stop": 3040' in text and "opened ETH long 0.412 @ 3,101" in text
        assert app.query_one(ToolCallBlock).collapsed is False


async def test_without_a_model_chat_says_so_and_slash_commands_still_work() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"hello", "enter")
        await settle(pilot, app)
        assert "no model runs in this session yet" in screen_text(app)


async def test_an_alert_thread_appears_with_a_badge_and_never_steals_the_input() -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"half typed")
        bus = session_of(scene).bus
        bus.publish(AlertSignal(status="started", trigger_key="w_eth:upper:1", kind="watcher",
                                thread_id="alert-eth", detail="ETH 3,120 ↑"))
        bus.publish(TurnEvent(thread_id="alert-eth", turn_id="a1", kind="started"))
        bus.publish(TurnEvent(thread_id="alert-eth", turn_id="a1", kind="text",
                              data={"text": "ETH crossed 3,120."}))
        await settle(pilot, app)
        text = screen_text(app)
        assert "alerts: [ETH 3,120 ↑ ● (1)]" in text  # one unread message
        assert app.input_box.value == "half typed" and app.focused is app.input_box
        assert app.active == "main" and "ETH crossed 3,120." not in text
        await pilot.press("f6")  # next tab: the alert thread
        await settle(pilot, app, 2)
        text = screen_text(app)
        assert "ETH crossed 3,120." in text and "[ETH 3,120 ↑ ●]" in text
        bus.publish(TurnEvent(thread_id="alert-eth", turn_id="a1", kind="done"))
        bus.publish(AlertSignal(status="finished", trigger_key="w_eth:upper:1", kind="watcher",
                                thread_id="alert-eth"))
        await settle(pilot, app)
        assert "[ETH 3,120 ↑ ✓]" in screen_text(app)


@pytest.mark.parametrize("approve", [True, False])
async def test_copilot_proposal_approve_and_reject(approve: bool) -> None:
    proposal: Step = ("proposal", {"id": "p1", "proposal_id": "p1", "tool": "open_trade",
                                   "input": {"market": "ETH", "side": "long"}, "preview": {
        "approved": True, "reasons": [], "side": "long", "size": "0.412", "notional": "1277.61", "risk_usd": "25.13",
        "reward_risk": "2.95", "est_fees_usd": "1.15", "stop_px": "3040", "target_px": "3280",
        "est_liquidation_px": "2410"}})
    scene = Scene(account=open_account(), script=[proposal])
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"go long", "enter")
        await settle(pilot, app)
        text = screen_text(app)
        assert "LONG ETH  size 0.412  notional $1,277.61" in text
        assert "risk $25.13  R:R 2.95  fees $1.15" in text and "liq 2,410" in text
        assert "F2 approve   F3 reject" in text and "[! main]" in text
        await pilot.press("f2" if approve else "f3")
        await settle(pilot, app)
        assert scene.engine is not None and scene.engine.answers == [("p1", approve)]
        text = screen_text(app)
        assert ("approved ✓" if approve else "rejected ✗") in text
        assert "F2 approve   F3 reject" not in text and "[main]" in text
        await pilot.press("f2")  # nothing left to answer
        await settle(pilot, app)
        assert scene.engine.answers == [("p1", approve)]


async def test_escape_interrupts_the_running_turn() -> None:
    scene = Scene(script=[("text", {"text": "thinking about "})], hold=True)
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"why?", "enter")
        await settle(pilot, app)
        assert app.tabs["main"].status == "running"
        assert "[main ●]" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot, app)
        assert scene.engine is not None and scene.engine.interrupted == ["main"]
        status: str = app.tabs["main"].status  # mypy narrowed it to "running" above
        assert status == "idle"
        text = screen_text(app)
        assert "thinking about" in text and "(interrupted)" in text


async def test_lockout_banner_from_a_risk_event() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert "LOCKED" not in screen_text(app)
        await session_of(scene).risk.put(locked_state())  # type: ignore[union-attr]
        session_of(scene).bus.publish(RiskStateChanged(
            state="locked", multiplier=Decimal("0.25"), reason="drawdown reached max_drawdown_pct 15%",
            locked_until=NOW + timedelta(hours=18, minutes=12)))
        await settle(pilot, app)
        text = screen_text(app)
        assert "LOCKED 18h12m" in text
        assert "LOCKED until 2026-11-25 08:14 UTC (18h12m left): only exits and stops." in text


async def test_slash_note_watch_and_alert_write_through_the_store() -> None:
    scene = Scene(with_store_data=False)
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        for line in ("/note funding flips at 16:00 --tag eth", "/watch btc --above 98500 --below 94000",
                     "/alert --in 2h check funding"):
            app.input_box.value = line
            await pilot.press("enter")
            await settle(pilot, app)
        store = session_of(scene).store
        notes, watchers, alerts = await store.notes.all(), await store.watchers.all(), await store.time_alerts.all()
        assert [n.text for n in notes] == ["funding flips at 16:00"] and notes[0].tags == ["eth"]
        assert [(w.market, w.upper and w.upper.level, w.lower and w.lower.level) for w in watchers] == [
            ("BTC", Decimal(98500), Decimal(94000))]
        assert [a.prompt for a in alerts] == ["check funding"] and alerts[0].fire_at == NOW + timedelta(hours=2)
        await settle(pilot, app, 6)
        text = screen_text(app)
        assert "funding flips at 16:00 #eth" in text
        assert "BTC   ↑ 98,500 (+1.2%)  ↓ 94,000 (-3.4%)" in text
        assert "16:02 UTC  in 2h00m" in text
        assert "✓ note" in text and "✓ watcher" in text and "✓ time alert" in text


async def test_slash_mistakes_are_shown_and_change_nothing() -> None:
    scene = Scene(with_store_data=False)
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        app.input_box.value = "/long ETH --risk 20"
        await pilot.press("enter")
        await settle(pilot, app)
        assert "--stop is required: every trade declares its stop" in screen_text(app)
        assert await session_of(scene).store.notes.count() == 0


async def test_destructive_commands_ask_first_and_no_means_nothing_happens() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        for line in ("/flatten", "/halt", "/close ETH", "/risk set max_leverage 3"):
            app.input_box.value = line
            await pilot.press("enter")
            await settle(pilot, app, 2)
            assert isinstance(app.screen, ConfirmScreen), line
            await pilot.press("n")
            await settle(pilot, app, 2)
            assert not isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert text.count("cancelled") == 4
        state = await session_of(scene).risk.get()  # type: ignore[union-attr]
        assert state.halted is False


async def test_tab_completes_slash_commands_and_up_recalls_history() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("/", "f", "l", "tab")
        assert app.input_box.value == "/flatten "
        app.input_box.value = "/long ETH --st"
        app.input_box.cursor_position = len(app.input_box.value)
        await pilot.press("tab")
        assert app.input_box.value == "/long ETH --stop "
        app.input_box.value = "/help"
        await pilot.press("enter")
        await settle(pilot, app)
        assert "/flatten" in screen_text(app) and app.input_box.value == ""
        await pilot.press("up")
        assert app.input_box.value == "/help"
        await pilot.press("ctrl+a", "x")  # ctrl+a stays the input's: home, then type
        assert app.input_box.value == "x/help"


async def test_thread_tabs_new_rename_close() -> None:
    scene = Scene(script=[])
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+n")
        await settle(pilot, app)
        assert "chat: [main] [chat-2]" in screen_text(app) and app.active == "c1"
        await pilot.press("f7")
        await settle(pilot, app, 2)
        await pilot.press("ctrl+u", *"eth-plan", "enter")
        await settle(pilot, app)
        assert "[eth-plan]" in screen_text(app)
        await pilot.press("f4")
        await settle(pilot, app, 2)
        await pilot.press("y")
        await settle(pilot, app)
        assert "eth-plan" not in screen_text(app) and app.active == "main"
        assert scene.engine is not None and [t.id for t in await scene.engine.threads()] == ["main"]


async def test_a_tick_storm_keeps_input_and_shows_the_latest_price() -> None:
    scene = Scene(account=open_account())
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        bus = session_of(scene).bus
        for i in range(3000):
            bus.publish(MidsUpdated(mids={"ETH": Decimal(3100 + i % 50), "BTC": Decimal(97000 + i)}, at=utc_now()))
            if i % 300 == 0:
                await pilot.press("a")
        bus.publish(MidsUpdated(mids={"ETH": Decimal("3150")}, at=utc_now()))
        await settle(pilot, app, 8)
        assert app.input_box.value == "a" * 10
        text = screen_text(app)
        assert "mid 3,150" in text and "+$20.19" in text  # 0.412 * (3150 - 3101)
        assert app.flushes < 100  # coalesced, not one repaint per tick
        sub: Subscription | None = app._sub
        assert sub is not None


async def test_a_reconnect_reloads_the_snapshot() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 4)  # the start-up reloads are done
        store = session_of(scene).store
        await store.redis.hdel(store.keys.notes, "n_1")  # changed behind the store's back: no event
        await settle(pilot, app, 4)
        assert "no notes" not in screen_text(app)  # nothing told the app yet
        session_of(scene).bus.publish(ConnectionChanged(link="exchange_ws", up=True))
        await settle(pilot, app, 6)
        text = screen_text(app)
        assert "no notes" in text and "ws ●" in text


async def test_the_command_palette_reaches_actions_and_slash_templates() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+p")
        await settle(pilot, app, 2)
        await pilot.press(*"flatten")
        await settle(pilot, app, 4)
        assert "Flatten: close every position (asks first)" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot, app, 4)
        assert isinstance(app.screen, ConfirmScreen)  # destructive: asks first, even from the palette
        await pilot.press("escape")
        await settle(pilot, app, 2)
        await pilot.press("ctrl+p")
        await settle(pilot, app, 2)
        await pilot.press(*"/watch")
        await settle(pilot, app, 4)
        await pilot.press("enter")
        await settle(pilot, app, 2)
        assert app.input_box.value == "/watch " and app.focused is app.input_box


async def test_a_burst_the_app_cannot_keep_up_with_reloads_the_snapshot() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 4)  # the start-up reloads are done
        store = session_of(scene).store
        await store.redis.hdel(store.keys.notes, "n_1")  # changed behind the store's back: no event
        await settle(pilot, app, 4)
        assert "ETH reclaimed 3,100" in screen_text(app)  # nothing told the app yet
        bus = session_of(scene).bus
        tick = MidsUpdated(mids={"ETH": Decimal(3120)}, at=utc_now())
        for _ in range(5000):  # synchronously: the app's bounded queue overflows
            bus.publish(tick)
        assert app._sub is not None and app._sub.missed >= 1000
        await settle(pilot, app, 8)
        assert "no notes" in screen_text(app)  # the missed stretch was replaced by a fresh snapshot


async def test_an_event_storm_reads_the_snapshot_at_most_once_per_gap() -> None:
    scene = Scene(min_snapshot_gap=0.5)
    app = scene.build()
    assert scene.adapter is not None
    reads: list[float] = []
    real_load = scene.adapter.load_snapshot

    async def counting_load() -> PanelSnapshot:
        reads.append(time.monotonic())
        return await real_load()

    scene.adapter.load_snapshot = counting_load  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 12)  # start-up reads done
        reads.clear()
        bus = session_of(scene).bus
        start = time.monotonic()
        while time.monotonic() - start < 1.2:
            bus.publish(AccountChanged(changed=["positions"], version=1))
            await pilot.pause(0.01)
        await settle(pilot, app, 12)
        assert 2 <= len(reads) <= 4, reads  # ~120 events asked; one read per 0.5 s answered
        gaps = [b - a for a, b in itertools.pairwise(reads)]
        assert all(g >= 0.45 for g in gaps), gaps


async def test_a_lost_lease_says_so_in_a_banner_that_stays() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        session_of(scene).bus.publish(LeaseChanged(held=False, holder="", reason="renewal failed"))
        await settle(pilot, app, 4)
        text = screen_text(app)
        assert "SESSION STOPPED: this process lost the wallet (renewal failed)." in text
        assert "quit (ctrl+q) and restart" in text


async def test_the_sessions_engine_is_picked_up_when_the_runtime_starts() -> None:
    scene = Scene(script=None)
    app = scene.build()
    assert scene.adapter is not None
    session = session_of(scene)
    engine = ScriptedEngine(session.bus, [("text", {"text": "hello from the engine"})], main_id="th_main")
    real_connect = scene.adapter.connect

    async def connect_and_build_the_engine() -> CommandOutcome:
        outcome = await real_connect()
        session.engine = engine  # type: ignore[assignment]  # what Session.start_runtime does
        return outcome

    scene.adapter.connect = connect_and_build_the_engine  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 6)
        assert list(app.tabs) == ["th_main"] and app.active == "th_main"  # the empty placeholder went
        await pilot.press(*"hi", "enter")
        await settle(pilot, app)
        assert engine.sent == [("th_main", "hi")]
        assert "hello from the engine" in screen_text(app)


async def test_a_command_typed_while_connecting_stays_in_the_chat_the_engine_opens() -> None:
    scene = Scene(script=None)
    app = scene.build()
    assert scene.adapter is not None
    session = session_of(scene)
    engine = ScriptedEngine(session.bus, [("text", {"text": "hello from the engine"})], main_id="th_main")
    real_connect = scene.adapter.connect
    release = asyncio.Event()

    async def slow_connect() -> CommandOutcome:
        outcome = await real_connect()
        await release.wait()  # the trader types before the runtime is up
        session.engine = engine  # type: ignore[assignment]
        return outcome

    scene.adapter.connect = slow_connect  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 2)
        await pilot.press(*"/help", "enter")
        release.set()  # the engine comes up while the command's output is being written
        await settle(pilot, app, 6)
        assert list(app.tabs) == ["th_main"] and app.active == "th_main"  # the used placeholder was adopted
        assert "/long" in screen_text(app)  # the help the trader asked for is still on screen
        await pilot.press(*"hi", "enter")
        await settle(pilot, app)
        assert engine.sent == [("th_main", "hi")]
        assert "hello from the engine" in screen_text(app)


async def test_a_store_write_from_another_process_shows_at_once() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 4)
        await session_of(scene).store.notes.delete("n_1")  # as `revagent notes rm` would: an invalidation
        await settle(pilot, app, 6)
        assert "no notes" in screen_text(app)  # the session re-publishes store writes on its bus


async def test_an_open_typed_while_out_of_sync_says_it_waits_for_the_sync() -> None:
    scene = Scene()
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app, 4)
        app.model.sync_phase = "reconciling"  # as a SyncPhaseChanged event sets it
        await pilot.press(*"/long ETH --stop 2% --risk 10", "enter")
        await settle(pilot, app, 6)
        text = screen_text(app)
        assert "waiting for the account to be in sync with the exchange (phase reconciling)" in text
        assert not isinstance(app.screen, ConfirmScreen)
