"""Typed repositories over one session's keys. Every write publishes a `store.changed`
invalidation on the session's channel in the same transaction, so another process (a running
daemon, a TUI) picks the change up at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from revagent.bus import encode_raw
from revagent.models import Note, SessionId, TimeAlert, TimeAlertStatus, WatcherPair
from revagent.store.connection import AnyRedis as Redis
from revagent.store.keys import SESSIONS_KEY, Keyspace

M = TypeVar("M", bound=BaseModel)


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

    def _parse(self, raw: str) -> M:
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            raise CorruptRecordError(f"a stored {self.what} record does not parse: {exc}") from None

    async def get(self, record_id: str) -> M | None:
        raw = await self.redis.hget(self.hash_key, record_id)
        return None if raw is None else self._parse(raw)

    async def all(self) -> list[M]:
        raw: dict[str, str] = await self.redis.hgetall(self.hash_key)
        return [self._parse(v) for _, v in sorted(raw.items())]

    async def count(self) -> int:
        return int(await self.redis.hlen(self.hash_key))

    async def put(self, record: M) -> M:
        await self.put_many([record])
        return record

    async def put_many(self, records: Sequence[M]) -> None:
        if not records:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.hash_key, mapping={self._id(r): r.model_dump_json() for r in records})
            self._extra_put(pipe, records)
            pipe.sadd(SESSIONS_KEY, str(self.keys.sid))
            rid = self._id(records[0]) if len(records) == 1 else None
            pipe.publish(self.keys.events, encode_raw("store.changed", {"what": self.what, "id": rid, "op": "put"}))
            await pipe.execute()

    async def delete(self, record_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.hash_key, record_id)
            self._extra_delete(pipe, record_id)
            pipe.publish(
                self.keys.events, encode_raw("store.changed", {"what": self.what, "id": record_id, "op": "delete"})
            )
            results = await pipe.execute()
        return bool(results[0])

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

    async def all(self) -> list[Note]:
        return sorted(await super().all(), key=lambda n: (n.created_at, n.id))


class WatchersRepo(HashRepo[WatcherPair]):
    what = "watchers"

    def __init__(self, redis: Redis, keys: Keyspace) -> None:
        super().__init__(redis, keys, keys.watchers, WatcherPair)

    async def all(self) -> list[WatcherPair]:
        return sorted(await super().all(), key=lambda w: (w.created_at, w.id))


class TimeAlertsRepo(HashRepo[TimeAlert]):
    """Time alerts, plus a sorted set of scheduled ones by fire time (one timer for the next)."""

    what = "time_alerts"

    def __init__(self, redis: Redis, keys: Keyspace) -> None:
        super().__init__(redis, keys, keys.time_alerts, TimeAlert)

    async def all(self) -> list[TimeAlert]:
        return sorted(await super().all(), key=lambda a: (a.fire_at, a.id))

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
        return [self._parse(r) for r in raws if r is not None]

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
            pipe.publish(self.keys.events, encode_raw("store.changed", {"what": self.what, "id": name, "op": "put"}))
            await pipe.execute()

    async def reset(self, name: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.settings, name)
            pipe.publish(
                self.keys.events, encode_raw("store.changed", {"what": self.what, "id": name, "op": "delete"})
            )
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
            pipe.publish(self.keys.events, encode_raw("store.changed", {"what": self.what, "id": None, "op": "put"}))
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
        await self.redis.hset(self.keys.meta, mapping=fields)

    async def meta(self) -> dict[str, str]:
        return dict(await self.redis.hgetall(self.keys.meta))
