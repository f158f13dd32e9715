"""Bulk reads and writes of the repositories and the alert queue: hashes bigger than one scan batch
(read in `HSCAN` batches, parsed in a worker thread), the sort key, `get_many`, per-id announcements,
and the queue's seen keys read in `ZSCAN` batches. Real Redis (the suite's server)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.models import LegDirection, Note, SessionId, WatcherLeg, WatcherPair
from revagent.store import repos
from revagent.store.alert_events import AlertEvent, level_trigger_key, trigger_key
from revagent.store.alert_queue import SEEN_SCAN_BATCH, AlertQueue
from revagent.store.repos import CorruptRecordError, SessionStore, moment_key

SID = SessionId(network="paper", address="0x" + "ab" * 20)
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
BIG = repos.SCAN_BATCH * 2 + 321  # several HSCAN batches, and more than PARSE_ON_LOOP_MAX (a worker thread)


def pair(i: int, *, created_at: datetime) -> WatcherPair:
    return WatcherPair(id=f"w_{i:06d}", market="BTC", created_at=created_at,
                       upper=WatcherLeg(level=Decimal(100_000 + i), direction=LegDirection.ABOVE),
                       lower=WatcherLeg(level=Decimal(50_000 - i), direction=LegDirection.BELOW))


def many_pairs(n: int) -> list[WatcherPair]:
    # few distinct creation times, so most of the order is decided by the id; ids not in time order
    return [pair(i, created_at=T0 + timedelta(seconds=(i * 7919) % 13, microseconds=i % 3)) for i in range(n)]


async def put_in_chunks(store: SessionStore, records: list[WatcherPair], size: int = 1000) -> None:
    for start in range(0, len(records), size):
        await store.watchers.put_many(records[start:start + size])


def test_the_sizes_make_these_tests_cross_batch_boundaries() -> None:
    assert BIG > repos.SCAN_BATCH and BIG > repos.PARSE_ON_LOOP_MAX


async def test_all_over_a_hash_of_several_scan_batches_returns_every_record_once_in_order(
        redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    stored = many_pairs(BIG)
    await put_in_chunks(store, stored)
    got = await store.watchers.all()
    assert len(got) == BIG and len({p.id for p in got}) == BIG
    assert got == sorted(stored, key=lambda p: (p.created_at, p.id))
    assert got[0].created_at == T0 and got[0].id == "w_000000"


async def test_a_small_hash_is_read_and_ordered_the_same_way(redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    notes = [Note(id=f"n_{i}", text=f"note {i}", created_at=T0 + timedelta(minutes=5 - i), updated_at=T0)
             for i in range(6)]
    await store.notes.put_many(notes)
    assert [n.id for n in await store.notes.all()] == [f"n_{i}" for i in range(5, -1, -1)]


async def test_records_present_for_the_whole_scan_are_all_returned_while_the_hash_grows(
        redis_client: aioredis.Redis) -> None:
    """The hash is rehashed while it is scanned (HSCAN may then repeat fields): nothing present from
    start to end is missed, and every id comes back once."""
    store = SessionStore(redis_client, SID)
    first = many_pairs(BIG)
    await put_in_chunks(store, first)
    later = [pair(BIG + i, created_at=T0) for i in range(BIG)]

    async def grow() -> None:
        for start in range(0, len(later), 200):
            await store.watchers.put_many(later[start:start + 200])
            await asyncio.sleep(0)

    writer = asyncio.get_running_loop().create_task(grow(), name="test-grow-hash")
    try:
        got = await store.watchers.all()
    finally:
        await writer
    ids = [p.id for p in got]
    assert len(ids) == len(set(ids))
    assert {p.id for p in first} <= set(ids)
    assert got == sorted(got, key=lambda p: (p.created_at, p.id))


async def test_a_corrupt_record_in_a_big_hash_raises_naming_the_record(redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    await put_in_chunks(store, many_pairs(BIG))
    broken = json.loads((await store.watchers.get("w_001234") or pytest.fail("missing")).model_dump_json())
    broken["market"] = "not a market!"
    await redis_client.hset(store.keys.watchers, "w_001234", json.dumps(broken))
    with pytest.raises(CorruptRecordError, match=r"(?s)watchers record does not parse \(w_001234\).*market"):
        await store.watchers.all()
    with pytest.raises(CorruptRecordError, match=r"\(w_001234\)"):
        await store.watchers.get_many(["w_000001", "w_001234"])


async def test_get_many_returns_the_stored_ones_across_batches_and_skips_missing_ids(
        redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    stored = many_pairs(repos.SCAN_BATCH + 10)
    await put_in_chunks(store, stored)
    wanted = [p.id for p in stored[::-1]] + ["w_missing", stored[0].id]
    got = await store.watchers.get_many(wanted)
    assert set(got) == {p.id for p in stored}
    assert all(got[p.id] == p for p in stored)
    assert await store.watchers.get_many([]) == {}


async def _announced(redis_client: aioredis.Redis, store: SessionStore, records: list[WatcherPair],
                     **kw: bool) -> list[object]:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(store.keys.events)
    try:
        await store.watchers.put_many(records, **kw)
        await redis_client.publish(store.keys.events, "end")  # after the transaction's messages
        ids: list[object] = []
        async with asyncio.timeout(5):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                if message["data"] == "end":
                    return ids
                ids.append(json.loads(message["data"])["payload"]["id"])
    finally:
        await pubsub.aclose()


async def test_put_many_announces_each_id_when_asked_and_one_null_id_otherwise(
        redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    records = many_pairs(3)
    assert await _announced(redis_client, store, records) == [None]
    assert await _announced(redis_client, store, records, announce_each=True) == [p.id for p in records]
    assert await _announced(redis_client, store, records[:1]) == [records[0].id]


@settings(max_examples=200, deadline=None)
@given(moments=st.lists(st.tuples(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                                               timezones=st.sampled_from([UTC, timezone(timedelta(hours=5)),
                                                                          timezone(timedelta(hours=-7))])),
                                  st.text(alphabet="w_0123456789abcdefz", min_size=1, max_size=12)),
                        min_size=2, max_size=30))
def test_moment_key_orders_like_the_instant_then_the_id(moments: list[tuple[datetime, str]]) -> None:
    by_key = sorted(moments, key=lambda m: moment_key(*m))
    by_tuple = sorted(moments, key=lambda m: (m[0].astimezone(UTC), m[1]))
    assert [(m[0].astimezone(UTC), m[1]) for m in by_key] == [(m[0].astimezone(UTC), m[1]) for m in by_tuple]


async def test_seen_keys_reads_a_set_larger_than_one_scan_batch(redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    queue = AlertQueue(redis_client, store.keys)
    members = {level_trigger_key(f"w_{i:06d}", "upper", 1): float(i) for i in range(SEEN_SCAN_BATCH * 2 + 17)}
    await redis_client.zadd(queue.k.seen, members)
    assert await queue.seen_keys() == set(members)


async def test_seen_keys_holds_what_enqueue_recorded(redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    queue = AlertQueue(redis_client, store.keys)
    assert await queue.seen_keys() == set()
    event = AlertEvent.model_validate({
        "trigger_key": trigger_key("a_1", "2026-11-24T08:00:00Z"), "kind": "time", "alert_id": "a_1",
        "fired_at": T0.isoformat(), "priority": 5})
    await queue.ensure_groups()
    assert await queue.enqueue(event) is not None
    assert await queue.seen_keys() == {event.trigger_key}
