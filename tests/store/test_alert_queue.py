"""The durable alert queue: one enqueue per trigger key, urgent first, resumed after a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal

from revagent.models import SessionId
from revagent.store.alert_events import AlertEvent, AlertKind, trigger_key
from revagent.store.alert_queue import AlertQueue
from revagent.store.connection import connect
from revagent.store.keys import Keyspace

SID = SessionId(network="paper", address="0x" + "5a" * 20)
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def watcher_event(gen: int = 1) -> AlertEvent:
    return AlertEvent(alert_id="w_1", kind=AlertKind.WATCHER, trigger_key=trigger_key("w_1", f"upper:g{gen}"),
                      fired_at=T0, price=Decimal("3500"))


def stop_event() -> AlertEvent:
    return AlertEvent(alert_id="tr_1", kind=AlertKind.STOP_LOSS_VERIFICATION,
                      trigger_key=trigger_key("tr_1", "stop_loss_verification:g1"), fired_at=T0)


async def test_one_firing_enqueues_once_and_the_next_occurrence_still_fires(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        q = AlertQueue(redis, Keyspace(SID))
        await q.ensure_groups()
        assert await q.enqueue(watcher_event(1)) is not None
        assert await q.enqueue(watcher_event(1)) is None  # double tick / restart: nothing
        assert await q.enqueue(watcher_event(2)) is not None  # re-armed: a new occurrence
        taken = await q.take(count=5, block_ms=0)
        assert [t.event.trigger_key for t in taken] == ["w_1#upper:g1", "w_1#upper:g2"]
        for t in taken:
            await q.done(t, thread_id="th_x")
        assert await q.pending() == []
        assert [h["status"] for h in await q.history()] == ["finished", "finished"]
    finally:
        await redis.aclose()


async def test_stop_loss_verification_is_served_before_earlier_discretionary_alerts(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        q = AlertQueue(redis, Keyspace(SID))
        await q.ensure_groups()
        await q.enqueue(watcher_event())
        await q.enqueue(stop_event())
        first = await q.take(count=1, block_ms=0)
        assert first[0].event.kind is AlertKind.STOP_LOSS_VERIFICATION
        assert first[0].band == "urgent"
    finally:
        await redis.aclose()


async def test_failures_retry_with_backoff_then_park_and_can_be_retried(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        q = AlertQueue(redis, Keyspace(SID), max_attempts=2, backoff_seconds=0.0)
        await q.ensure_groups()
        await q.enqueue(watcher_event())
        item = (await q.take(block_ms=0))[0]
        assert await q.failed(item, "model unreachable") == "retry"
        again = (await q.take(block_ms=0))[0]
        assert again.attempt == 2
        assert again.event == item.event
        assert await q.failed(again, "model unreachable") == "parked"
        assert await q.take(block_ms=0) == []
        failures = await q.failures()
        assert failures["w_1#upper:g1"]["attempts"] == 2
        assert await q.retry("w_1#upper:g1")
        assert (await q.take(block_ms=0))[0].attempt == 1
        assert not await q.retry("w_nope#g1")
    finally:
        await redis.aclose()


async def test_an_entry_taken_by_a_killed_owner_is_handed_back_once(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        q = AlertQueue(redis, Keyspace(SID))
        await q.ensure_groups()
        await q.enqueue(watcher_event())
        script = textwrap.dedent(f"""
            import asyncio, os, signal
            from revagent.models import SessionId
            from revagent.store.alert_queue import AlertQueue
            from revagent.store.connection import connect
            from revagent.store.keys import Keyspace
            async def main():
                r = await connect({redis_url!r})
                q = AlertQueue(r, Keyspace(SessionId.parse({str(SID)!r})))
                taken = await q.take(block_ms=0)
                print(len(taken), flush=True)
                os.kill(os.getpid(), signal.SIGKILL)  # crash between take and ack
            asyncio.run(main())
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
        assert proc.returncode == -9
        assert proc.stdout.strip() == "1"
        restarted = AlertQueue(redis, Keyspace(SID))
        again = await restarted.take(block_ms=0)
        assert len(again) == 1
        assert again[0].redelivered
        assert again[0].event == watcher_event()
        await restarted.done(again[0])
        assert await restarted.take(block_ms=0) == []
        assert await AlertQueue(redis, Keyspace(SID)).take(block_ms=0) == []
    finally:
        await redis.aclose()
