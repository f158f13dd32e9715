"""The store: typed repositories, invalidations on every write, the keyspace, and durability."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from revagent.models import (
    LegDirection,
    Note,
    SessionId,
    TimeAlert,
    TimeAlertStatus,
    WatcherLeg,
    WatcherPair,
    utc_now,
)
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.repos import CorruptRecordError, SessionStore
from revagent.store.server import spawn_redis

SID = SessionId(network="testnet", address="0x" + "Cd" * 20)


def test_keys_carry_the_session_as_a_cluster_hash_tag() -> None:
    keys = Keyspace(SID)
    assert keys.notes == "rev:{testnet:0x" + "cd" * 20 + "}:notes"
    for name in ("notes", "watchers", "time_alerts", "lease", "commands", "events", "settings"):
        key = getattr(keys, name)
        assert key[key.index("{") + 1 : key.index("}")] == str(SID)


async def test_notes_round_trip_and_publish_an_invalidation(redis_url: str) -> None:
    redis = await connect(redis_url)
    listener = aioredis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = listener.pubsub()
    try:
        store = SessionStore(redis, SID)
        await pubsub.subscribe(store.keys.events)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        now = utc_now()
        note = Note(text="BTC likes to wick the Asia low", tags=["btc"], created_at=now, updated_at=now)
        await store.notes.put(note)
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert msg is not None
        wire = json.loads(msg["data"])
        assert wire == {"type": "store.changed", "v": 1, "payload": {"what": "notes", "id": note.id, "op": "put"}}
        assert await store.notes.get(note.id) == note
        assert [n.id for n in await store.notes.all()] == [note.id]
        assert await store.notes.delete(note.id)
        assert not await store.notes.delete(note.id)
        assert await store.notes.get(note.id) is None
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await redis.aclose()


async def test_sessions_never_see_each_others_records(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        a = SessionStore(redis, SID)
        b = SessionStore(redis, SessionId(network="mainnet", address=SID.address))
        now = utc_now()
        await a.notes.put(Note(text="only testnet", created_at=now, updated_at=now))
        assert await b.notes.all() == []
        assert await a.notes.count() == 1
    finally:
        await redis.aclose()


async def test_watchers_and_time_alert_due_index(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        store = SessionStore(redis, SID)
        now = utc_now()
        pair = WatcherPair(market="ETH", created_at=now,
                           upper=WatcherLeg(level=Decimal("3500"), direction=LegDirection.ABOVE, thesis="breakout"))
        await store.watchers.put(pair)
        assert (await store.watchers.get(pair.id)) == pair
        soon = TimeAlert(fire_at=now + timedelta(seconds=1), prompt="check funding", created_at=now)
        later = TimeAlert(fire_at=now + timedelta(hours=1), prompt="later", created_at=now)
        await store.time_alerts.put_many([soon, later])
        assert await store.time_alerts.next_due_at() == pytest.approx(soon.fire_at.timestamp())
        assert [a.id for a in await store.time_alerts.due(now + timedelta(seconds=2))] == [soon.id]
        await store.time_alerts.put(soon.model_copy(update={"status": TimeAlertStatus.FIRED}))
        assert await store.time_alerts.due(now + timedelta(seconds=2)) == []
        await store.time_alerts.delete(later.id)
        assert await store.time_alerts.next_due_at() is None
    finally:
        await redis.aclose()


async def test_a_corrupt_record_is_a_clear_error(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        store = SessionStore(redis, SID)
        await redis.hset(store.keys.notes, "n_bad", '{"text": 5}')
        with pytest.raises(CorruptRecordError, match="notes record does not parse"):
            await store.notes.get("n_bad")
    finally:
        await redis.aclose()


async def test_acknowledged_writes_survive_a_crash_of_redis(tmp_path: Path) -> None:
    server = await asyncio.to_thread(spawn_redis, tmp_path / "r", fsync="always")
    try:
        redis = await connect(server.url)
        now = utc_now()
        note = Note(text="survives kill -9", created_at=now, updated_at=now)
        await SessionStore(redis, SID).notes.put(note)
        await redis.aclose()
        await asyncio.to_thread(server.kill)
        server = await asyncio.to_thread(spawn_redis, tmp_path / "r", fsync="always")
        redis = await connect(server.url)
        assert await SessionStore(redis, SID).notes.get(note.id) == note
        await redis.aclose()
    finally:
        await asyncio.to_thread(server.stop)


async def test_unreachable_redis_is_one_clear_error(tmp_path: Path) -> None:
    from revagent.errors import RedisUnavailableError

    with pytest.raises(RedisUnavailableError, match="unreachable"):
        await connect(f"unix://{tmp_path}/no.sock")
