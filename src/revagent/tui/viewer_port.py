"""`ViewerPort`: the TUI's `SessionPort` for a wallet another process owns (a running daemon).

The viewer never trades by itself and builds no second runtime: reads come from the store (notes,
watchers, time alerts, threads and transcripts) and from the owner (`account.view`); everything
that acts goes to the owner on the command channel (`revagent.runtime.remote.call`), the same handlers the
CLI reaches. Chat is the owner's `chat` command: its streamed replies are republished as
`TurnEvent`s on the viewer's own bus, so the screen streams them like a local turn.

Live state: with an `events` feed (the session's Redis event mirror, decoded; the store will provide
it), every mirrored event reaches the screen; without one, the app's periodic snapshot refresh and
a thread poll (new alert threads appear by themselves) keep it current.

Only the app's event loop calls it; `aclose()` cancels its tasks and closes its Redis client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from revagent.bus import Bus, Event, Subscription
from revagent.config import Config, ResolvedWallet
from revagent.events import AlertSignal, MidsUpdated, TurnEvent
from revagent.models import utc_now
from revagent.risk import AccountView, RiskStatus, RiskUsage
from revagent.runtime.commands import TypedRetries
from revagent.store.account_views import AccountViewStore, StoredAccount
from revagent.store.ledger import LedgerStore
from revagent.tasks import cancel_and_wait
from revagent.tui.equity import EquityHistory
from revagent.tui.port import CommandOutcome, HistoryEntry, Identity, PanelSnapshot, ThreadInfo
from revagent.tui.session_port import cost_report, outcome_of, write_through_store
from revagent.tui.slash import CostCmd, HelpCmd, OpenTradeCmd, SlashCommand, help_text

if TYPE_CHECKING:
    from revagent.store.repos import SessionStore
    from revagent.store.threads import ThreadStore

log = logging.getLogger(__name__)

EventFeed = Callable[[], AsyncIterator[Event]]
THREAD_POLL_SECONDS = 3.0
MIDS_POLL_SECONDS = 1.0  # the owner's mids are not mirrored (a tick storm): the viewer asks for them
_STREAMED = {"thinking", "text", "tool_call", "tool_result", "proposal", "usage", "notice"}


class ViewerPort:
    """See the module docstring. Build with `await ViewerPort.open(config, wallet)`."""

    def __init__(self, config: Config, wallet: ResolvedWallet, store: SessionStore, threads: ThreadStore, *,
                 events: EventFeed | None = None, clock: Callable[[], datetime] = utc_now,
                 command_timeout: float = 15.0) -> None:
        self.config = config
        self.wallet = wallet
        self.store = store
        self.thread_store = threads
        self.events = events
        self.clock = clock
        self.command_timeout = command_timeout
        self.bus = Bus()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen_threads: set[str] = set()
        self._equity = EquityHistory(LedgerStore(store.redis, store.keys), clock=clock)
        self._retries = TypedRetries()
        self._views = AccountViewStore(store.redis, store.keys)

    @classmethod
    async def open(cls, config: Config, wallet: ResolvedWallet, *, events: EventFeed | None = None) -> ViewerPort:
        from revagent.store.connection import open_redis, resolve_session_id
        from revagent.store.repos import SessionStore
        from revagent.store.threads import ThreadStore

        redis = await open_redis(config)
        store = SessionStore(redis, await resolve_session_id(config, wallet))
        return cls(config, wallet, store, ThreadStore(redis, store.keys), events=events)

    def mirror_feed(self) -> AsyncIterator[Event]:
        """The owner's mirrored bus events, live, from the session's Redis channel. Its turns reach
        this screen through the chat command, so they are left out here (they would show twice)."""
        from revagent.store.invalidations import SessionEventFeed

        return aiter(SessionEventFeed(self.store.redis, self.store.keys.events, exclude=frozenset({TurnEvent.type})))

    async def aclose(self) -> None:
        await cancel_and_wait(list(self._tasks))
        await self.store.redis.aclose()

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("viewer task %s died: %r", name, t.exception())

        task.add_done_callback(done)

    @property
    def identity(self) -> Identity:
        return Identity(self.wallet.name, self.wallet.network, self.store.sid.address, role="viewer")

    def subscribe(self) -> Subscription:
        return self.bus.subscribe(maxsize=4000)

    async def connect(self) -> CommandOutcome:
        if self.events is not None:
            self._spawn(self._relay(self.events), "viewer:events")
        self._spawn(self._poll_threads(), "viewer:threads")
        self._spawn(self._poll_mids(), "viewer:mids")
        return CommandOutcome(True, "viewing the owner's session")

    async def _poll_mids(self) -> None:
        """The owner's live mids as price ticks on this screen's bus (only those that moved), so the
        positions and watchers follow the market as on the owner's own screen."""
        from decimal import Decimal, InvalidOperation

        last: dict[str, Decimal] = {}
        while True:
            outcome = await self._call("account.mids", {}, timeout=5)
            if outcome.ok:
                try:
                    mids = {m: Decimal(v) for m, v in (outcome.data.get("mids") or {}).items()}
                except (InvalidOperation, TypeError):
                    mids = {}
                moved = {m: v for m, v in mids.items() if last.get(m) != v}
                if moved:
                    last.update(moved)
                    self.bus.publish(MidsUpdated(mids=moved, at=self.clock()))
            await asyncio.sleep(MIDS_POLL_SECONDS)

    async def _relay(self, feed: EventFeed) -> None:
        async for event in feed():
            self.bus.publish(event)

    async def _poll_threads(self) -> None:
        """New alert threads appear by themselves, even without an event feed."""
        while True:
            for t in await self.thread_store.all():
                if t.kind == "alert" and t.status != "closed" and t.id not in self._seen_threads:
                    self._seen_threads.add(t.id)
                    self.bus.publish(AlertSignal(status="started", trigger_key=t.alert_key or "", kind="alert",
                                                 thread_id=t.id, detail=t.title))
            await asyncio.sleep(THREAD_POLL_SECONDS)

    async def _call(self, name: str, args: dict[str, Any], *, timeout: float | None = None,
                    on_entry: Callable[[dict[str, Any]], None] | None = None) -> CommandOutcome:
        from revagent.errors import RevagentError
        from revagent.runtime.remote import call

        final: tuple[str, Any] = ("error", {"message": "the owner did not answer"})
        try:
            async for entry in call(self.config, self.wallet, name, args, timeout=timeout or self.command_timeout):
                if entry["type"] == "done":
                    final = ("done", entry["data"])
                elif on_entry is not None:
                    on_entry(entry)
        except RevagentError as exc:
            return CommandOutcome(False, exc.message, data={"code": exc.code})
        return outcome_of(final)

    # -- reads ---------------------------------------------------------------------------------
    async def load_snapshot(self, *, fresh: bool = False) -> PanelSnapshot:
        notes = tuple(await self.store.notes.all())
        watchers = tuple(p for p in await self.store.watchers.all() if p.active)
        alerts = tuple(sorted((a for a in await self.store.time_alerts.all() if a.status.value == "scheduled"),
                              key=lambda a: a.fire_at))
        view = await self._call("account.view", {"fresh": True} if fresh else {})
        if not view.ok:
            return PanelSnapshot(watchers=watchers, time_alerts=alerts, notes=notes,
                                 problem=f"the owner did not give the account: {view.message}")
        doc = view.data
        account = AccountView.model_validate(doc["account"])
        risk_status, usage = RiskStatus.model_validate(doc["risk"]), RiskUsage.model_validate(doc["usage"])
        await self._views.put(StoredAccount(account=account, status=risk_status, usage=usage, saved_at=self.clock()),
                              force=fresh)
        equity = await self._equity.points(account.equity)
        overrides = await self.store.settings.overrides()  # the owner's /mode choices, else the config's
        modes = {"chat": str(overrides.get("mode.chat") or self.wallet.chat_mode()),
                 "alert": str(overrides.get("mode.alert") or self.wallet.alert_mode())}
        return PanelSnapshot(account=account, status=risk_status, usage=usage, watchers=watchers, time_alerts=alerts,
                             notes=notes, equity_history=equity, sync_phase=account.sync_phase, modes=modes)

    async def threads(self) -> Sequence[ThreadInfo]:
        out = []
        for t in await self.thread_store.all():
            if t.status == "closed":
                continue
            self._seen_threads.add(t.id)
            out.append(ThreadInfo(t.id, t.kind, t.title, "failed" if t.status == "stopped" else "idle"))
        return out

    async def history(self, thread_id: str) -> Sequence[HistoryEntry]:
        items: list[HistoryEntry] = []
        for e in await self.thread_store.transcript(thread_id):
            if e.kind == "user":
                items.append(HistoryEntry("user", e.text))
            elif e.kind == "assistant":
                text = "".join(b.get("text", "") for b in e.blocks if b.get("type") == "text")
                if text:
                    items.append(HistoryEntry("assistant", text))
            elif e.kind in ("notice", "summary"):
                items.append(HistoryEntry("notice", e.text))
        return items[-200:]

    async def new_thread(self, title: str) -> ThreadInfo:
        from revagent.engine.threads import Threads

        t = await Threads(self.thread_store, self.clock).create_chat(title)
        self._seen_threads.add(t.id)
        return ThreadInfo(t.id, "chat", t.title)

    async def rename_thread(self, thread_id: str, title: str) -> None:
        from revagent.engine.threads import Threads

        await Threads(self.thread_store, self.clock).rename(thread_id, title)

    async def close_thread(self, thread_id: str) -> None:
        from revagent.engine.threads import Threads

        await Threads(self.thread_store, self.clock).close(thread_id)

    # -- acting through the owner ------------------------------------------------------------------
    async def send_chat(self, thread_id: str, text: str) -> CommandOutcome:
        self._spawn(self._chat(thread_id, text), f"viewer:chat:{thread_id}")
        return CommandOutcome(True, "sent to the owner")

    async def _chat(self, thread_id: str, text: str) -> None:
        turn = f"viewer-{thread_id}"
        self.bus.publish(TurnEvent(thread_id=thread_id, turn_id=turn, kind="started"))

        def relay(entry: dict[str, Any]) -> None:
            kind = "error" if entry["type"] == "turn_error" else entry["type"]
            if kind in _STREAMED or kind == "error":
                data = entry["data"] if isinstance(entry["data"], dict) else {"text": str(entry["data"])}
                self.bus.publish(TurnEvent(thread_id=thread_id, turn_id=turn, kind=kind, data=data))

        outcome = await self._call("chat", {"thread": thread_id, "message": text}, timeout=600, on_entry=relay)
        if not outcome.ok:
            self.bus.publish(TurnEvent(thread_id=thread_id, turn_id=turn, kind="error",
                                       data={"message": outcome.message}))
        self.bus.publish(TurnEvent(thread_id=thread_id, turn_id=turn, kind="done", data=outcome.data))

    async def interrupt(self, thread_id: str) -> bool:
        outcome = await self._call("thread.interrupt", {"thread": thread_id})
        return outcome.ok and bool(outcome.data.get("interrupted"))

    async def answer_proposal(self, proposal_id: str, approve: bool) -> CommandOutcome:
        outcome = await self._call("proposal.decide", {"id": proposal_id, "approve": approve, "by": "tui"})
        if not outcome.ok:
            return outcome
        status_ = str(outcome.data.get("status", ""))
        return CommandOutcome(status_ in ("executed", "rejected", "approved"),
                              str(outcome.data.get("result") or status_), data=outcome.data)

    async def preview(self, cmd: OpenTradeCmd) -> CommandOutcome:
        return await self._call("trade.preview", cmd.trade_args())

    async def run_slash(self, cmd: SlashCommand, action_id: str) -> CommandOutcome:
        if isinstance(cmd, HelpCmd):
            return CommandOutcome(True, help_text(cmd.topic))
        written = await write_through_store(self.store, cmd, self.clock())
        if written is not None:
            return written
        if isinstance(cmd, CostCmd):
            return await cost_report(self.thread_store, cmd.thread_id, self.clock(), self.wallet.llm.max_usd_per_day)
        name, args = cmd.session_command()
        if not name.startswith("trade."):
            return await self._call(name, args)
        action_id = self._retries.action_id(name, args, action_id)  # the same command typed again: once
        outcome = await self._call(name, {**args, "action_id": action_id})
        self._retries.settle(name, args, action_id, final=TypedRetries.is_final(outcome.data))
        return outcome
