"""`SessionAdapter`: the TUI's `SessionPort` over a real, owned `Session`.

Reads go to the session's store and account source; trading and risk commands go through
`Session.run_command` (the same handlers the CLI and the command channel reach), notes, watchers and
time alerts through the store's repositories (which publish invalidations). Chat goes to a
`ChatEngine` when the session has one (the turn engine's runner); without one the adapter keeps
an in-memory "main" thread and says clearly that no model runs here.

Only the app's event loop calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import ValidationError

from revagent.bus import Subscription
from revagent.errors import RevagentError, UsageError
from revagent.models import utc_now
from revagent.risk import AccountView, risk_usage, status
from revagent.store.account_views import AccountViewStore, StoredAccount
from revagent.store.ledger import LedgerStore
from revagent.tui import format as fmt
from revagent.tui.equity import EquityHistory
from revagent.tui.port import (
    CommandOutcome,
    HistoryEntry,
    Identity,
    PanelSnapshot,
    ThreadInfo,
    ThreadKind,
    ThreadStatus,
)
from revagent.tui.slash import AlertCmd, CostCmd, HelpCmd, NoteCmd, OpenTradeCmd, SlashCommand, WatchCmd, help_text

if TYPE_CHECKING:
    from revagent.runtime.session import Session
    from revagent.store.repos import SessionStore
    from revagent.store.threads import ThreadStore

log = logging.getLogger(__name__)

EQUITY_HISTORY = 240


class ThreadLike(Protocol):
    """A thread as the engine lists it (`kind` chat/alert, `status` idle/running/failed/...)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def status(self) -> str: ...


class HistoryLike(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def text(self) -> str: ...


class ChatEngine(Protocol):
    """What the adapter needs from the turn engine: `revagent.engine.service.TurnEngine` fits as is."""

    async def threads(self) -> Sequence[ThreadLike]: ...

    async def history(self, thread_id: str) -> Sequence[HistoryLike]: ...

    async def new_thread(self, title: str) -> ThreadLike: ...

    async def rename_thread(self, thread_id: str, title: str) -> None: ...

    async def close_thread(self, thread_id: str) -> None: ...

    async def send(self, thread_id: str, text: str) -> object: ...

    async def interrupt(self, thread_id: str) -> bool: ...

    async def answer_proposal(self, proposal_id: str, approve: bool) -> dict[str, Any]: ...


_KINDS: dict[str, ThreadKind] = {"chat": "chat", "alert": "alert"}
_STATUSES: dict[str, ThreadStatus] = {"idle": "idle", "queued": "queued", "running": "running", "done": "done",
                                      "failed": "failed"}


def thread_info(t: ThreadLike) -> ThreadInfo:
    """The engine's thread as the TUI's ThreadInfo (unknown kinds show as chat, unknown states as idle)."""
    return ThreadInfo(t.id, _KINDS.get(t.kind, "chat"), t.title, _STATUSES.get(t.status, "idle"))


def history_entry(h: HistoryLike) -> HistoryEntry:
    role: Literal["user", "assistant", "notice"] = (
        "user" if h.role == "user" else "assistant" if h.role == "assistant" else "notice")
    return HistoryEntry(role, h.text)


def outcome_of(result: tuple[str, Any]) -> CommandOutcome:
    """Turn a session command's final `(type, data)` into a CommandOutcome in the trader's words."""
    kind, data = result
    if kind == "error":
        doc = data if isinstance(data, dict) else {}
        return CommandOutcome(False, str(doc.get("message", "the command failed")), data=doc)
    doc = data if isinstance(data, dict) else {"result": data}
    reasons = tuple(str(r.get("message", r)) if isinstance(r, dict) else str(r) for r in doc.get("reasons") or ())
    status_ = doc.get("status")
    if isinstance(status_, str):  # a GatewayResult (risk.show carries a status document instead)
        ok = status_ in ("done", "duplicate")
        return CommandOutcome(ok, str(doc.get("message") or status_), reasons, doc)
    if "approved" in doc:  # a Verdict (preview)
        ok = bool(doc["approved"])
        return CommandOutcome(ok, "the risk engine approves" if ok else "the risk engine refuses", reasons, doc)
    if "results" in doc:  # flatten
        ok = bool(doc.get("ok"))
        return CommandOutcome(ok, f"flatten: {len(doc['results'])} action(s), "
                              + ("all done" if ok else "not all done"), reasons, doc)
    return CommandOutcome(True, "done", reasons, doc)


class SessionAdapter:
    """The `SessionPort` of a session this process owns. `clock` is injectable for tests."""

    def __init__(self, session: Session, *, engine: ChatEngine | None = None,
                 clock: Callable[[], datetime] = utc_now, start_runtime: bool = True) -> None:
        """`engine`: the turn engine; None means `session.engine` once the session has one (built by
        `Session.start_runtime` with the trading parts). `start_runtime=False`: `connect()` leaves the
        session as it is (tests that give the session an account source and an engine of their own)."""
        self.session = session
        self.start_runtime = start_runtime
        self._connect_problem = "connecting to the exchange…" if start_runtime else ""
        self._engine = engine
        self.clock = clock
        self._equity: EquityHistory | None = None
        self._stored: AccountViewStore | None = None
        self._local_threads: dict[str, ThreadInfo] = {"main": ThreadInfo("main", "chat", "main")}
        self._thread_seq = 0
        from revagent.runtime.commands import TypedRetries

        self._retries = TypedRetries()

    @property
    def engine(self) -> ChatEngine | None:
        """The given engine, else the session's own (`session.engine`) once it exists."""
        if self._engine is not None:
            return self._engine
        return self.session.engine  # a TurnEngine: mypy checks here that it fits ChatEngine

    @property
    def _views(self) -> AccountViewStore:
        """The stored account view (built at first use: the session's store exists once it started)."""
        if self._stored is None:
            self._stored = AccountViewStore(self.session.store.redis, self.session.store.keys)
        return self._stored

    @property
    def identity(self) -> Identity:
        return Identity(wallet=self.session.wallet.name, network=self.session.wallet.network,
                        address=self.session.sid.address)

    def subscribe(self) -> Subscription:
        return self.session.bus.subscribe(maxsize=4000)

    async def connect(self) -> CommandOutcome:
        """Start what a long-running owner runs (`Session.start_runtime`: trading parts, turn engine,
        alert service). Trading is tried first on its own so the panel can say why it is missing."""
        if not self.start_runtime:
            return CommandOutcome(True, "the session is left as it is")
        problem = ""
        try:
            await self.session.start_trading()
        except Exception as exc:  # shown on the panel; trading commands retry it
            problem = f"the exchange is not reachable: {getattr(exc, 'message', None) or exc}"
            log.warning("start_trading failed: %r", exc)
        try:
            await self.session.start_runtime()  # alerts run even when the venue is down
        except Exception as exc:
            problem = problem or f"the session's runtime did not start: {exc}"
            log.exception("start_runtime failed")
        self._connect_problem = problem
        return CommandOutcome(not problem, problem or "connected")

    # -- reads -------------------------------------------------------------------------------
    async def load_snapshot(self, *, fresh: bool = False) -> PanelSnapshot:
        store = self.session.store
        notes = tuple(await store.notes.all())
        watchers = tuple(p for p in await store.watchers.all() if p.active)
        alerts = tuple(a for a in await store.time_alerts.all() if a.status.value == "scheduled")
        problem = ""
        account = None
        try:
            account = await self._account(fresh)
        except RuntimeError:
            problem = self._connect_problem or "no trading parts in this session yet: the account is not read"
        except Exception as exc:  # the exchange may be unreachable: show why, keep the rest
            problem = f"cannot read the account: {exc}"
            log.warning("snapshot: %s", problem)
        risk_status = usage = None
        if self.session.risk is not None:
            now = self.clock()
            settings = await self.session.risk.settings()
            state = await self.session.risk.get()
            risk_status = status(state, now, settings)
            if account is not None:
                usage = risk_usage(account, settings, state, now)
        stored_at = None
        if account is not None:  # the next start paints this one at once
            await self._views.put(StoredAccount(account=account, status=risk_status, usage=usage,
                                                saved_at=self.clock()), force=fresh)
        else:  # not live yet: the last stored view, dimmed with its age, rather than nothing
            stored = await self._views.get()
            if stored is not None:
                account, usage, stored_at = stored.account, stored.usage, stored.saved_at
                risk_status = risk_status or stored.status
        if self._equity is None:
            self._equity = EquityHistory(LedgerStore(store.redis, store.keys), minutes=EQUITY_HISTORY,
                                         clock=self.clock)
        equity = await self._equity.points(account.equity if account is not None else None)
        from revagent.runtime.commands import effective_modes

        modes = {k: str(v) for k, v in (await effective_modes(self.session)).items()}
        return PanelSnapshot(
            account=account, status=risk_status, usage=usage, watchers=watchers, modes=modes,
            time_alerts=tuple(sorted(alerts, key=lambda a: a.fire_at)), notes=notes,
            equity_history=equity, stored_at=stored_at,
            sync_phase=account.sync_phase if account is not None and stored_at is None else None, problem=problem)

    async def _account(self, fresh: bool) -> AccountView:
        if fresh:
            try:
                return await self.session.fresh_account()
            except Exception as exc:  # the live view is still worth showing
                log.warning("fresh account read failed, showing the live view: %r", exc)
        return await self.session.account()

    async def threads(self) -> Sequence[ThreadInfo]:
        if self.engine is not None:
            return [thread_info(t) for t in await self.engine.threads()]
        return list(self._local_threads.values())

    async def history(self, thread_id: str) -> Sequence[HistoryEntry]:
        if self.engine is not None:
            return [history_entry(h) for h in await self.engine.history(thread_id)]
        return []

    async def new_thread(self, title: str) -> ThreadInfo:
        if self.engine is not None:
            return thread_info(await self.engine.new_thread(title))
        self._thread_seq += 1
        info = ThreadInfo(f"chat-{self._thread_seq}", "chat", title)
        self._local_threads[info.id] = info
        return info

    async def rename_thread(self, thread_id: str, title: str) -> None:
        if self.engine is not None:
            await self.engine.rename_thread(thread_id, title)
            return
        old = self._local_threads.get(thread_id)
        if old is not None:
            self._local_threads[thread_id] = ThreadInfo(old.id, old.kind, title, old.status)

    async def close_thread(self, thread_id: str) -> None:
        if self.engine is not None:
            await self.engine.close_thread(thread_id)
            return
        self._local_threads.pop(thread_id, None)

    # -- chat ----------------------------------------------------------------------------------
    async def send_chat(self, thread_id: str, text: str) -> CommandOutcome:
        if self.engine is None:
            return CommandOutcome(False, "no model runs in this session yet: slash commands work (try /help)")
        await self.engine.send(thread_id, text)
        return CommandOutcome(True, "sent")

    async def interrupt(self, thread_id: str) -> bool:
        if self.engine is None:
            return False
        return await self.engine.interrupt(thread_id)

    async def answer_proposal(self, proposal_id: str, approve: bool) -> CommandOutcome:
        if self.engine is None:
            return CommandOutcome(False, "no turn engine in this session: nothing to approve")
        try:
            doc = await self.engine.answer_proposal(proposal_id, approve)
        except RevagentError as exc:  # unknown, expired or already decided
            return CommandOutcome(False, exc.message)
        status_ = str(doc.get("status", ""))
        ok = status_ in ("executed", "rejected", "approved")
        message = str(doc.get("result") or status_ or "answered")
        return CommandOutcome(ok, message, data=doc)

    # -- commands ------------------------------------------------------------------------------
    async def _run(self, name: str, args: dict[str, Any]) -> CommandOutcome:
        if name not in self.session.handlers:
            return CommandOutcome(False, f"{name} is not available in this session yet")

        async def emit(type_: str, data: Any) -> None:
            return None

        return outcome_of(await self.session.run_command(name, args, emit))

    async def preview(self, cmd: OpenTradeCmd) -> CommandOutcome:
        return await self._run("trade.preview", cmd.trade_args())

    async def run_slash(self, cmd: SlashCommand, action_id: str) -> CommandOutcome:
        if isinstance(cmd, HelpCmd):
            return CommandOutcome(True, help_text(cmd.topic))
        written = await write_through_store(self.session.store, cmd, self.clock())
        if written is not None:
            return written
        if isinstance(cmd, CostCmd):
            from revagent.store.threads import ThreadStore

            store = self.session.store
            return await cost_report(ThreadStore(store.redis, store.keys), cmd.thread_id, self.clock(),
                                     self.session.wallet.llm.max_usd_per_day)
        name, args = cmd.session_command()
        if not name.startswith("trade."):
            return await self._run(name, args)
        from revagent.runtime.commands import TypedRetries

        action_id = self._retries.action_id(name, args, action_id)  # the same command typed again: once
        outcome = await self._run(name, {**args, "action_id": action_id})
        self._retries.settle(name, args, action_id, final=TypedRetries.is_final(outcome.data))
        return outcome


async def write_through_store(store: SessionStore, cmd: SlashCommand, now: datetime) -> CommandOutcome | None:
    """Notes, watchers and time alerts are written through the store (which publishes the invalidation
    a running owner picks up); None for any other command."""
    try:
        if isinstance(cmd, NoteCmd):
            note = await store.notes.put(cmd.as_action().resolve(None).build(now))
            return CommandOutcome(True, f"note {note.id} saved", data={"id": note.id})
        if isinstance(cmd, WatchCmd):
            pair = cmd.as_action().resolve(None).build(now)
            await store.watchers.put(pair)
            return CommandOutcome(True, f"watcher {pair.id} on {cmd.market} armed", data={"id": pair.id})
        if isinstance(cmd, AlertCmd):
            try:
                alert = cmd.as_action().resolve(None).build(now)
            except UsageError as exc:
                return CommandOutcome(False, exc.message)
            await store.time_alerts.put(alert)
            return CommandOutcome(True, f"time alert {alert.id} at {alert.fire_at:%H:%M} UTC", data={"id": alert.id})
    except ValidationError as exc:
        return CommandOutcome(False, str(exc.errors()[0]["msg"]).removeprefix("Value error, "))
    return None


async def cost_report(threads: ThreadStore, thread_id: str, now: datetime, day_budget_usd: Decimal) -> CommandOutcome:
    """Model usage and cost today (UTC day) and in one thread, read from the store."""
    day = await threads.day_usage(now.date())
    lines = [f"today: {fmt.money(day.cost_usd)} of {fmt.money(day_budget_usd)} ({day.calls} model calls, "
             f"{day.input_tokens + day.cache_read_input_tokens + day.cache_creation_input_tokens:,} in / "
             f"{day.output_tokens:,} out tokens, {day.cache_read_input_tokens:,} from the cache)"]
    if thread_id:
        t = await threads.thread_usage(thread_id)
        lines.append(f"this thread: {fmt.money(t.cost_usd)} ({t.calls} model calls)")
    return CommandOutcome(True, "\n".join(lines), data={"day_cost_usd": str(day.cost_usd)})
