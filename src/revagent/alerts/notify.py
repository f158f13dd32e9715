"""Notifications for when nobody watches the screen: a webhook and desktop notifications.

- **Webhook** (`notify.webhook_url`): one JSON POST per notification, usable as it is with ntfy (JSON
  publishing needs the server's root URL and a `topic`; a topic URL accepts the body as text),
  Slack-style (`text`) and Discord-style (`content`) endpoints. Retried with exponential backoff on
  network errors, 5xx and 429; dropped after `attempts` with a warning.
- **Desktop** (`notify.desktop`): `notify-send` when it is on the PATH, run with
  `asyncio.create_subprocess_exec` (never a shell).

Never blocks the session: `notify()` puts into a bounded queue (the oldest entry is dropped when it
is full) and returns at once; `run()`, an owned task, delivers. Kinds (`notify.kinds`): alert_started,
alert_finished, alert_failed, alert_throttled (a trade's alert turns paused by the hourly bound), fill,
lockout, daemon, proposal, health (the model refused an alert turn as misconfigured: the alerts run on
the offline policy until the `[llm]` settings are fixed). `follow(bus)` turns bus events into them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from revagent.bus import Bus, Event
from revagent.childenv import child_env
from revagent.config import NotifySettings
from revagent.events import AlertSignal, FillRecorded, RiskStateChanged, TurnEvent
from revagent.models import utc_now

log = logging.getLogger(__name__)

KINDS = ("alert_started", "alert_finished", "alert_failed", "alert_throttled", "fill", "lockout", "daemon",
         "proposal", "health")


@dataclass(frozen=True, slots=True)
class Notification:
    kind: str
    title: str
    message: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    urgent: bool = False

    def payload(self, session: str) -> dict[str, Any]:
        """The webhook body: our fields plus `text` (Slack) and `content` (Discord)."""
        line = f"{self.title}: {self.message}" if self.message else self.title
        return {
            "kind": self.kind,
            "title": self.title,
            "message": self.message,
            "session": session,
            "at": self.at.isoformat(),
            "data": self.data,
            "text": line,
            "content": line,
        }


@dataclass
class NotifyStats:
    queued: int = 0
    dropped: int = 0
    webhook_sent: int = 0
    webhook_failed: int = 0
    desktop_sent: int = 0


class Notifier:
    """Delivers notifications in the background (see the module docstring). One per session."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        session_label: str = "",
        maxsize: int = 100,
        attempts: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.settings = settings
        self.session_label = session_label
        self.kinds = frozenset(settings.kinds)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.stats = NotifyStats()
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize)
        self._notify_send = which("notify-send") if settings.desktop else None
        self._http: aiohttp.ClientSession | None = None
        self._locked = False

    @property
    def enabled(self) -> bool:
        return bool(self.settings.webhook_url or self._notify_send) and bool(self.kinds)

    def wants(self, kind: str) -> bool:
        return self.enabled and kind in self.kinds

    def notify(self, kind: str, title: str, message: str = "", *, data: dict[str, Any] | None = None,
               urgent: bool = False) -> bool:
        """Queue a notification of `kind` if that kind is switched on; never blocks, never raises."""
        if not self.wants(kind):
            return False
        note = Notification(kind, title, message, utc_now(), dict(data or {}), urgent)
        if self._queue.full():
            try:
                self._queue.get_nowait()
                self.stats.dropped += 1
            except asyncio.QueueEmpty:
                pass
        self._queue.put_nowait(note)
        self.stats.queued += 1
        return True

    async def run(self) -> None:
        """Deliver queued notifications one at a time (owned task)."""
        try:
            while True:
                note = await self._queue.get()
                await self.deliver(note)
        finally:
            await self.aclose()

    async def flush(self, timeout: float = 5.0) -> None:
        """Deliver what is queued now, within `timeout` s (used when the daemon stops)."""
        async def drain() -> None:
            while not self._queue.empty():
                await self.deliver(self._queue.get_nowait())

        try:
            await asyncio.wait_for(drain(), timeout)
        except TimeoutError:
            log.warning("notifications not delivered within %.0fs at shutdown", timeout)

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def deliver(self, note: Notification) -> None:
        """Send one notification to every configured channel (errors are logged, never raised)."""
        if self.settings.webhook_url:
            await self._webhook(note)
        if self._notify_send:
            await self._desktop(note)

    async def _webhook(self, note: Notification) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        body = json.dumps(note.payload(self.session_label))
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._http.post(self.settings.webhook_url, data=body,
                                           headers={"Content-Type": "application/json"}) as resp:
                    if resp.status < 300:
                        self.stats.webhook_sent += 1
                        return
                    retryable = resp.status >= 500 or resp.status == 429
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                retryable, problem = True, repr(exc)
            if not retryable or attempt == self.attempts:
                break
            log.info("webhook attempt %d failed (%s); retrying in %.1fs", attempt, problem, delay)
            await asyncio.sleep(delay)
            delay *= 2
        self.stats.webhook_failed += 1
        log.warning("webhook notification %s not delivered: %s", note.kind, problem)

    async def _desktop(self, note: Notification) -> None:
        assert self._notify_send is not None
        args = [self._notify_send, "--app-name=revagent", f"--urgency={'critical' if note.urgent else 'normal'}",
                note.title, note.message]
        try:
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE,
                                                        env=child_env(desktop=True))
            _, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (OSError, TimeoutError) as exc:
            log.info("notify-send failed: %r", exc)
            return
        if proc.returncode == 0:
            self.stats.desktop_sent += 1
        else:
            log.info("notify-send exited %s: %s", proc.returncode, err.decode(errors="replace").strip()[:200])

    # -- from bus events ---------------------------------------------------------------------
    def on_event(self, event: Event) -> bool:
        """Map one bus event to a notification (alert started/finished/failed, fill, lockout)."""
        if isinstance(event, AlertSignal):
            kind = {"started": "alert_started", "finished": "alert_finished", "failed": "alert_failed"}.get(
                event.status)
            if kind is None:
                return False
            title = f"alert {event.status}: {event.kind}"
            return self.notify(kind, title, event.detail, urgent=event.status == "failed",
                               data={"trigger_key": event.trigger_key, "thread_id": event.thread_id})
        if isinstance(event, FillRecorded):
            return self.notify("fill", f"fill {event.market} {event.side} {event.sz} @ {event.px}",
                               f"closed pnl {event.closed_pnl}, fee {event.fee}",
                               data=event.model_dump(mode="json"))
        if isinstance(event, RiskStateChanged):
            locked = event.state in ("locked", "halted")
            was_locked, self._locked = self._locked, locked
            if not locked:
                if not was_locked:
                    return False
                return self.notify("lockout", f"trading {event.state} again", "the lockout ended",
                                   data=event.model_dump(mode="json"))
            until = f" until {event.locked_until:%Y-%m-%d %H:%M} UTC" if event.locked_until else ""
            return self.notify("lockout", f"trading {event.state}{until}", event.reason, urgent=True,
                               data=event.model_dump(mode="json"))
        if isinstance(event, TurnEvent) and event.kind == "proposal" and event.turn_id == "":
            # a copilot proposal waiting for the trader, with its preview, so it can be answered away
            # from the screen (`revagent proposals approve ID`)
            data = event.data
            status = str(data.get("status", "pending"))
            if status != "pending":
                return False
            summary = str(data.get("summary") or data.get("tool") or "an order")
            return self.notify("proposal", f"proposal {data.get('id')}: {summary}"[:200],
                               f"approve: revagent proposals approve {data.get('id')}", urgent=True, data=data)
        return False

    async def follow(self, bus: Bus) -> None:
        """Subscribe to the bus and notify on the events above (owned task)."""
        sub = bus.subscribe(AlertSignal, FillRecorded, RiskStateChanged, TurnEvent)
        try:
            async for event in sub:
                self.on_event(event)
        finally:
            sub.close()
