"""The durable alert queue: Redis Streams with a consumer group, de-duplicated by trigger key.

- `enqueue(event)` adds an event once per trigger key, atomically (a Lua script: the key goes into a
  sorted set of seen keys and the event into its stream in one step); a second enqueue of the same
  key, after any reconnect, restart or double tick, does nothing and says so.
- Two priority bands, each its own stream: `urgent` (stop-loss verification, liquidation warnings)
  is always served before `normal`.
- `take()` first hands back this owner's own pending entries (taken before a crash and never
  acknowledged), then new ones. The consumer name is stable per session, because the lease makes
  the owner unique, so a restarted owner sees its pending entries at once.
- `done()` acknowledges and writes history; `failed()` either schedules a retry with backoff (the
  entry is acknowledged and re-added when due) or, after `max_attempts`, parks it as failed where
  the trader sees it and `retry()` can requeue it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import ResponseError

from revagent.bus import encode_raw
from revagent.store.alert_events import AlertEvent
from revagent.store.connection import AnyRedis, queue_publish
from revagent.store.keys import Keyspace

Band = Literal["urgent", "normal"]
BANDS: tuple[Band, ...] = ("urgent", "normal")
GROUP = "runner"
CONSUMER = "owner"
URGENT_PRIORITY_MAX = 1  # priorities 0 and 1 (stop-loss verification, liquidation warning)
SEEN_RETENTION_SECONDS = 30 * 86400
HISTORY_MAXLEN = 5000
SEEN_SCAN_BATCH = 2000

_ENQUEUE = """
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
if added == 0 then return false end
local id = redis.call('XADD', KEYS[2], '*', 'event', ARGV[3], 'attempt', ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
redis.call('PUBLISH', KEYS[3], ARGV[6])
return id
"""


def band_of(event: AlertEvent) -> Band:
    return "urgent" if event.priority <= URGENT_PRIORITY_MAX else "normal"


@dataclass(frozen=True)
class QueuedAlert:
    band: Band
    entry_id: str
    event: AlertEvent
    attempt: int
    redelivered: bool  # taken before (a crash or a restart) and never acknowledged


class AlertQueueKeys:
    def __init__(self, keys: Keyspace) -> None:
        self.seen = keys.key("alerts:seen")
        self.retry = keys.key("alerts:retry")  # zset: JSON {event, attempt} scored by due time
        self.failed = keys.key("alerts:failed")  # hash: trigger key -> JSON
        self.running = keys.key("alerts:running")  # hash: trigger key -> JSON
        self.history = keys.key("alerts:history")  # stream
        self.events = keys.events
        self._prefix = keys.key("alerts:q:")

    def stream(self, band: Band) -> str:
        return self._prefix + band


class AlertQueue:
    def __init__(self, redis: AnyRedis, keys: Keyspace, *, max_attempts: int = 3,
                 backoff_seconds: float = 5.0) -> None:
        self.redis = redis
        self.k = AlertQueueKeys(keys)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._script = redis.register_script(_ENQUEUE)
        self._pending_from: dict[Band, str] = {band: "0" for band in BANDS}
        self._pending_done: set[Band] = set()

    async def ensure_groups(self) -> None:
        for band in BANDS:
            try:
                await self.redis.xgroup_create(self.k.stream(band), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def enqueue(self, event: AlertEvent, *, attempt: int = 1, dedupe: bool = True) -> str | None:
        """Add the event to its band's stream. Returns the entry id, or None if this trigger key was
        already enqueued (a duplicate firing)."""
        now = time.time()
        note = encode_raw("alert.queued", {"trigger_key": event.trigger_key, "kind": event.kind.value,
                                           "alert_id": event.alert_id})
        seen_member = event.trigger_key if dedupe else f"{event.trigger_key}@retry{attempt}:{now}"
        entry_id = await self._script(
            keys=[self.k.seen, self.k.stream(band_of(event)), self.k.events],
            args=[now, seen_member, event.model_dump_json(), attempt, now - SEEN_RETENTION_SECONDS, note],
        )
        return None if entry_id is None else str(entry_id)

    async def take(self, count: int = 1, block_ms: int = 1000) -> list[QueuedAlert]:
        """Up to `count` entries: this owner's pending ones first, then urgent, then normal."""
        out: list[QueuedAlert] = []
        # After a restart, this owner's own pending entries first, each handed back once: the read
        # position moves past what was returned, so an entry still running is never returned again.
        for band in BANDS:
            if band in self._pending_done or len(out) >= count:
                continue
            got = await self._read(band, self._pending_from[band], count - len(out), None, redelivered=True)
            if got:
                self._pending_from[band] = got[-1].entry_id
                out += got
            else:
                self._pending_done.add(band)
        if len(out) >= count:
            return out
        await self._promote_due_retries()
        for band in BANDS:
            if len(out) >= count:
                return out
            out += await self._read(band, ">", count - len(out), None, redelivered=False)
        if not out and block_ms > 0:
            result = await self.redis.xreadgroup(GROUP, CONSUMER, {self.k.stream(b): ">" for b in BANDS},
                                                 count=count, block=block_ms)
            for stream, entries in result or []:
                band_read: Band = "urgent" if stream.endswith("urgent") else "normal"
                out += [self._parse(band_read, eid, fields, False) for eid, fields in entries if fields]
            out.sort(key=lambda q: BANDS.index(q.band))
        return out

    async def _read(self, band: Band, start: str, count: int, block: int | None,
                    redelivered: bool) -> list[QueuedAlert]:
        if count <= 0:
            return []
        result = await self.redis.xreadgroup(GROUP, CONSUMER, {self.k.stream(band): start}, count=count,
                                             block=block)
        out = []
        for _stream, entries in result or []:
            for entry_id, fields in entries:
                if fields:  # a pending entry deleted from the stream comes back with no fields
                    out.append(self._parse(band, entry_id, fields, redelivered))
        return out

    def _parse(self, band: Band, entry_id: str, fields: dict[str, str], redelivered: bool) -> QueuedAlert:
        return QueuedAlert(band, entry_id, AlertEvent.model_validate_json(fields["event"]),
                           int(fields.get("attempt", "1")), redelivered)

    async def mark_running(self, item: QueuedAlert, thread_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.k.running, item.event.trigger_key,
                      json.dumps({"thread_id": thread_id, "started_at": time.time(), "attempt": item.attempt,
                                  "kind": item.event.kind.value, "alert_id": item.event.alert_id}))
            queue_publish(pipe, self.k.events, encode_raw("alert.started", {"trigger_key": item.event.trigger_key,
                                                                      "thread_id": thread_id}))
            await pipe.execute()

    async def done(self, item: QueuedAlert, *, thread_id: str = "", summary: str = "", decision: str = "") -> None:
        """Record a finished turn; `decision` (`acted` / `hold`) what a management turn decided."""
        extra = {"thread_id": thread_id, "summary": summary}
        if decision:
            extra["decision"] = decision
        await self._finish(item, "finished", extra)

    async def failed(self, item: QueuedAlert, error: str) -> Literal["retry", "parked"]:
        """Record a failed attempt: retry later with backoff, or park it after max_attempts."""
        if item.attempt < self.max_attempts:
            due = time.time() + self.backoff_seconds * (2 ** (item.attempt - 1))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self.k.retry, {json.dumps({"event": item.event.model_dump(mode="json"),
                                                     "attempt": item.attempt + 1}): due})
                pipe.xack(self.k.stream(item.band), GROUP, item.entry_id)
                pipe.xdel(self.k.stream(item.band), item.entry_id)
                pipe.hdel(self.k.running, item.event.trigger_key)
                await pipe.execute()
            return "retry"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.k.failed, item.event.trigger_key,
                      json.dumps({"event": item.event.model_dump(mode="json"), "attempts": item.attempt,
                                  "error": error[:2000], "failed_at": time.time()}))
            await pipe.execute()
        await self._finish(item, "failed", {"error": error[:2000]})
        return "parked"

    async def _finish(self, item: QueuedAlert, status: str, extra: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.k.stream(item.band), GROUP, item.entry_id)
            pipe.xdel(self.k.stream(item.band), item.entry_id)
            pipe.hdel(self.k.running, item.event.trigger_key)
            pipe.xadd(self.k.history, {"status": status, "trigger_key": item.event.trigger_key,
                                       "event": item.event.model_dump_json(), "attempt": str(item.attempt),
                                       "extra": json.dumps(extra), "at": f"{time.time():.3f}"},
                      maxlen=HISTORY_MAXLEN, approximate=True)
            queue_publish(pipe, self.k.events, encode_raw(f"alert.{status}", {"trigger_key": item.event.trigger_key,
                                                                        **extra}))
            await pipe.execute()

    async def _promote_due_retries(self) -> None:
        due = await self.redis.zrangebyscore(self.k.retry, "-inf", time.time(), start=0, num=20)
        for raw in due:
            if await self.redis.zrem(self.k.retry, raw):  # whoever removes it re-adds it
                doc = json.loads(raw)
                await self.enqueue(AlertEvent.model_validate(doc["event"]), attempt=int(doc["attempt"]),
                                   dedupe=False)

    async def seen_keys(self) -> set[str]:
        """Every trigger key enqueued within the retention window (a restart must not re-fire them).

        Read in `ZSCAN` batches of `SEEN_SCAN_BATCH`, so a large set never holds the event loop for long
        (a key present for the whole read is returned; one enqueued meanwhile may or may not be)."""
        keys: set[str] = set()
        cursor = 0
        while True:
            cursor, batch = await self.redis.zscan(self.k.seen, cursor, count=SEEN_SCAN_BATCH)
            keys.update(member for member, _score in batch)
            if cursor == 0:
                return keys

    async def retry(self, trigger_key: str) -> bool:
        """Requeue a parked (failed) alert with a fresh attempt count."""
        raw = await self.redis.hget(self.k.failed, trigger_key)
        if raw is None:
            return False
        doc = json.loads(raw)
        await self.enqueue(AlertEvent.model_validate(doc["event"]), attempt=1, dedupe=False)
        await self.redis.hdel(self.k.failed, trigger_key)
        return True

    # -- views for the trader ----------------------------------------------------------------
    async def pending(self) -> list[QueuedAlert]:
        """Entries waiting or taken but not yet finished, urgent first (finished ones are deleted)."""
        out: list[QueuedAlert] = []
        for band in BANDS:
            for entry_id, fields in await self.redis.xrange(self.k.stream(band)):
                out.append(self._parse(band, entry_id, fields, False))
        return out

    async def running(self) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.k.running)
        return {k: json.loads(v) for k, v in raw.items()}

    async def failures(self) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.k.failed)
        return {k: json.loads(v) for k, v in raw.items()}

    async def history(self, count: int = 100) -> list[dict[str, Any]]:
        entries = await self.redis.xrevrange(self.k.history, count=count)
        return [{"id": eid, "status": f["status"], "trigger_key": f["trigger_key"], "attempt": int(f["attempt"]),
                 "event": json.loads(f["event"]), "extra": json.loads(f["extra"]), "at": float(f["at"])}
                for eid, f in entries]

