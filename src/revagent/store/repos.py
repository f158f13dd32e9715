"""Typed repositories over one session's keys. Every write publishes a `store.changed`
invalidation on the session's channel in the same transaction, so another process (a running
daemon, a TUI) picks the change up at once.

Reading a whole hash (`HashRepo.all()`) never holds the event loop for long, however big the hash:
it is read in `HSCAN` batches of `SCAN_BATCH` fields (the loop runs between batches, and each
batch's reply is small enough to parse quickly), and a hash of more than `PARSE_ON_LOOP_MAX`
records is parsed and sorted in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from revagent.bus import encode_raw
from revagent.models import Note, SessionId, TimeAlert, TimeAlertStatus, WatcherPair
from revagent.store.connection import AnyRedis as Redis
from revagent.store.connection import queue_publish
from revagent.store.keys import SESSIONS_KEY, Keyspace

M = TypeVar("M", bound=BaseModel)

SCAN_BATCH = 2000
"""`HSCAN ... COUNT` hint: about this many fields per round trip (one reply parses in ~25 ms)."""
PARSE_ON_LOOP_MAX = 2000
"""Up to this many records are parsed on the event loop (~20 ms); more go to a worker thread."""


def moment_key(moment: datetime, record_id: str) -> str:
    """A sort key ordering records by an instant, then by id: the instant as fixed-width UTC text
    (microseconds) followed by the id. A key of plain text sorts with a fast C compare, so sorting
    100,000 records holds the GIL for ~30 ms instead of ~130-200 ms with `(datetime, id)` tuples."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds") + record_id


class CorruptRecordError(Exception):
    """A stored record no longer parses (written by a newer or broken version)."""


class HashRepo(Generic[M]):
    """Records of one model type in one Redis hash (field = id, value = JSON)."""

    what: str = "records"

    def __init__(self, redis: Redis, keys: Keyspace, hash_key: str, model: type[M]) -> None:
        self.redis = redis
        self.keys = keys
        self.hash_key = hash_key
        self.model = model

    def _parse(self, raw: str, record_id: str | None = None) -> M:
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            which = f" ({record_id})" if record_id is not None else ""
            raise CorruptRecordError(f"a stored {self.what} record does not parse{which}: {exc}") from None

    def _order(self, records: list[M]) -> list[M]:
        """The order `all()` returns: by id here; a subclass sorts by its own key, ending in the id (a
        total order, so the same as sorting by id first). Pure; may run in a worker thread."""
        return sorted(records, key=self._id)

    def _parse_all(self, raw: dict[str, str]) -> list[M]:
        """Parse every record, then put them in the repository's `_order`. Pure CPU work."""
        return self._order([self._parse(v, k) for k, v in raw.items()])

    async def get(self, record_id: str) -> M | None:
        raw = await self.redis.hget(self.hash_key, record_id)
        return None if raw is None else self._parse(raw, record_id)

    async def get_many(self, record_ids: Iterable[str]) -> dict[str, M]:
        """The stored records among `record_ids` (id -> record; missing ids are left out), read with one
        `HMGET` per `SCAN_BATCH` ids."""
        ids = list(dict.fromkeys(record_ids))
        out: dict[str, M] = {}
        for start in range(0, len(ids), SCAN_BATCH):
            chunk = ids[start:start + SCAN_BATCH]
            raws: list[str | None] = await self.redis.hmget(self.hash_key, chunk)
            out.update({rid: self._parse(raw, rid) for rid, raw in zip(chunk, raws, strict=True) if raw is not None})
        return out

    async def all(self) -> list[M]:
        """Every record, in the repository's order (`_order`: by id, or by a key ending in the id).

        Raises `CorruptRecordError` (naming the record) when a stored record does not parse. The hash is
        read in `HSCAN` batches, so this is not one atomic snapshot: a record written or deleted while
        the scan runs may be seen in its old or its new state (each record appears once; writers
        publish `store.changed`, which is how a follower catches up). More than `PARSE_ON_LOOP_MAX`
        records are parsed in a worker thread.
        """
        raw = await self._scan_raw()
        if len(raw) <= PARSE_ON_LOOP_MAX:
            return self._parse_all(raw)
        return await asyncio.to_thread(self._parse_all, raw)

    async def _scan_raw(self) -> dict[str, str]:
        """id -> stored JSON of the whole hash, in `HSCAN` batches (a field `HSCAN` repeats is kept once,
        with the value read last)."""
        raw: dict[str, str] = {}
        cursor = 0
        while True:
            cursor, batch = await self.redis.hscan(self.hash_key, cursor, count=SCAN_BATCH)
            raw.update(batch)
            if cursor == 0:
                return raw

    async def count(self) -> int:
        return int(await self.redis.hlen(self.hash_key))

    async def put(self, record: M) -> M:
        await self.put_many([record])
        return record

    async def put_many(self, records: Sequence[M], *, announce_each: bool = False) -> None:
        """Write the records in one transaction, with its `store.changed` invalidation.

        By default several records are announced as `id: null` (a follower re-reads the whole hash);
        with `announce_each` every record's id is announced instead (a follower re-reads just those:
        what a bulk correction of a few records out of many wants). A caller writing thousands of
        records splits them into several calls, so no single command is large to encode and send.
        """
        if not records:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            self.queue_put(pipe, records, announce_each=announce_each)
            await pipe.execute()

    def queue_put(self, pipe: Any, records: Sequence[M], *, announce_each: bool = False) -> None:
        """Queue `put_many`'s writes on a caller's MULTI pipeline (a tool records its result with them)."""
        if not records:
            return
        pipe.hset(self.hash_key, mapping={self._id(r): r.model_dump_json() for r in records})
        self._extra_put(pipe, records)
        if announce_each or len(records) == 1:
            ids: list[str | None] = [self._id(r) for r in records]
        else:
            ids = [None]
        for rid in ids:
            queue_publish(pipe, self.keys.events,
                         encode_raw("store.changed", {"what": self.what, "id": rid, "op": "put"}))

    async def delete(self, record_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            self.queue_delete(pipe, record_id)
            results = await pipe.execute()
        return bool(results[0])

    def queue_delete(self, pipe: Any, record_id: str) -> None:
        """Queue `delete`'s writes on a caller's MULTI pipeline (its first reply is HDEL's count)."""
        pipe.hdel(self.hash_key, record_id)
        self._extra_delete(pipe, record_id)
        queue_publish(pipe, self.keys.events,
                      encode_raw("store.changed", {"what": self.what, "id": record_id, "op": "delete"}))

    def _id(self, record: M) -> str:
        return str(getattr(record, "id"))  # noqa: B009 - every stored model has an id

    def _extra_put(self, pipe: Any, records: Sequence[M]) -> None:
        """Secondary indexes written in the same transaction."""

    def _extra_delete(self, pipe: Any, record_id: str) -> None:
        """Secondary indexes removed in the same transaction."""


class NotesRepo(HashRepo[Note]):
    what = "notes"

    def __init__(self, redis: Redis, keys: Keyspace) -> None:
        super().__init__(redis, keys, keys.notes, Note)

    def _order(self, records: list[Note]) -> list[Note]:
        return sorted(records, key=lambda n: moment_key(n.created_at, n.id))


class WatchersRepo(HashRepo[WatcherPair]):
    what = "watchers"

    def __init__(self, redis: Redis, keys: Keyspace) -> None:
        super().__init__(redis, keys, keys.watchers, WatcherPair)

    def _order(self, records: list[WatcherPair]) -> list[WatcherPair]:
        return sorted(records, key=lambda w: moment_key(w.created_at, w.id))


class TimeAlertsRepo(HashRepo[TimeAlert]):
    """Time alerts, plus a sorted set of scheduled ones by fire time (one timer for the next)."""

    what = "time_alerts"

    def __init__(self, redis: Redis, keys: Keyspace) -> None:
        super().__init__(redis, keys, keys.time_alerts, TimeAlert)

    def _order(self, records: list[TimeAlert]) -> list[TimeAlert]:
        return sorted(records, key=lambda a: moment_key(a.fire_at, a.id))

    def _extra_put(self, pipe: Any, records: Sequence[TimeAlert]) -> None:
        due = {a.id: a.fire_at.timestamp() for a in records if a.status is TimeAlertStatus.SCHEDULED}
        done = [a.id for a in records if a.status is not TimeAlertStatus.SCHEDULED]
        if due:
            pipe.zadd(self.keys.time_alerts_due, due)
        if done:
            pipe.zrem(self.keys.time_alerts_due, *done)

    def _extra_delete(self, pipe: Any, record_id: str) -> None:
        pipe.zrem(self.keys.time_alerts_due, record_id)

    async def due(self, now: datetime, limit: int = 100) -> list[TimeAlert]:
        ids: list[str] = await self.redis.zrangebyscore(
            self.keys.time_alerts_due, "-inf", now.timestamp(), start=0, num=limit
        )
        if not ids:
            return []
        raws = await self.redis.hmget(self.hash_key, ids)
        return [self._parse(r, i) for i, r in zip(ids, raws, strict=True) if r is not None]

    async def next_due_at(self) -> float | None:
        first = await self.redis.zrange(self.keys.time_alerts_due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None


class SettingsRepo:
    """Runtime overrides of settings (`risk.max_leverage` -> value), stored per wallet.

    Values are kept as JSON; the caller validates them against the settings model before writing.
    """

    what = "settings"

    def __init__(self, redis: Redis, keys: Keyspace) -> None:
        self.redis = redis
        self.keys = keys

    async def overrides(self) -> dict[str, Any]:
        raw: dict[str, str] = await self.redis.hgetall(self.keys.settings)
        return {k: json.loads(v) for k, v in raw.items()}

    async def set(self, name: str, value: Any) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.settings, name, json.dumps(value))
            queue_publish(pipe, self.keys.events,
                          encode_raw("store.changed", {"what": self.what, "id": name, "op": "put"}))
            await pipe.execute()

    async def reset(self, name: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.settings, name)
            queue_publish(pipe, self.keys.events,
                          encode_raw("store.changed", {"what": self.what, "id": name, "op": "delete"}))
            results = await pipe.execute()
        return bool(results[0])


class JsonDocRepo(Generic[M]):
    """One JSON document under one key (the risk state, the account snapshot)."""

    def __init__(self, redis: Redis, keys: Keyspace, key: str, model: type[M], what: str) -> None:
        self.redis = redis
        self.keys = keys
        self.key = key
        self.model = model
        self.what = what

    async def get(self) -> M | None:
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            raise CorruptRecordError(f"the stored {self.what} does not parse: {exc}") from None

    async def put(self, doc: M) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key, doc.model_dump_json())
            queue_publish(pipe, self.keys.events,
                          encode_raw("store.changed", {"what": self.what, "id": None, "op": "put"}))
            await pipe.execute()


class SessionStore:
    """All repositories of one wallet session, sharing one client."""

    def __init__(self, redis: Redis, sid: SessionId) -> None:
        self.redis = redis
        self.sid = sid
        self.keys = Keyspace(sid)
        self.notes = NotesRepo(redis, self.keys)
        self.watchers = WatchersRepo(redis, self.keys)
        self.time_alerts = TimeAlertsRepo(redis, self.keys)
        self.settings = SettingsRepo(redis, self.keys)

    async def set_meta(self, **fields: str) -> None:
        """The session's meta hash, and its id in the host-wide index of sessions: two commands, never
        one transaction (the index is a global key, in another cluster slot than the session's)."""
        await self.redis.hset(self.keys.meta, mapping=fields)
        await self.redis.sadd(SESSIONS_KEY, str(self.sid))

    async def meta(self) -> dict[str, str]:
        return dict(await self.redis.hgetall(self.keys.meta))
