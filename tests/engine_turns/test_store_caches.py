"""The thread store's caches: incremental transcript reads, parsed-model caches with invalidation, usage sums."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from revagent.models import Note
from revagent.store.threads import ParsedHashCache, ThreadStore, TranscriptEntry
from tests.engine_turns.conftest import NOW, Harness


def note(text: str, minutes: int = 0) -> Note:
    return Note(text=text, created_at=NOW + timedelta(minutes=minutes), updated_at=NOW)


async def test_transcript_reads_see_appends_from_another_store_instance(harness: Harness) -> None:
    mine, theirs = harness.threads, ThreadStore(harness.redis, harness.threads.keys)
    await mine.append("th_1", TranscriptEntry(kind="user", turn_id="t1", at=NOW, text="a"))
    assert [e.text for e in await mine.transcript("th_1")] == ["a"]
    await theirs.append("th_1", TranscriptEntry(kind="user", turn_id="t2", at=NOW, text="b"))
    log = await mine.transcript("th_1")
    assert [(e.seq, e.text) for e in log] == [(0, "a"), (1, "b")]
    # concurrent readers never duplicate entries in the cache
    results = await asyncio.gather(*(mine.transcript("th_1") for _ in range(5)))
    assert all(len(r) == 2 for r in results)
    assert [e.text for e in await mine.transcript("th_1", start=1)] == ["b"]
    assert await mine.transcript("th_other") == []


async def test_parsed_cache_cold_always_fresh_live_only_after_invalidation(harness: Harness) -> None:
    repo = harness.store.notes
    cold = ParsedHashCache(harness.redis, repo.hash_key, Note, key=lambda n: (n.created_at, n.id))
    live = ParsedHashCache(harness.redis, repo.hash_key, Note, key=lambda n: (n.created_at, n.id), live=True)
    first = note("first")
    await repo.put(first)
    assert [n.text for n in await cold.all()] == [n.text for n in await live.all()] == ["first"]
    again = await cold.all()
    assert again[0] is (await cold.all())[0]  # unchanged JSON is not parsed again
    await repo.put(note("second", 1))
    assert [n.text for n in await cold.all()] == ["first", "second"]
    assert [n.text for n in await live.all()] == ["first"]  # not told yet
    live.invalidate()
    assert [n.text for n in await live.all()] == ["first", "second"]
    await repo.delete(first.id)
    live.invalidate()
    assert [n.text for n in await live.all()] == ["second"]
    live.max_age_s = 0.0  # the safety net: an old copy is re-read even without an invalidation
    await repo.put(note("third", 2))
    assert [n.text for n in await live.all()] == ["second", "third"]


async def test_usage_counters_are_exact_sums(harness: Harness) -> None:
    for cost in ("0.000123", "0.0000015", "1.5"):
        await harness.threads.add_usage("th_u", NOW, input_tokens=10, output_tokens=5, cache_creation_input_tokens=0,
                                        cache_read_input_tokens=7, cost=Decimal(cost))
    totals = await harness.threads.thread_usage("th_u")
    assert totals.cost_usd == Decimal("1.5001245") and totals.calls == 3 and totals.cache_read_input_tokens == 21
    assert (await harness.threads.day_usage(NOW.date())).cost_usd == totals.cost_usd
    assert (await harness.threads.day_usage((NOW + timedelta(days=1)).date())).calls == 0
