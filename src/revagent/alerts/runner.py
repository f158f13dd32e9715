"""The alert queue's consumer and the runner contract: who runs an alert turn, how many at once.

Contract (for the turn engine, which plugs in as the `handler`):

- `handler(item: QueuedAlert) -> TurnOutcome` runs (or resumes) the alert thread's turn for one queue
  entry. `item.redelivered` is True for an entry taken before a crash or a stop and never
  acknowledged: resume the thread (do not start it from scratch if its turn had finished; an order it
  placed is not placed twice, thanks to the gateway's deterministic client order ids).
- `outcome.ok` True: the entry is acknowledged and written to history (`done`). False, or an
  exception: `failed` retries it with backoff, then parks it as failed (visible in `alerts list`,
  requeued by `alerts retry`). A cancelled handler (shutdown) leaves the entry unacknowledged: it is
  redelivered at the next start.
- At most `concurrency` turns run at once (config `alerts.concurrency`, default 1), and one turn at a
  time per thread (`thread_id_for`: one alert thread per alert id, so a trade's alerts never overlap).
- Protection never depends on this: stop repairs already ran in the scheduler before the entry was
  queued.

Bus signals (`AlertSignal`): started, finished, retrying, failed, each with the thread id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from revagent.bus import Bus
from revagent.events import AlertSignal
from revagent.store.alert_events import AlertEvent
from revagent.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def check_cancelled() -> None:
    """Raise CancelledError if the current task was asked to cancel.

    redis-py 8's asyncio client can swallow a `Task.cancel()` that lands while a blocking read
    (`XREADGROUP BLOCK`, pub/sub `get_message(timeout=...)`) is finishing: the call returns normally and
    the loop around it would run on forever. `Task.cancelling()` still counts the request, so loops that
    await Redis call this after each such await.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What a handler reports for one entry. `summary` goes to history; `error` when `ok` is False.

    `decision` says what a management turn decided: `acted` (it changed a trade: an order, a stop, a
    target, a proposal) or `hold` (it looked and left the trade as it is: a valid outcome, recorded in
    the alert's history like any other, never a failure, and the level does not fire again for it);
    for a watcher: `traded` (it opened the setup or proposed it), `re-armed` (it set a new pair on the
    market) or `lapsed`; empty when the handler does not say."""

    thread_id: str
    ok: bool = True
    summary: str = ""
    error: str = ""
    decision: Literal["", "acted", "hold", "traded", "re-armed", "lapsed"] = ""


AlertHandler = Callable[[Any], Awaitable[TurnOutcome]]
"""`async handler(item: QueuedAlert) -> TurnOutcome` (see the module docstring)."""


def thread_id_for(event: AlertEvent) -> str:
    """The alert thread of an event: one per alert id (a watcher pair, a trade, a time alert)."""
    return f"alert:{event.alert_id}"


def describe_event(event: AlertEvent) -> str:
    """A one-line summary of an event for logs, history and notifications."""
    ctx = event.context
    parts = [event.kind.value]
    if ctx.get("market"):
        parts.append(str(ctx["market"]))
    if ctx.get("slot") and event.kind.value == "watcher":
        parts.append(str(ctx["slot"]))
    if event.price is not None:
        parts.append(f"at {event.price}")
    if ctx.get("prompt"):
        parts.append(repr(str(ctx["prompt"])[:80]))
    if ctx.get("status") and event.kind.value == "stop_loss_verification":
        parts.append(f"stop {ctx['status']}")
    if event.late:
        parts.append("(late)")
    return " ".join(parts)


class LoggingHandler:
    """The handler until the turn engine exists: logs the event and records a summary.

    Protection already ran in the scheduler, so nothing here depends on a model being reachable.
    """

    async def __call__(self, item: Any) -> TurnOutcome:
        event: AlertEvent = item.event
        thread_id = thread_id_for(event)
        summary = describe_event(event)
        if event.first_action:
            summary += f" — first action: {event.first_action}"
        verb = "resumed" if item.redelivered else "received"
        log.info("alert %s %s (attempt %d): %s", event.trigger_key, verb, item.attempt, summary)
        return TurnOutcome(thread_id=thread_id, summary=summary)


@dataclass
class RunnerStats:
    started: int = 0
    finished: int = 0
    failed: int = 0
    retried: int = 0
    redelivered: int = 0
    running: set[str] = field(default_factory=set)


class AlertRunner:
    """Consumes the durable queue (`store.alert_queue.AlertQueue`) and runs one handler call per entry.

    `run()` is the consumer loop (an owned session task); `drain(timeout)` stops taking new entries and
    waits for running turns (SIGTERM); cancelling `run()` cancels running turns, whose entries stay
    unacknowledged and are redelivered at the next start.
    """

    def __init__(
        self,
        queue: Any,
        bus: Bus,
        handler: AlertHandler | None = None,
        *,
        concurrency: int = 1,
        block_ms: int = 1000,
        thread_of: Callable[[AlertEvent], str] = thread_id_for,
        error_backoff_s: float = 1.0,
        backlog: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.queue = queue
        self.bus = bus
        self.handler: AlertHandler = handler or LoggingHandler()
        self.concurrency = concurrency
        self.block_ms = block_ms
        self.thread_of = thread_of
        self.error_backoff_s = error_backoff_s
        self.stats = RunnerStats()
        self._slots = asyncio.Semaphore(concurrency)
        self._capacity = asyncio.Semaphore(backlog if backlog is not None else 4 * concurrency)
        self._threads: dict[str, asyncio.Lock] = {}
        self._turns: dict[asyncio.Task[None], str] = {}
        self._inflight: set[str] = set()
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def draining(self) -> bool:
        return self._draining

    def _is_draining(self) -> bool:
        return self._draining

    async def run(self) -> None:
        """Take entries while not draining; each runs as a task owned by this runner.

        An entry is taken only while fewer than `backlog` entries are taken and unfinished; it then
        waits for its thread (one turn per thread) and only after that for one of the `concurrency`
        run slots, so an alert waiting for a busy thread never holds a slot another thread could use.
        """
        try:
            while not self._is_draining():
                await self._capacity.acquire()
                if self._is_draining():
                    self._capacity.release()
                    break
                try:
                    items = await self.queue.take(count=1, block_ms=self.block_ms)
                    check_cancelled()
                except asyncio.CancelledError:
                    self._capacity.release()
                    raise
                except Exception as exc:
                    self._capacity.release()
                    check_cancelled()
                    log.error("taking from the alert queue failed (%r); retrying", exc)
                    await asyncio.sleep(self.error_backoff_s)
                    continue
                if self._is_draining() and items:  # taken while draining: left pending, redelivered at next start
                    self._capacity.release()
                    break
                fresh = [it for it in items if it.entry_id not in self._inflight]
                if not fresh:
                    self._capacity.release()
                    if items:  # the queue handed back an entry still running here: let it finish
                        await asyncio.sleep(0.05)
                    continue
                for extra in fresh[1:]:  # take(count=1) hands back one; be safe if it ever gives more
                    log.warning("alert entry %s taken but not started now; redelivered later", extra.entry_id)
                self._start(fresh[0])
            await self._idle.wait()  # draining: let running turns finish (a stop cancels them instead)
        finally:
            await self._cancel_turns()

    def _start(self, item: Any) -> None:
        self._inflight.add(item.entry_id)
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._turn(item), name=f"alert-turn:{item.event.trigger_key}")
        self._turns[task] = item.event.trigger_key
        task.add_done_callback(self._turn_done)

    def _turn_done(self, task: asyncio.Task[None]) -> None:
        key = self._turns.pop(task, "?")
        if not task.cancelled() and task.exception() is not None:
            log.error("alert turn %s died", key, exc_info=task.exception())
        if not self._turns:
            self._idle.set()

    async def _turn(self, item: Any) -> None:
        event: AlertEvent = item.event
        thread_id = self.thread_of(event)
        try:
            async with self._thread_lock(thread_id), self._slots:
                if self._is_draining():
                    # taken but not started when the drain began: left pending, redelivered at next start
                    return
                await self._run_item(item, thread_id)
        finally:
            self._inflight.discard(item.entry_id)
            self._capacity.release()
            self._release_thread(thread_id)

    async def _run_item(self, item: Any, thread_id: str) -> None:
        event: AlertEvent = item.event
        key = event.trigger_key
        self.stats.started += 1
        self.stats.running.add(key)
        if item.redelivered:
            self.stats.redelivered += 1
        try:
            await self.queue.mark_running(item, thread_id)
            self.bus.publish(AlertSignal(status="started", trigger_key=key, kind=event.kind.value,
                                         thread_id=thread_id, detail=describe_event(event)))
            try:
                outcome = await self.handler(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("alert handler failed for %s", key)
                outcome = TurnOutcome(thread_id=thread_id, ok=False, error=f"{type(exc).__name__}: {exc}")
            if outcome.ok:
                if outcome.decision:
                    await self.queue.done(item, thread_id=outcome.thread_id, summary=outcome.summary,
                                          decision=outcome.decision)
                else:
                    await self.queue.done(item, thread_id=outcome.thread_id, summary=outcome.summary)
                self.stats.finished += 1
                self.bus.publish(AlertSignal(status="finished", trigger_key=key, kind=event.kind.value,
                                             thread_id=outcome.thread_id, detail=outcome.summary))
                return
            verdict = await self.queue.failed(item, outcome.error or "the turn failed")
            if verdict == "retry":
                self.stats.retried += 1
                log.warning("alert %s failed (attempt %d), retrying later: %s", key, item.attempt, outcome.error)
                self.bus.publish(AlertSignal(status="retrying", trigger_key=key, kind=event.kind.value,
                                             thread_id=outcome.thread_id, detail=outcome.error))
            else:
                self.stats.failed += 1
                log.error("alert %s parked as failed after %d attempts: %s", key, item.attempt, outcome.error)
                self.bus.publish(AlertSignal(status="failed", trigger_key=key, kind=event.kind.value,
                                             thread_id=outcome.thread_id, detail=outcome.error))
        except asyncio.CancelledError:
            log.info("alert turn %s interrupted: it is redelivered at the next start", key)
            raise
        except Exception:
            log.exception("recording the outcome of %s failed: it is redelivered at the next start", key)
        finally:
            self.stats.running.discard(key)

    def _thread_lock(self, thread_id: str) -> asyncio.Lock:
        lock = self._threads.get(thread_id)
        if lock is None:
            lock = self._threads[thread_id] = asyncio.Lock()
        return lock

    def _release_thread(self, thread_id: str) -> None:
        lock = self._threads.get(thread_id)
        if lock is not None and not lock.locked() and not getattr(lock, "_waiters", None):
            del self._threads[thread_id]

    async def drain(self, timeout: float = 30.0) -> bool:
        """Stop taking new entries and wait up to `timeout` s for running turns; True if none is left."""
        self._draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("%d alert turn(s) still running after %.0fs: they resume at the next start",
                        len(self._turns), timeout)
            return False
        return True

    async def _cancel_turns(self) -> None:
        await cancel_and_wait(list(self._turns))
