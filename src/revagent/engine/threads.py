"""Chat and alert threads: create, rename, close; alert threads per alert firing; `run_alert_turn`.

Chat threads are created, renamed and closed by the trader. An alert thread is created by the
alert queue's handler for one firing of one alert: its id is derived from the trigger key
(`al_<hash>`), so a redelivered alert (after a crash) finds its thread and its transcript, and
`run_alert_turn` resumes an unfinished turn instead of starting over, or reports a finished one
without re-running it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from revagent.engine.prompt import alert_title
from revagent.engine.runner import Listener, TurnOutcome, TurnRunner
from revagent.errors import NotFoundError, UsageError
from revagent.models import utc_now
from revagent.store.alert_events import AlertEvent
from revagent.store.threads import ApprovalMode, ThreadRecord, ThreadStore

DEFAULT_CHAT_TITLE = "main"


def alert_thread_id(event: AlertEvent) -> str:
    """The alert runner's thread for an event: one per alert id (a watcher pair, a trade, a time
    alert), so a trade's alerts share one thread and its history."""
    from revagent.alerts.runner import thread_id_for

    return thread_id_for(event)


class Threads:
    """The trader-facing thread operations of one session."""

    def __init__(self, store: ThreadStore, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock

    async def create_chat(self, title: str = DEFAULT_CHAT_TITLE, *, mode: ApprovalMode | None = None) -> ThreadRecord:
        title = title.strip()
        if not title or len(title) > 80:
            raise UsageError("a thread title is 1-80 characters")
        now = self.clock()
        return await self.store.put(ThreadRecord(kind="chat", title=title, mode=mode, created_at=now, updated_at=now))

    async def chat(self, name: str | None = None) -> ThreadRecord:
        """The open chat thread named `name` (id or title), created when missing (default `main`)."""
        name = (name or DEFAULT_CHAT_TITLE).strip()
        found = await self.store.find(name)
        if found is not None:
            if found.kind != "chat":
                raise UsageError(f"thread {name!r} is an alert thread; ask in a chat thread")
            if found.status == "closed":
                raise UsageError(f"thread {name!r} is closed")
            return found
        return await self.create_chat(name)

    async def rename(self, thread_id: str, title: str) -> ThreadRecord:
        thread = await self._get(thread_id)
        title = title.strip()
        if not title or len(title) > 80:
            raise UsageError("a thread title is 1-80 characters")
        return await self.store.put(thread.model_copy(update={"title": title, "updated_at": self.clock()}))

    async def close(self, thread_id: str) -> ThreadRecord:
        thread = await self._get(thread_id)
        return await self.store.put(thread.model_copy(update={"status": "closed", "updated_at": self.clock()}))

    async def reopen(self, thread_id: str) -> ThreadRecord:
        """Reopen a closed or budget-stopped thread (a human decision)."""
        thread = await self._get(thread_id)
        return await self.store.put(thread.model_copy(update={"status": "open", "stopped_reason": "",
                                                               "updated_at": self.clock()}))

    async def set_mode(self, thread_id: str, mode: ApprovalMode | None) -> ThreadRecord:
        thread = await self._get(thread_id)
        return await self.store.put(thread.model_copy(update={"mode": mode, "updated_at": self.clock()}))

    async def for_alert(self, event: AlertEvent, thread_id: str | None = None) -> ThreadRecord:
        """The alert thread of `event` (created at its first firing, titled from the alert).
        `thread_id` default: the alert runner's `thread_id_for(event)`, one thread per alert id."""
        now = self.clock()
        record, _ = await self.store.create_if_absent(ThreadRecord(
            id=thread_id or alert_thread_id(event), kind="alert", title=alert_title(event),
            alert_key=event.trigger_key, created_at=now, updated_at=now))
        return record

    async def _get(self, thread_id: str) -> ThreadRecord:
        thread = await self.store.find(thread_id)
        if thread is None:
            raise NotFoundError(f"no thread {thread_id!r}")
        return thread


async def run_alert_turn(runner: TurnRunner, threads: Threads, event: AlertEvent, *,
                         listener: Listener | None = None, thread_id: str | None = None) -> TurnOutcome:
    """Run the alert turn of one firing: the alert queue's handler calls this.

    Creates (or finds) the alert thread for `event.trigger_key` and runs its turn; after a crash the
    unfinished turn resumes from the transcript, and a finished one is reported, not re-run. The
    outcome's `status` tells the handler what happened (`done`, `interrupted`, `budget`, `error`,
    `max_steps`, `refused` when the thread was stopped).
    """
    thread = await threads.for_alert(event, thread_id)
    return await runner.run_alert(thread.id, event, listener=listener)


OK_STATUSES = frozenset({"done", "interrupted", "budget", "max_steps", "refused"})
MANAGEMENT_KINDS = frozenset({"early_warning", "profit_target", "liquidation_warning"})
"""Alert kinds whose turn manages a trade: its outcome is `acted` or `hold`."""


class AlertTurnHandler:
    """The alert queue's handler (`alerts.runner.AlertRunner(handler=...)`): runs `run_alert_turn` for
    a `QueuedAlert` and reports an `alerts.runner.TurnOutcome`. A model or internal error is not ok
    (the queue retries it with backoff, then parks it); a budget stop, an interrupt or a stopped
    thread is ok (retrying would not help) and its summary says what happened."""

    def __init__(self, runner: TurnRunner, threads: Threads) -> None:
        self.runner = runner
        self.threads = threads

    async def __call__(self, item: Any) -> Any:
        from revagent.alerts.runner import TurnOutcome as QueueOutcome

        event: AlertEvent = item.event
        started = self.runner.services.clock()
        outcome = await run_alert_turn(self.runner, self.threads, event, thread_id=alert_thread_id(event))
        summary = (outcome.text.strip().splitlines() or [""])[-1][:300]
        if outcome.status != "done":
            summary = f"[{outcome.status}] {outcome.error or summary}"[:300]
        decision: Literal["", "acted", "hold", "traded", "re-armed", "lapsed"] = ""
        if outcome.status == "done" and event.kind.value in MANAGEMENT_KINDS:
            # a management turn that changed no trade held it: a recorded outcome, not a failure
            decision = "acted" if outcome.trades or outcome.proposals else "hold"
        elif outcome.status == "done" and event.kind.value == "watcher":
            # the choice the brief asked for: trade the setup, re-arm at new levels, or let it lapse
            decision = "traded" if outcome.trades or outcome.proposals else (
                "re-armed" if await self._rearmed(event, started) else "lapsed")
        return QueueOutcome(thread_id=outcome.thread_id, ok=outcome.status in OK_STATUSES, summary=summary,
                            error=outcome.error if outcome.status not in OK_STATUSES else "", decision=decision)

    async def _rearmed(self, event: AlertEvent, since: Any) -> bool:
        """True when a watcher pair on the alert's market was set during the turn (armed, created since)."""
        market = event.context.get("market")
        pairs = await self.runner.services.store.watchers.all()
        return any(p.market == market and p.created_at >= since and p.id != event.alert_id
                   and any(leg is not None and leg.status.value == "armed" for leg in (p.upper, p.lower))
                   for p in pairs)
