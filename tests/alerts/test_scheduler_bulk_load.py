"""`AlertScheduler.load()` over more pairs than one write batch: the leg statuses found at start-up
(corrections from the queue's seen keys, expiries, levels already crossed) are all written, in batches;
and `quiet_heap`, the garbage-collector pause a big load runs under. Real Redis (the suite's server)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from revagent.alerts import price_watch as price_watch_module
from revagent.alerts.levels import EntryKey
from revagent.alerts.price_watch import LEG_WRITE_BATCH, LegWrite, apply_leg_writes, quiet_heap
from revagent.alerts.scheduler import AlertScheduler
from revagent.bus import Bus
from revagent.models import LegDirection, LegStatus, SessionId, WatcherLeg, WatcherPair
from revagent.store.alert_events import level_trigger_key
from revagent.store.alert_queue import AlertQueue
from revagent.store.repos import SessionStore

SID = SessionId(network="paper", address="0x" + "cd" * 20)
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
N = 3 * LEG_WRITE_BATCH + 30  # each group below has more pairs than one write batch


def pair(i: int, *, expires_at: datetime | None = None) -> WatcherPair:
    return WatcherPair(id=f"w_{i:06d}", market="BTC", created_at=T0 - timedelta(days=1), expires_at=expires_at,
                       upper=WatcherLeg(level=Decimal(100_000 + i), direction=LegDirection.ABOVE),
                       lower=WatcherLeg(level=Decimal(50_000) - Decimal(i) / 8, direction=LegDirection.BELOW))


async def commands(redis: aioredis.Redis, name: str) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


async def stored_statuses(store: SessionStore) -> dict[str, tuple[LegStatus, LegStatus]]:
    out: dict[str, tuple[LegStatus, LegStatus]] = {}
    for p in await store.watchers.all():
        assert p.upper is not None and p.lower is not None
        out[p.id] = (p.upper.status, p.lower.status)
    return out


async def test_corrections_and_expiries_beyond_one_batch_are_all_written_in_few_round_trips(
        redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    queue = AlertQueue(redis_client, store.keys)
    seen = [i for i in range(N) if i % 3 == 0]  # enqueued before a crash: upper FIRED, lower DISARMED
    expired = [i for i in range(N) if i % 3 == 1]  # expired while down: both EXPIRED
    armed = [i for i in range(N) if i % 3 == 2]
    every = [pair(i, expires_at=T0 - timedelta(minutes=1) if i % 3 == 1 else None) for i in range(N)]
    for start in range(0, N, 1000):
        await store.watchers.put_many(every[start:start + 1000])
    await redis_client.zadd(queue.k.seen, {level_trigger_key(f"w_{i:06d}", "upper", 1): 1.0 for i in seen})
    sch = AlertScheduler(store, queue, Bus(), clock=lambda: T0)
    execs, hmgets = await commands(redis_client, "exec"), await commands(redis_client, "hmget")
    await sch.load()
    try:
        await sch.legs_written()  # the corrections follow the load, off its path
        changed = len(seen) + len(expired)
        batches = -(-changed // LEG_WRITE_BATCH)
        assert changed > LEG_WRITE_BATCH
        assert await commands(redis_client, "hmget") - hmgets == batches
        assert await commands(redis_client, "exec") - execs == batches
        statuses = await stored_statuses(store)
        assert {statuses[f"w_{i:06d}"] for i in seen} == {(LegStatus.FIRED, LegStatus.DISARMED)}
        assert {statuses[f"w_{i:06d}"] for i in expired} == {(LegStatus.EXPIRED, LegStatus.EXPIRED)}
        assert {statuses[f"w_{i:06d}"] for i in armed} == {(LegStatus.ARMED, LegStatus.ARMED)}
        assert len(sch.index) == 2 * len(armed)
    finally:
        await sch.aclose()


async def test_levels_already_crossed_at_start_are_queued_and_recorded_beyond_one_batch(
        redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    queue = AlertQueue(redis_client, store.keys)
    n = LEG_WRITE_BATCH + 200
    every = [pair(i) for i in range(n)]
    await store.watchers.put_many(every)
    crossed = LEG_WRITE_BATCH + 50  # the mid is at or above the upper level of the first `crossed` pairs

    async def mids() -> dict[str, Decimal]:
        return {"BTC": Decimal(100_000 + crossed - 1)}

    sch = AlertScheduler(store, queue, Bus(), clock=lambda: T0, initial_mids=mids)
    await sch.load()
    try:
        await sch.legs_written()
        statuses = await stored_statuses(store)
        assert [i for i in range(n) if statuses[f"w_{i:06d}"] == (LegStatus.FIRED, LegStatus.DISARMED)] == list(
            range(crossed))
        assert {statuses[f"w_{i:06d}"] for i in range(crossed, n)} == {(LegStatus.ARMED, LegStatus.ARMED)}
        assert await queue.seen_keys() == {level_trigger_key(f"w_{i:06d}", "upper", 1) for i in range(crossed)}
        fired = (await store.watchers.get("w_000000") or pytest.fail("missing")).upper
        assert fired is not None and fired.fired_at == T0 and fired.fired_price == Decimal(100_000 + crossed - 1)
        assert len(sch.index) == 2 * (n - crossed)
    finally:
        await sch.aclose()


def test_apply_leg_writes_skips_a_leg_that_moved_on_and_applies_several_to_one_pair() -> None:
    p = pair(7)
    assert p.upper is not None
    rearmed = p.model_copy(update={"upper": p.upper.model_copy(update={"generation": 2})})
    both = [LegWrite(p.id, "upper", 1, LegStatus.FIRED, fired_at=T0, fired_price=Decimal(100_007)),
            LegWrite(p.id, "lower", 1, LegStatus.DISARMED)]
    done = apply_leg_writes(p, both)
    assert done is not None and done.upper is not None and done.lower is not None
    assert (done.upper.status, done.upper.fired_at, done.lower.status) == (LegStatus.FIRED, T0, LegStatus.DISARMED)
    assert apply_leg_writes(done, both) is None  # no longer ARMED: nothing to write
    partly = apply_leg_writes(rearmed, both)
    assert partly is not None and partly.upper == rearmed.upper  # generation 2: the write for 1 is stale
    assert partly.lower is not None and partly.lower.status is LegStatus.DISARMED


@pytest.fixture
def unfreeze() -> Iterator[None]:
    """Whatever a test froze is handed back to the collector afterwards (the rest of the run)."""
    before = gc.get_freeze_count()
    try:
        yield
    finally:
        if gc.get_freeze_count() > before:
            gc.unfreeze()
        assert gc.isenabled()


def testquiet_heap_pauses_collection_then_freezes_and_restores_the_collector(unfreeze: None) -> None:
    before = gc.get_freeze_count()
    with quiet_heap(True):
        assert not gc.isenabled()
        kept = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() >= before + len(kept)


def testquiet_heap_does_not_freeze_when_the_body_fails_and_does_nothing_when_inactive(unfreeze: None) -> None:
    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), quiet_heap(True):
        raise RuntimeError("load failed")
    assert gc.isenabled() and gc.get_freeze_count() == before
    with quiet_heap(False):
        assert gc.isenabled()
    assert gc.get_freeze_count() == before
    gc.disable()
    try:
        with quiet_heap(True):
            pass
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()


async def test_a_load_of_many_pairs_runs_under_thequiet_heap(redis_client: aioredis.Redis, unfreeze: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(redis_client, SID)
    await store.watchers.put_many([pair(i) for i in range(20)])
    before = gc.get_freeze_count()
    monkeypatch.setattr(price_watch_module, "QUIET_HEAP_MIN_PAIRS", 21)
    small = AlertScheduler(store, AlertQueue(redis_client, store.keys), Bus(), clock=lambda: T0)
    await small.load()
    after_small = gc.get_freeze_count()
    monkeypatch.setattr(price_watch_module, "QUIET_HEAP_MIN_PAIRS", 20)
    big = AlertScheduler(store, AlertQueue(redis_client, store.keys), Bus(), clock=lambda: T0)
    await big.load()
    after_big = gc.get_freeze_count()
    await small.aclose()
    await big.aclose()
    assert after_small == before  # under the threshold: the collector is left alone
    assert after_big > before and len(big.index) == 40


async def test_reloading_every_pair_forgets_deleted_ones_refreshes_changed_ones_and_keeps_the_rest(
        redis_client: aioredis.Redis) -> None:
    store = SessionStore(redis_client, SID)
    n = 3 * price_watch_module.RECONCILE_YIELD_EVERY + 7
    every = [pair(i) for i in range(n)]
    await store.watchers.put_many(every)
    sch = AlertScheduler(store, AlertQueue(redis_client, store.keys), Bus(), clock=lambda: T0)
    await sch.load()
    try:
        deleted = [p.id for p in every[::5]]
        for pid in deleted:
            await store.watchers.delete(pid)
        changed = every[1::5]
        await store.watchers.put_many([p.model_copy(update={"created_by": "agent"}) for p in changed])
        kept = every[2]
        kept_payload = (sch.index.get(EntryKey(kept.id, "upper")) or pytest.fail("not armed")).payload
        await sch.reload_pairs()
        armed_ids = {v.key.alert_id for v in sch.index.armed()}
        assert armed_ids == {p.id for p in every} - set(deleted)
        assert len(sch.index) == 2 * (n - len(deleted))
        for p in changed:
            for slot in ("upper", "lower"):
                view = sch.index.get(EntryKey(p.id, slot)) or pytest.fail("not armed")
                assert isinstance(view.payload, WatcherPair) and view.payload.created_by == "agent"
        assert (sch.index.get(EntryKey(kept.id, "lower")) or pytest.fail("not armed")).payload is kept_payload
    finally:
        await sch.aclose()


@pytest.mark.timeout(300)
async def test_corrections_found_at_start_are_written_after_the_load_not_within_it(
        redis_client: aioredis.Redis) -> None:
    """Issue 18.4: a start that finds corrections (a tenth of the pairs expired while down, a tenth
    enqueued before a crash) does not write them inside `load()` (at 100,000 pairs that write cost as
    much as the rest of the load): the index is ready when `load()` returns, the leg statuses follow
    off its path (`legs_written`), and a reload meanwhile re-arms nothing that fired or expired.
    Before, `load()` returned with every status written (and took 2.2x a load without corrections)."""
    n = 20_000
    store = SessionStore(redis_client, SID)
    expired = set(range(5, n, 10))
    seen = set(range(0, n, 10))

    def stored_pairs() -> list[WatcherPair]:  # built off the loop (20,000 models)
        return [pair(i, expires_at=T0 - timedelta(minutes=1) if i in expired else None) for i in range(n)]

    every = await asyncio.to_thread(stored_pairs)
    for start in range(0, n, 2000):
        await store.watchers.put_many(every[start:start + 2000])
    del every
    queue = AlertQueue(redis_client, store.keys)
    await redis_client.zadd(queue.k.seen, {level_trigger_key(f"w_{i:06d}", "upper", 1): 1.0 for i in seen})
    sch = AlertScheduler(store, queue, Bus(), clock=lambda: T0)
    await sch.load()
    try:
        last = await store.watchers.get(f"w_{max(expired):06d}")  # in the last of the write-back's batches
        assert last is not None and last.upper is not None
        assert last.upper.status is LegStatus.ARMED, "load() returned with every correction written"
        assert len(sch.index) == 2 * (n - len(seen) - len(expired))
        for i in (0, 5, 10, 15, max(expired)):  # a reload before the write-back landed arms nothing again
            await sch.reload_pairs(f"w_{i:06d}")
        assert len(sch.index) == 2 * (n - len(seen) - len(expired))
        await sch.legs_written()
        statuses = await stored_statuses(store)
        assert {statuses[f"w_{i:06d}"] for i in seen} == {(LegStatus.FIRED, LegStatus.DISARMED)}
        assert {statuses[f"w_{i:06d}"] for i in expired} == {(LegStatus.EXPIRED, LegStatus.EXPIRED)}
    finally:
        await sch.aclose()
