"""ThreadStore's batched writes and transcript cache against a real Redis: one transaction per
commit, the owner's in-memory log following its own appends and picking up anyone else's; and the
snapshot's ParsedHashCache re-reading only the records an invalidation names."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revagent.models import Note, SessionId
from revagent.store.keys import Keyspace
from revagent.store.threads import (
    ParsedHashCache,
    ThreadRecord,
    ThreadStore,
    ThreadTouch,
    TranscriptEntry,
    TurnImage,
    UsageDelta,
)

SID = SessionId(network="paper", address="0x" + "7c" * 20)
T0 = datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)


def entry(text: str, kind: str = "user", turn: str = "turn_1") -> TranscriptEntry:
    return TranscriptEntry(kind=kind, turn_id=turn, at=T0, text=text)  # type: ignore[arg-type]


async def commands(redis: Any, name: str) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


@pytest.fixture
async def thread(redis_client: aioredis.Redis) -> tuple[ThreadStore, ThreadRecord]:
    store = ThreadStore(redis_client, Keyspace(SID))
    record = await store.put(ThreadRecord(title="main", created_at=T0, updated_at=T0))
    return store, record


async def test_commit_writes_entries_usage_and_the_thread_in_one_transaction(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    execs = await commands(redis_client, "exec")
    usage = [UsageDelta(T0, input_tokens=1000, output_tokens=20, cost=Decimal("0.0031")),
             UsageDelta(T0 + timedelta(seconds=2), input_tokens=500, output_tokens=10, cache_read_input_tokens=7,
                        cost=Decimal("0.001"))]  # the second call lands on the next UTC day
    committed = await store.commit(record.id, [entry("hi"), entry("hello", "notice")], usage=usage,
                                   touch=ThreadTouch(T0 + timedelta(seconds=3)), day_usage=T0.date())
    assert await commands(redis_client, "exec") == execs + 1
    assert [(e.seq, e.text) for e in committed.entries] == [(0, "hi"), (1, "hello")]
    assert committed.day_usage is not None and committed.day_usage.cost_usd == Decimal("0.0031")
    other = ThreadStore(redis_client, Keyspace(SID))  # another process reads it all back
    assert [(e.seq, e.kind, e.text) for e in await other.transcript(record.id)] == [(0, "user", "hi"),
                                                                                    (1, "notice", "hello")]
    totals = await other.thread_usage(record.id)
    assert (totals.input_tokens, totals.output_tokens, totals.cache_read_input_tokens, totals.calls) == (1500, 30, 7, 2)
    assert totals.cost_usd == Decimal("0.0041")
    assert (await other.day_usage(T0.date())).calls == 1
    assert (await other.day_usage((T0 + timedelta(days=1)).date())).cost_usd == Decimal("0.001")
    stored = await other.get(record.id)
    assert stored is not None and stored.turns == 1 and stored.updated_at == T0 + timedelta(seconds=3)


async def test_a_turns_chart_is_kept_with_its_user_entry_for_a_day_and_dropped_with_its_end(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    execs = await commands(redis_client, "exec")
    chart = TurnImage("turn_1", "image/png", "iVBORw0KGgo" + "A" * 64)
    await store.commit(record.id, [entry("brief")], image=chart)
    assert await commands(redis_client, "exec") == execs + 1  # with the user entry, one transaction
    key = store.image_key(record.id, "turn_1")
    assert key.startswith(Keyspace(SID).prefix)  # the session's slot
    assert 86_000 < await redis_client.ttl(key) <= 86_400
    other = ThreadStore(redis_client, Keyspace(SID))  # the process that resumes the turn
    assert await other.turn_image(record.id, "turn_1") == chart
    assert await other.turn_image(record.id, "turn_2") is None
    assert "iVBORw0KGgo" not in repr(chart) and "iVBORw0KGgo" not in str(await store.transcript(record.id))
    await other.commit(record.id, [entry("", "turn_end")], drop_image="turn_1")
    assert await redis_client.exists(key) == 0 and await store.turn_image(record.id, "turn_1") is None


async def test_touch_keeps_what_another_process_changed_and_can_stop_the_thread(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    viewer = ThreadStore(redis_client, Keyspace(SID))
    await viewer.put(record.model_copy(update={"title": "renamed", "mode": "copilot"}))  # during the turn
    await store.commit(record.id, [entry("x")], touch=ThreadTouch(T0, stopped_reason="alert turn budget reached"))
    stored = await viewer.get(record.id)
    assert stored is not None
    assert (stored.title, stored.mode, stored.turns) == ("renamed", "copilot", 1)
    assert (stored.status, stored.stopped_reason) == ("stopped", "alert turn budget reached")


async def test_an_unreadable_thread_record_is_left_alone_and_the_rest_of_the_commit_applies(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    await redis_client.hset(store.threads_key, record.id, "{not json")
    await store.commit(record.id, [entry("kept")], usage=[UsageDelta(T0, input_tokens=1)], touch=ThreadTouch(T0))
    assert await redis_client.hget(store.threads_key, record.id) == "{not json"
    assert [e.text for e in await ThreadStore(redis_client, Keyspace(SID)).transcript(record.id)] == ["kept"]
    assert (await store.thread_usage(record.id)).calls == 1


async def test_the_owner_reads_its_own_appends_from_memory(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    await store.commit(record.id, [entry("before")])
    begun = await store.begin(record.id)
    assert begun.thread is not None and [e.text for e in begun.entries] == ["before"]
    reads = await commands(redis_client, "lrange")
    await store.commit(record.id, [entry("a"), entry("b", "assistant")])
    cached = await store.cached_transcript(record.id)
    assert [(e.seq, e.text) for e in cached] == [(0, "before"), (1, "a"), (2, "b")]
    assert await commands(redis_client, "lrange") == reads  # no round trip to read them back
    fresh = await ThreadStore(redis_client, Keyspace(SID)).transcript(record.id)
    assert [e.model_dump() for e in fresh] == [e.model_dump() for e in cached]


async def test_another_writers_append_is_never_hidden_from_the_owner(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    other = ThreadStore(redis_client, Keyspace(SID))
    await store.begin(record.id)
    await other.append(record.id, entry("from elsewhere", "notice"))
    # the next turn start sees it
    assert [e.text for e in (await store.begin(record.id)).entries] == ["from elsewhere"]
    # an append behind the owner's back between its own appends: RPUSH's length shows the gap
    await store.append(record.id, entry("mine 1"))
    await other.append(record.id, entry("theirs", "notice"))
    await store.append(record.id, entry("mine 2"))
    cached = await store.cached_transcript(record.id)
    assert [(e.seq, e.text) for e in cached] == [(0, "from elsewhere"), (1, "mine 1"), (2, "theirs"), (3, "mine 2")]


async def test_a_replaced_log_or_a_takeover_is_read_again_from_scratch(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    await store.append(record.id, entry("one"), entry("two"), entry("three"))
    assert len(await store.transcript(record.id)) == 3
    await redis_client.delete(store.log_key(record.id))
    await ThreadStore(redis_client, Keyspace(SID)).append(record.id, entry("new"))
    assert [(e.seq, e.text) for e in (await store.begin(record.id)).entries] == [(0, "new")]
    store.forget()
    assert [e.text for e in await store.cached_transcript(record.id)] == ["new"]


async def test_a_failed_commit_never_leaves_the_owner_a_stale_log(
        redis_client: aioredis.Redis, thread: tuple[ThreadStore, ThreadRecord]) -> None:
    store, record = thread
    await store.begin(record.id)
    await redis_client.set(store.usage_key(record.id), "a string, not a hash")  # HINCRBY fails inside EXEC
    with pytest.raises(Exception, match="WRONGTYPE"):
        await store.commit(record.id, [entry("x")], usage=[UsageDelta(T0, input_tokens=1)])
    # Redis does not roll back: the RPUSH before the failed command applied. The owner's cache,
    # unsure of what applied, reads Redis again instead of trusting memory.
    cached = await store.cached_transcript(record.id)
    fresh = await ThreadStore(redis_client, Keyspace(SID)).transcript(record.id)
    assert [e.text for e in cached] == [e.text for e in fresh] == ["x"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=6),
       foreign=st.lists(st.booleans(), min_size=6, max_size=6))
async def test_concurrent_commits_and_foreign_appends_keep_the_cache_equal_to_redis(
        redis_client: aioredis.Redis, batches: list[int], foreign: list[bool]) -> None:
    keys = Keyspace(SID)
    store, other = ThreadStore(redis_client, keys), ThreadStore(redis_client, keys)
    record = await store.put(ThreadRecord(title="prop", created_at=T0, updated_at=T0))
    await store.begin(record.id)
    writes = []
    for i, n in enumerate(batches):
        writes.append(store.commit(record.id, [entry(f"own {i}.{k}") for k in range(n)]))
        if foreign[i]:
            writes.append(other.append(record.id, entry(f"theirs {i}", "notice")))
    await asyncio.gather(*writes)
    await store.begin(record.id)  # a turn start: whatever happened, the owner now has the whole log
    cached = await store.cached_transcript(record.id)
    fresh = await ThreadStore(redis_client, keys).transcript(record.id)
    assert [e.model_dump() for e in cached] == [e.model_dump() for e in fresh]
    assert [e.seq for e in cached] == list(range(len(fresh)))
    assert len(fresh) == sum(batches) + sum(foreign[:len(batches)])


def parsed_cache(redis: Any, *, live: bool = True) -> ParsedHashCache[Note]:
    return ParsedHashCache(redis, Keyspace(SID).key("notes"), Note, key=lambda n: (n.created_at, n.id), live=live,
                           max_age_s=3600)


async def test_a_named_invalidation_fetches_only_that_record_and_keeps_the_other_objects(
        redis_client: aioredis.Redis) -> None:
    cache = parsed_cache(redis_client)
    notes = [Note(id=f"n_{i}", text=f"note {i}", created_at=T0 + timedelta(seconds=i), updated_at=T0)
             for i in range(5)]
    await redis_client.hset(cache.hash_key, mapping={n.id: n.model_dump_json() for n in notes})
    first = await cache.all()
    full_reads, partial_reads = await commands(redis_client, "hgetall"), await commands(redis_client, "hmget")
    changed = notes[2].model_copy(update={"text": "rewritten"})
    await redis_client.hset(cache.hash_key, "n_2", changed.model_dump_json())
    await redis_client.hdel(cache.hash_key, "n_4")
    cache.invalidate("n_2")
    cache.invalidate("n_4")
    second = await cache.all()
    assert [n.text for n in second] == ["note 0", "note 1", "rewritten", "note 3"]
    assert (await commands(redis_client, "hgetall"), await commands(redis_client, "hmget")) == (full_reads,
                                                                                                partial_reads + 1)
    assert all(a is b for a, b in zip(first[:2] + first[3:4], second[:2] + second[3:4], strict=True))
    assert await cache.all() == second and await commands(redis_client, "hmget") == partial_reads + 1
    cache.invalidate()  # anything may have changed: the whole hash again
    await cache.all()
    assert await commands(redis_client, "hgetall") == full_reads + 1


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["put", "delete", "read", "reload"]), st.integers(0, 5)),
                    min_size=1, max_size=15))
async def test_a_live_cache_fed_every_change_reads_like_the_hash(redis_client: aioredis.Redis,
                                                                 ops: list[tuple[str, int]]) -> None:
    cache = parsed_cache(redis_client)
    await redis_client.delete(cache.hash_key)
    await cache.all()
    for version, (op, i) in enumerate(ops):
        rid = f"n_{i}"
        if op == "put":
            note = Note(id=rid, text=f"v{version}", created_at=T0 + timedelta(seconds=i), updated_at=T0)
            await redis_client.hset(cache.hash_key, rid, note.model_dump_json())
            cache.invalidate(rid)
        elif op == "delete":
            await redis_client.hdel(cache.hash_key, rid)
            cache.invalidate(rid)
        elif op == "reload":
            cache.invalidate()
        else:
            await cache.all()
    truth = await parsed_cache(redis_client, live=False).all()
    assert [n.model_dump() for n in await cache.all()] == [n.model_dump() for n in truth]


async def test_a_cold_cache_is_always_fresh_and_fetches_the_hash_only_when_it_changed(
        redis_client: aioredis.Redis) -> None:
    cache = parsed_cache(redis_client, live=False)
    notes = {f"n_{i}": Note(id=f"n_{i}", text=f"note {i}", created_at=T0 + timedelta(seconds=i), updated_at=T0)
             for i in range(300)}
    await redis_client.hset(cache.hash_key, mapping={k: n.model_dump_json() for k, n in notes.items()})
    first = await cache.all()
    digest = cache._digest
    sent = int((await redis_client.info("stats"))["total_net_output_bytes"])
    again = await cache.all()  # unchanged: the script answers its digest alone
    reply = int((await redis_client.info("stats"))["total_net_output_bytes"]) - sent
    assert all(a is b for a, b in zip(first, again, strict=True)) and cache._digest == digest
    assert reply < 10_000  # the INFO reply itself and a digest, not 300 notes (~40 kB)
    edited = notes["n_7"].model_copy(update={"text": "edited"})
    await redis_client.hset(cache.hash_key, "n_7", edited.model_dump_json())  # no invalidation: cold is fresh
    third = await cache.all()
    assert third[7].text == "edited" and cache._digest != digest
    assert all(a is b for i, (a, b) in enumerate(zip(first, third, strict=True)) if i != 7)
    cache.invalidate()  # harmless when cold: the content is still known
    assert [n.text for n in await cache.all()] == [n.text for n in third]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["put", "delete", "read", "same"]), st.integers(0, 5)),
                    min_size=1, max_size=15))
async def test_a_cold_cache_reads_like_the_hash_whatever_changed(redis_client: aioredis.Redis,
                                                                 ops: list[tuple[str, int]]) -> None:
    cache = parsed_cache(redis_client, live=False)
    await redis_client.delete(cache.hash_key)
    for version, (op, i) in enumerate(ops):
        rid = f"n_{i}"
        if op in ("put", "same"):
            note = Note(id=rid, text="same" if op == "same" else f"v{version}", created_at=T0, updated_at=T0)
            await redis_client.hset(cache.hash_key, rid, note.model_dump_json())
        elif op == "delete":
            await redis_client.hdel(cache.hash_key, rid)
        truth = {k: Note.model_validate_json(v) for k, v in (await redis_client.hgetall(cache.hash_key)).items()}
        assert {n.id: n for n in await cache.all()} == truth
