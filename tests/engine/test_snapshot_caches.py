"""The snapshot caches follow store writes from any process through the bus (as the Session feeds
it: Redis channel -> StoreInvalidations -> bus), reload everything after missed events, and stop
with the engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from revagent.bus import Bus
from revagent.engine.caches import SnapshotCaches
from revagent.events import StoreChanged
from revagent.models import Note, SessionId
from revagent.store.invalidations import StoreInvalidations
from revagent.store.repos import SessionStore

SID = SessionId(network="paper", address="0x" + "9d" * 20)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def note(text: str) -> Note:
    return Note(text=text, created_at=NOW, updated_at=NOW)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


@pytest.fixture
async def fed_bus(redis_client: aioredis.Redis) -> AsyncIterator[Bus]:
    """A bus carrying every store write, as the Session's store-events task does."""
    bus = Bus()
    feed = StoreInvalidations(redis_client, SessionStore(redis_client, SID).keys.events)
    await feed.subscribe()

    async def forward() -> None:
        async for changed in feed:
            bus.publish(changed)

    task = asyncio.get_running_loop().create_task(forward(), name="test:store-events")
    try:
        yield bus
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await feed.aclose()


async def test_a_write_from_another_process_reaches_the_live_cache(redis_client: aioredis.Redis,
                                                                   fed_bus: Bus) -> None:
    store = SessionStore(redis_client, SID)
    caches = SnapshotCaches(store, live=True, max_age_s=3600)  # only an invalidation can refresh it
    caches.follow(fed_bus)
    await store.notes.put(note("first"))
    assert [n.text for n in await caches.notes.all()] == ["first"]
    other = SessionStore(redis_client, SID)  # `revagent notes add` in a shell
    await other.notes.put(note("second"))

    async def both() -> bool:
        return sorted(n.text for n in await caches.notes.all()) == ["first", "second"]

    await eventually(both)
    await caches.aclose()


async def test_missed_events_reload_every_cache(redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    bus = Bus()
    caches = SnapshotCaches(store, live=True, max_age_s=3600)
    caches.follow(bus)
    assert await caches.notes.all() == []
    # a write whose invalidation is lost: the follower's queue overflows before it runs
    await redis_client.hset(store.notes.hash_key, "n_lost", note("lost").model_dump_json())
    for i in range(1001):
        bus.publish(StoreChanged(what=f"ledger.{i}"))
    assert await caches.notes.all() == []  # stale until the follower catches up

    async def reloaded() -> bool:
        return [n.text for n in await caches.notes.all()] == ["lost"]

    await eventually(reloaded)
    await caches.aclose()


async def test_aclose_ends_the_follower_and_its_subscription(redis_client: aioredis.Redis) -> None:
    bus = Bus()
    caches = SnapshotCaches(SessionStore(redis_client, SID), live=True)
    caches.follow(bus)
    caches.follow(bus)  # idempotent: one task, one subscription
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "engine:invalidations"]
    assert len(tasks) == 1 and len(bus._subs) == 1
    await caches.aclose()
    assert tasks[0].done() and bus._subs == []
    cold = SnapshotCaches(SessionStore(redis_client, SID), live=False)
    cold.follow(bus)  # re-reading every turn: nothing to follow
    assert bus._subs == []
