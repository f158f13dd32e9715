"""The main screen: header, thread tabs and transcripts, live account panel, input box.

`RevagentApp(port, ...)` renders from the port's bus subscription and snapshots and acts only
through the port (see `port.py`). Ticks are coalesced (latest mid per market) and flushed every
`flush_interval` seconds inside `batch_update()`, so a tick storm never starves input or frames.
A snapshot is reloaded on account/order/fill events (debounced), on reconnect, when the bus says
events were missed, and every `refresh_interval` seconds.

Keys (none collides with the input's editing keys ctrl+a/e/w/u/k/d/x/c/v or tab): see `BINDINGS`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import ContentSwitcher, Input, Static
from textual.worker import Worker, WorkerState

from revagent.bus import Subscription
from revagent.errors import UsageError
from revagent.events import (
    MidsUpdated,
    TurnEvent,
)
from revagent.models import utc_now
from revagent.tui.palette import RevagentCommands
from revagent.tui.panel_model import PanelModel, render_summary
from revagent.tui.port import PanelSnapshot, SessionPort, ThreadInfo
from revagent.tui.routing import EventRouter
from revagent.tui.screens.confirm import ConfirmScreen, PromptScreen
from revagent.tui.screens.threads import ThreadListScreen
from revagent.tui.screens.wallets import WalletSwitcherScreen
from revagent.tui.slash import SlashCommand, help_text, parse_slash
from revagent.tui.slash_flow import run_slash_command
from revagent.tui.throttle import TickCoalescer
from revagent.tui.wallets import WalletRow
from revagent.tui.widgets.account import AccountPanel
from revagent.tui.widgets.command_input import CommandInput
from revagent.tui.widgets.header import StateBanner, StatusHeader, banner_text, header_text
from revagent.tui.widgets.tabs import TabState, ThreadTabs
from revagent.tui.widgets.thread_view import ThreadView

log = logging.getLogger(__name__)

NARROW_BELOW = 110  # columns: below this the account column folds behind F8
KEYS_HINT = ("^n new  F4 close  F6 next tab  F7 rename  esc interrupt  F2 approve  F3 reject  "
             "F8 account  ^p palette  F1 help  ^q quit")
KEYS_HINT_NARROW = "^n new F4 close F6 tab F7 name esc stop F2/F3 yes/no F8 acct ^p cmds F1 ^q quit"
_MODAL_SAFE = {"quit", "command_palette"}


class RevagentApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "revagent"
    COMMANDS = App.COMMANDS | {RevagentCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new_chat", "new chat", show=False),
        Binding("f4", "close_thread", "close tab", show=False),
        Binding("f6", "next_thread", "next tab", show=False),
        Binding("shift+f6", "prev_thread", "previous tab", show=False),
        Binding("f7", "rename_thread", "rename", show=False),
        Binding("f2", "approve", "approve", show=False),
        Binding("f3", "reject", "reject", show=False),
        Binding("escape", "interrupt", "interrupt", show=False),
        Binding("f8", "toggle_account", "account", show=False),
        Binding("f5", "refresh", "refresh", show=False),
        Binding("ctrl+o", "toggle_tool", "tool details", show=False),
        Binding("f1", "help", "help", show=False),
        Binding("pageup", "scroll_thread(-1)", show=False),
        Binding("pagedown", "scroll_thread(1)", show=False),
        Binding("shift+pageup,ctrl+pageup", "scroll_account(-1)", show=False),
        Binding("shift+pagedown,ctrl+pagedown", "scroll_account(1)", show=False),
    ]

    def __init__(self, port: SessionPort, *, clock: Callable[[], datetime] = utc_now,
                 initial: PanelSnapshot | None = None,
                 prepare: Callable[[], Awaitable[None]] | None = None,
                 cleanup: Callable[[], Awaitable[None]] | None = None,
                 flush_interval: float = 0.1, refresh_interval: float = 5.0, min_snapshot_gap: float = 0.5,
                 live_clock: bool = True, wallets: Callable[[], Awaitable[list[WalletRow]]] | None = None) -> None:
        """`initial`: the cold snapshot, so the first paint is never blank; `prepare` / `cleanup` run
        in the app's loop before the first snapshot and at exit (e.g. start and stop a Session);
        `min_snapshot_gap`: seconds between two snapshot reads however many events ask for one (a
        read may cost exchange weight until the account source is the sync loop's live view);
        `live_clock=False` freezes the header clock and countdowns (snapshot tests); `wallets`: the
        configured wallets as the store saw them (the palette's wallet switcher; None: only one). A
        wallet chosen there ends the app with `switch_to` set (the caller opens that wallet)."""
        super().__init__()
        self.port = port
        self.clock = clock
        self.model = PanelModel()
        if initial is not None:
            self.model.apply_snapshot(initial)
        self._prepare = prepare
        self._cleanup = cleanup
        self.flush_interval = flush_interval
        self.refresh_interval = refresh_interval
        self.min_snapshot_gap = min_snapshot_gap
        self._last_snapshot_at = float("-inf")
        self.live_clock = live_clock
        self.ticks = TickCoalescer()
        self.tabs: dict[str, TabState] = {}
        self._tab_seq = 0
        self._views: dict[str, ThreadView] = {}  # by thread id (an adopted view keeps its first CSS id)
        self.router = EventRouter(self)
        self.active: str | None = None
        self._sub: Subscription | None = None
        self._missed_seen = 0
        self._snapshot_due = initial is None
        self._fresh_due = False
        self._snapshot_loading = False
        self._settled: set[str] = set()  # optimistic lines whose command has answered
        self._feed: Worker[None] | None = None
        self.flushes = 0
        self.show_account = False
        self.ready = False  # set once the port answers (after `prepare` and the first snapshot)
        self.created_at = time.perf_counter()
        self.first_frame_at: float | None = None  # when Textual displayed the first frame
        self.wallets = wallets
        self.switch_to: str | None = None  # the wallet chosen in the switcher (the app exits to open it)

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield StateBanner(id="banner")
        yield Static(id="summary")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield ThreadTabs("chat", hint="+ ^n", id="chat-tabs")
                yield ThreadTabs("alerts", id="alert-tabs")
                yield ContentSwitcher(id="threads")
            yield AccountPanel(id="account")
        yield CommandInput(id="input")
        yield Static(id="keys")

    @property
    def account_panel(self) -> AccountPanel:
        """The panel on the base screen (a modal on top, a confirmation or the thread list, has none)."""
        return self.screen_stack[0].query_one(AccountPanel)

    @property
    def input_box(self) -> CommandInput:
        return self.query_one("#input", CommandInput)

    def view(self, thread_id: str | None = None) -> ThreadView | None:
        tid = thread_id or self.active
        if tid is None:
            return None
        return self._views.get(tid)

    async def on_mount(self) -> None:
        self._set_width_class(self.size.width)
        self._sub = self.port.subscribe()
        if self._prepare is None and not self._snapshot_due:
            # the session already runs and the cold snapshot is here: paint it before any await,
            # so the first frame shows the account
            self.ready = True
            self._paint_all()
        if self._prepare is not None:
            await self._prepare()
        if self._snapshot_due:
            await self._load_snapshot_now()
        await self.sync_threads()
        self.ready = True
        self._paint_all()
        self.input_box.focus()
        self._feed = self.run_worker(self._consume(), name="bus-feed", group="feed", exit_on_error=False)
        self._connect()
        self.set_interval(self.flush_interval, self._flush_ticks, name="tick-flush")
        self.set_interval(self.refresh_interval, self.request_snapshot, name="snapshot-refresh")
        if self.live_clock:
            self.set_interval(1.0, self._tick_clock, name="clock")

    def on_ready(self) -> None:
        self.first_frame_at = time.perf_counter()

    async def on_unmount(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._cleanup is not None:
            await self._cleanup()

    def on_resize(self, event: events.Resize) -> None:
        self._set_width_class(event.size.width)
        self.paint_header()

    def _set_width_class(self, width: int) -> None:
        narrow = width < NARROW_BELOW
        self.set_class(narrow, "-narrow")
        keys = KEYS_HINT_NARROW if narrow else KEYS_HINT
        self.query_one("#keys", Static).update(Text(keys, style="dim", no_wrap=True, overflow="ellipsis"))
        self.set_class(narrow and self.show_account, "-show-account")

    # -- painting -------------------------------------------------------------------------------
    def paint_header(self) -> None:
        if not self.ready:
            return
        now = self.clock()
        self.query_one(StatusHeader).update(header_text(self.port.identity, self.model, now, self.size.width,
                                                            mode=self.active_mode()))
        banner = banner_text(self.model, now)
        widget = self.query_one(StateBanner)
        widget.set_class(banner is not None, "shown")
        if banner is not None:
            widget.update(banner)

    def _paint_all(self) -> None:
        with self.batch_update():
            self.paint_header()
            self.account_panel.show_all(self.model, self.clock())
            self.query_one("#summary", Static).update(render_summary(self.model, self.clock()))
            self.paint_tabs()

    def paint_tabs(self) -> None:
        chats = [t for t in self.tabs.values() if t.kind == "chat"]
        alerts = [t for t in self.tabs.values() if t.kind == "alert"]
        modes = self.model.snapshot.modes
        self.query_one("#chat-tabs", ThreadTabs).show(chats, self.active, modes.get("chat", ""))
        self.query_one("#alert-tabs", ThreadTabs).show(alerts, self.active, modes.get("alert", ""))

    def active_mode(self) -> str:
        """The approval mode of the active thread's kind ('' when unknown)."""
        tab = self.tabs.get(self.active) if self.active is not None else None
        return self.model.snapshot.modes.get(tab.kind if tab is not None else "chat", "")

    def set_modes(self, modes: dict[str, str]) -> None:
        """A /mode answer: show the modes at once (the next snapshot reads them again)."""
        if modes:
            self.model.snapshot = dataclasses.replace(self.model.snapshot, modes={**self.model.snapshot.modes, **modes})
        self.paint_tabs()
        self.paint_header()

    def on_thread_tabs_picked(self, event: ThreadTabs.Picked) -> None:
        if event.thread_id in self.tabs:
            self._activate(event.thread_id)

    def on_thread_tabs_more_clicked(self, event: ThreadTabs.MoreClicked) -> None:
        self.action_thread_list()

    @work(group="ui", exit_on_error=False)
    async def action_thread_list(self) -> None:
        """Every thread, alert threads by state (running, finished, failed) newest first; enter opens one."""
        picked = await self.push_screen_wait(ThreadListScreen(list(self.tabs.values()), self.active))
        if picked is not None and picked in self.tabs:
            self._activate(picked)

    @work(group="ui", exit_on_error=False)
    async def action_switch_wallet(self) -> None:
        """Every configured wallet (equity, open risk, trading state, alerts, owner, from the store);
        choosing another one closes this screen and opens it."""
        if self.wallets is None:
            self.notify("only one wallet is configured: nothing to switch to")
            return
        rows = await self.wallets()
        current = self.port.identity.wallet
        picked = await self.push_screen_wait(WalletSwitcherScreen(rows, current, clock=self.clock))
        if picked is not None and picked != current:
            self.switch_to = picked
            self.exit()

    def _tick_clock(self) -> None:
        with self.batch_update():
            self.paint_header()
            self.account_panel.show_clock(self.model, self.clock())
            if self.model.snapshot.stored_at is not None:
                self.query_one("#summary", Static).update(render_summary(self.model, self.clock()))

    def _flush_ticks(self) -> None:
        """Every flush interval: apply coalesced ticks, and reload the snapshot when one is due."""
        if self._sub is not None and self._sub.missed != self._missed_seen:
            self._missed_seen = self._sub.missed
            self._snapshot_due = True
        mids = self.ticks.take()
        if mids:
            self.flushes += 1
            self.model.saw_link("exchange_ws", True, self.clock())  # prices flow: the feed is live
            self.model.mids.update(mids)
            try:
                panel = self.account_panel
            except (NoMatches, IndexError):  # not mounted yet (the first frames) or gone (quitting)
                panel = None
            if panel is not None:
                with self.batch_update():
                    panel.show_prices(self.model)
        if (self._snapshot_due and not self._snapshot_loading
                and time.monotonic() - self._last_snapshot_at >= self.min_snapshot_gap):
            self._snapshot_due = False
            self._reload_snapshot()

    @work(group="connect", exit_on_error=False, name="connect")
    async def _connect(self) -> None:
        # the account may show up before the whole runtime is up (trading parts first, the engine
        # after): read the snapshot every half second while connecting
        task = asyncio.get_running_loop().create_task(self.port.connect(), name="tui:connect")
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                self._snapshot_due = True
        finally:
            if not task.done():
                task.cancel()
        outcome = task.result()
        if not outcome.ok:
            self.notify(outcome.message, severity="error", timeout=20)
        else:
            await self.sync_threads()  # the turn engine may have come up with the trading parts
        self._snapshot_due = True

    async def sync_threads(self) -> None:
        """Make the tabs match the port's threads: add new ones, drop chat tabs the port no longer has
        (a placeholder from before the engine ran) when they hold nothing, open a first chat if none.

        A placeholder the trader already typed in is never dropped (a command may still be answering
        into it): the port's first chat thread adopts it, its transcript shown above what was typed.
        The active tab is never unset across an await: a line typed meanwhile always has a thread."""
        threads = list(await self.port.threads())
        if not any(t.kind == "chat" for t in threads):  # a first start: open the first chat
            threads.insert(0, await self.port.new_thread("main"))
        first = next(t for t in threads if t.kind == "chat")
        used = next((t for t in self.tabs.values() if t.kind == "chat" and t.used
                     and t.id not in {i.id for i in threads}), None)
        if used is not None and first.id not in self.tabs:
            await self._adopt(used.id, first)
        for info in threads:
            await self.add_thread(info, activate=False)
        known = {t.id for t in threads}
        for tab in [t for t in self.tabs.values() if t.kind == "chat" and t.id not in known and not t.used]:
            view = self.view(tab.id)
            if view is not None and view.children:
                continue
            if self.active == tab.id:
                self._activate(first.id)
            del self.tabs[tab.id]
            self._views.pop(tab.id, None)
            if view is not None:
                await view.remove()
        if self.active is None:
            self._activate(first.id)
        self.paint_tabs()

    async def _adopt(self, old_id: str, info: ThreadInfo) -> None:
        """The tab and view of `old_id` become those of the port's thread `info`."""
        tab = self.tabs.pop(old_id)
        view = self._views.pop(old_id)
        view.thread_id = info.id
        self.tabs[info.id] = dataclasses.replace(tab, id=info.id, title=info.title, status=info.status)
        self._views[info.id] = view
        if self.active == old_id:
            self.active = info.id
        await view.add_history(await self.port.history(info.id))

    def request_snapshot(self, *, fresh: bool = False) -> None:
        """Ask for a snapshot read (done at the next flush, at most one per `min_snapshot_gap`);
        `fresh`: the account is read from the exchange (a fill or a flatten changed the figures)."""
        self._snapshot_due = True
        self._fresh_due = self._fresh_due or fresh

    def settle(self, action_id: str) -> None:
        """A command answered: its optimistic line goes at the next snapshot."""
        self._settled.add(action_id)

    @work(group="snapshot", exclusive=False, exit_on_error=False, name="snapshot")
    async def _reload_snapshot(self) -> None:
        await self._load_snapshot_now()
        self._paint_all()

    async def _load_snapshot_now(self) -> None:
        self._snapshot_loading = True
        self._last_snapshot_at = time.monotonic()
        fresh, self._fresh_due = self._fresh_due, False
        try:
            snap = await (self.port.load_snapshot(fresh=True) if fresh else self.port.load_snapshot())
        except Exception as exc:
            log.exception("snapshot failed")
            self._fresh_due = self._fresh_due or fresh
            self.notify(f"could not refresh the account: {exc}", severity="error")
            return
        finally:
            self._snapshot_loading = False
        self.model.apply_snapshot(snap)
        self.model.saw_link("redis", True, self.clock())  # the store answered
        for action_id in self._settled & set(self.model.pending):  # confirmed (or refused) by now
            del self.model.pending[action_id]
        self._settled.clear()

    # -- the bus ----------------------------------------------------------------------------------
    async def _consume(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            try:
                if isinstance(event, MidsUpdated):
                    self.ticks.add(event.mids)
                elif isinstance(event, TurnEvent):
                    await self.router.on_turn(event)
                else:
                    await self.router.on_event(event)
            except Exception:  # one bad event must not stop the feed
                log.exception("could not render %s", event.type)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name == "bus-feed" and event.state in (WorkerState.ERROR, WorkerState.SUCCESS):
            log.error("the bus feed ended: %s", event.worker.error)
            self.notify("live updates stopped: restart the TUI", severity="error", timeout=30)

    # -- threads ---------------------------------------------------------------------------------
    async def add_thread(self, info: ThreadInfo, *, activate: bool, alert_kind: str = "", market: str = "") -> None:
        if info.id in self.tabs:
            return
        self._tab_seq += 1
        self.tabs[info.id] = TabState(info.id, info.kind, info.title, info.status, alert_kind=alert_kind,
                                      market=market, seq=self._tab_seq)
        view = ThreadView(info.id, id=f"t-{_css_id(info.id)}")
        view.display = False  # the switcher shows it when it becomes current
        self._views[info.id] = view
        await self.query_one("#threads", ContentSwitcher).mount(view)
        await view.add_history(await self.port.history(info.id))
        if activate or (self.active is None and info.kind == "chat"):
            self._activate(info.id)

    def _activate(self, thread_id: str) -> None:
        self.active = thread_id
        self.tabs[thread_id].unread = 0
        self.query_one("#threads", ContentSwitcher).current = self._views[thread_id].id
        self.paint_tabs()
        self.paint_header()

    def _ordered(self) -> list[str]:
        return ([t.id for t in self.tabs.values() if t.kind == "chat"]
                + [t.id for t in self.tabs.values() if t.kind == "alert"])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a modal (confirmation, palette) is open, only its own keys act."""
        return self.screen is self.screen_stack[0] or action in _MODAL_SAFE

    def action_next_thread(self, step: int = 1) -> None:
        order = self._ordered()
        if not order or self.active is None:
            return
        self._activate(order[(order.index(self.active) + step) % len(order)])

    def action_prev_thread(self) -> None:
        self.action_next_thread(-1)

    @work(group="ui", exit_on_error=False)
    async def action_new_chat(self) -> None:
        n = sum(t.kind == "chat" for t in self.tabs.values()) + 1
        info = await self.port.new_thread(f"chat-{n}")
        await self.add_thread(info, activate=True)

    @work(group="ui", exit_on_error=False)
    async def action_close_thread(self) -> None:
        tid = self.active
        if tid is None:
            return
        tab = self.tabs[tid]
        if tab.kind == "chat" and sum(t.kind == "chat" for t in self.tabs.values()) == 1:
            self.notify("the last chat thread stays open", severity="warning")
            return
        if not await self.push_screen_wait(ConfirmScreen("Close this thread?",
                                                         f"{tab.kind} thread '{tab.title}'")):
            return
        if tab.kind == "chat":
            await self.port.close_thread(tid)
        order = self._ordered()
        nxt = order[order.index(tid) - 1] if len(order) > 1 else None
        self.active = None
        if nxt is not None and nxt != tid:
            self._activate(nxt)  # before any await: a line typed meanwhile goes to the next thread
        del self.tabs[tid]
        view = self._views.pop(tid, None)
        self.paint_tabs()
        if view is not None:
            await view.remove()

    @work(group="ui", exit_on_error=False)
    async def action_rename_thread(self) -> None:
        tid = self.active
        if tid is None or self.tabs[tid].kind != "chat":
            self.notify("only chat threads can be renamed", severity="warning")
            return
        title = await self.push_screen_wait(PromptScreen("Rename the thread", self.tabs[tid].title))
        if title:
            await self.port.rename_thread(tid, title[:28])
            self.tabs[tid].title = title[:28]
            self.paint_tabs()

    # -- actions -----------------------------------------------------------------------------------
    def action_toggle_account(self) -> None:
        self.show_account = not self.show_account
        self._set_width_class(self.size.width)

    def action_refresh(self) -> None:
        self._snapshot_due = True

    def action_toggle_tool(self) -> None:
        view = self.view()
        if view is None or not view.toggle_last_tool():
            self.notify("no tool call in this thread")

    def action_scroll_thread(self, direction: int) -> None:
        """Page up / down the pane on screen: the thread, or the account when F8 shows it folded."""
        if self.has_class("-narrow") and self.show_account:
            self.action_scroll_account(direction)
            return
        view = self.view()
        if view is not None:
            if direction < 0:
                view.scroll_page_up()
            else:
                view.scroll_page_down()

    def action_scroll_account(self, direction: int) -> None:
        """Page the account column (shift+pageup / shift+pagedown), wherever the focus is."""
        panel = self.account_panel
        if direction < 0:
            panel.scroll_page_up(animate=False)
        else:
            panel.scroll_page_down(animate=False)

    def action_help(self) -> None:
        self.run_worker(self._show_help(), group="ui")

    async def _show_help(self) -> None:
        view = self.view()
        if view is not None:
            await view.add_markdown("**Keys**: " + KEYS_HINT + ", pageup/pagedown scroll the thread (the account "
                                    "when F8 shows it), shift+pageup/pagedown scroll the account"
                                    "\n\n**Slash commands**\n\n" + help_text())

    def prefill(self, text: str) -> None:
        """Put `text` in the input box (the palette's command templates)."""
        box = self.input_box
        box.value = text
        box.cursor_position = len(text)
        box.focus()

    @work(group="ui", exit_on_error=False)
    async def action_interrupt(self) -> None:
        tid = self.active
        if tid is None:
            return
        if self.tabs[tid].status != "running":
            return
        if await self.port.interrupt(tid):
            self.notify("interrupting the turn…")

    def action_approve(self) -> None:
        self._answer(True)

    def action_reject(self) -> None:
        self._answer(False)

    @work(group="ui", exit_on_error=False)
    async def _answer(self, approve: bool) -> None:
        view = self.view()
        card = view.pending_proposal() if view is not None else None
        if view is None or card is None:
            self.notify("no proposal waiting in this thread", severity="warning")
            return
        outcome = await self.port.answer_proposal(card.proposal_id, approve)
        if outcome.ok:
            card.set_answer("approved ✓" if approve else "rejected ✗")
        else:
            await view.add_notice(outcome.message, error=True)
        tab = self.tabs[view.thread_id]
        tab.pending_proposal = view.pending_proposal() is not None
        self.paint_tabs()

    def action_slash(self, line: str) -> None:
        self._submit(line)

    # -- input --------------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "input":
            return
        event.stop()
        text = event.value.strip()
        box = self.input_box
        box.value = ""
        if not text:
            return
        box.remember(text)
        self._submit(text)

    def _submit(self, text: str) -> None:
        tab = self.tabs.get(self.active) if self.active is not None else None
        if tab is not None:
            tab.used = True  # before any await: the connect worker must not drop this tab now
        if text.startswith("/"):
            try:
                cmd = parse_slash(text)
            except UsageError as exc:
                self.run_worker(self._notice(exc.message, error=True), group="ui")
                return
            self._run_slash(cmd, text)
        else:
            self._chat(text)

    async def _notice(self, text: str, *, error: bool = False) -> None:
        view = self.view()
        if view is not None:
            await view.add_notice(text, error=error)

    @work(group="chat", exit_on_error=False)
    async def _chat(self, text: str) -> None:
        tid = self.active
        view = self.view(tid)
        if tid is None or view is None:  # only before the first thread exists (the app is still starting)
            self.notify(f"not sent: no thread is open yet ({text[:40]})", severity="warning")
            return
        await view.add_user(text)
        tid = view.thread_id  # the placeholder may have been adopted by the engine's thread meanwhile
        outcome = await self.port.send_chat(tid, text)
        if not outcome.ok:
            await view.add_notice(outcome.message, error=True)

    @work(group="commands", exit_on_error=False)
    async def _run_slash(self, cmd: SlashCommand, line: str) -> None:
        await run_slash_command(self, cmd, line)


def _css_id(thread_id: str) -> str:
    """A thread id made safe for a CSS id (letters, digits, - and _)."""
    return "".join(c if c.isalnum() or c in "-_" else f"_{ord(c):x}" for c in thread_id)
