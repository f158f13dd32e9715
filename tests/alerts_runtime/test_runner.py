"""The queue consumer: one run per entry, signals on the bus, retries then parking, concurrency and
one turn per thread, draining for SIGTERM, and resuming redelivered entries."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from revagent.alerts.runner import AlertRunner, LoggingHandler, TurnOutcome, thread_id_for
from revagent.events import AlertSignal
from revagent.runtime.session import Session
from revagent.store.alert_events import AlertEvent, AlertKind, trigger_key
from revagent.store.alert_queue import AlertQueue, QueuedAlert
from tests.alerts_runtime.conftest import T0, eventually


def event(alert_id: str = "w_1", occurrence: str = "upper:g1", kind: AlertKind = AlertKind.WATCHER) -> AlertEvent:
    return AlertEvent(alert_id=alert_id, kind=kind, trigger_key=trigger_key(alert_id, occurrence),
                      fired_at=T0, price=Decimal("110"), context={"market": "BTC", "slot": "upper"})


def queue_of(session: Session, **kw: Any) -> AlertQueue:
    return AlertQueue(session.store.redis, session.store.keys, **kw)


async def statuses(sub: Any, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        sig = await asyncio.wait_for(sub.get(), 5)
        out.append((sig.status, sig.trigger_key))
    return out


async def test_the_default_handler_records_a_summary_and_signals(session: Session) -> None:
    q = queue_of(session)
    await q.ensure_groups()
    sub = session.bus.subscribe(AlertSignal)
    runner = AlertRunner(q, session.bus, block_ms=50)
    session.tasks.spawn("t:runner", runner.run())
    await q.enqueue(event())
    assert await statuses(sub, 2) == [("started", "w_1#upper:g1"), ("finished", "w_1#upper:g1")]
    [h] = await q.history()
    assert h["status"] == "finished" and h["extra"]["thread_id"] == "alert:w_1"
    assert h["extra"]["summary"].startswith("watcher BTC upper at 110")
    assert await q.pending() == [] and await q.running() == {}


async def test_a_failing_turn_is_retried_with_backoff_then_parked_and_can_be_retried(session: Session) -> None:
    q = queue_of(session, max_attempts=2, backoff_seconds=0.05)
    await q.ensure_groups()
    attempts: list[int] = []
    healthy = asyncio.Event()

    async def handler(item: QueuedAlert) -> TurnOutcome:
        attempts.append(item.attempt)
        if not healthy.is_set():
            raise RuntimeError("model unreachable")
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="ok now")

    sub = session.bus.subscribe(AlertSignal)
    runner = AlertRunner(q, session.bus, handler, block_ms=20)
    session.tasks.spawn("t:runner", runner.run())
    await q.enqueue(event())
    got = await statuses(sub, 4)
    assert [s for s, _ in got] == ["started", "retrying", "started", "failed"]
    assert attempts == [1, 2]
    failures = await q.failures()
    assert "RuntimeError: model unreachable" in failures["w_1#upper:g1"]["error"]
    healthy.set()
    assert await q.retry("w_1#upper:g1")
    assert [s for s, _ in await statuses(sub, 2)] == ["started", "finished"]
    assert await q.failures() == {}
    assert [h["status"] for h in await q.history()] == ["finished", "failed"]


async def test_concurrency_limit_and_one_turn_per_thread(session: Session) -> None:
    q = queue_of(session)
    await q.ensure_groups()
    running: dict[str, int] = {}
    peak = {"all": 0, "same_thread": 0}
    release = asyncio.Event()

    async def handler(item: QueuedAlert) -> TurnOutcome:
        thread = thread_id_for(item.event)
        running[thread] = running.get(thread, 0) + 1
        peak["all"] = max(peak["all"], sum(running.values()))
        peak["same_thread"] = max(peak["same_thread"], running[thread])
        await release.wait()
        running[thread] -= 1
        return TurnOutcome(thread_id=thread)

    runner = AlertRunner(q, session.bus, handler, concurrency=2, block_ms=20)
    session.tasks.spawn("t:runner", runner.run())
    for ev in (event("w_1", "upper:g1"), event("w_1", "upper:g2"), event("w_2", "lower:g1"),
               event("w_3", "lower:g1")):
        await q.enqueue(ev)
    await asyncio.sleep(0.3)
    assert peak["all"] <= 2 and peak["same_thread"] == 1
    release.set()
    await eventually(lambda: _count_history(q, 4))
    assert peak == {"all": 2, "same_thread": 1}


async def _count_history(q: AlertQueue, n: int) -> bool:
    return len(await q.history()) == n


async def test_drain_lets_the_running_turn_finish_and_takes_nothing_new(session: Session) -> None:
    q = queue_of(session)
    await q.ensure_groups()
    started = asyncio.Event()

    async def handler(item: QueuedAlert) -> TurnOutcome:
        started.set()
        await asyncio.sleep(0.3)
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="done")

    runner = AlertRunner(q, session.bus, handler, block_ms=20)
    task = session.tasks.spawn("t:runner", runner.run())
    await q.enqueue(event("w_1"))
    await asyncio.wait_for(started.wait(), 5)
    await q.enqueue(event("w_2"))
    assert await runner.drain(timeout=5)
    await asyncio.wait_for(task, 5)
    assert [h["trigger_key"] for h in await q.history()] == ["w_1#upper:g1"]
    assert [p.event.trigger_key for p in await q.pending()] == ["w_2#upper:g1"]


async def test_an_interrupted_turn_is_redelivered_and_resumed(session: Session) -> None:
    q = queue_of(session)
    await q.ensure_groups()
    entered = asyncio.Event()

    async def stuck(item: QueuedAlert) -> TurnOutcome:
        entered.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    runner = AlertRunner(q, session.bus, stuck, block_ms=20)
    task = asyncio.get_running_loop().create_task(runner.run())
    await q.enqueue(event())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()  # the process stops mid-turn: nothing is acknowledged
    await asyncio.gather(task, return_exceptions=True)
    assert list(await q.running()) == ["w_1#upper:g1"]
    seen: list[bool] = []

    async def resume(item: QueuedAlert) -> TurnOutcome:
        seen.append(item.redelivered)
        return await LoggingHandler()(item)

    fresh = AlertRunner(queue_of(session), session.bus, resume, block_ms=20)  # a restarted owner
    session.tasks.spawn("t:runner2", fresh.run())
    await eventually(lambda: _count_history(q, 1))
    assert seen == [True]
    assert fresh.stats.redelivered == 1 and await q.running() == {}


async def test_time_passes_between_retries(session: Session) -> None:
    q = queue_of(session, max_attempts=3, backoff_seconds=0.2)
    await q.ensure_groups()
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def handler(item: QueuedAlert) -> TurnOutcome:
        times.append(loop.time())
        return TurnOutcome(thread_id="x", ok=False, error="nope")

    session.tasks.spawn("t:runner", AlertRunner(q, session.bus, handler, block_ms=20).run())
    await q.enqueue(event())
    await eventually(lambda: _failed(q), timeout=10)
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 - 0.05  # exponential backoff
    assert timedelta(seconds=gaps[1]) > timedelta(seconds=gaps[0])


async def _failed(q: AlertQueue) -> bool:
    return bool(await q.failures())
