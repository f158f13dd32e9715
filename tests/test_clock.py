"""Issue 19.1: the market clock follows the simulator's manual clock; sleeps end in market time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from revagent.clock import WALL, MarketClock
from revagent.exchange.sim.clock import MarketClock as SimClock

pytestmark = pytest.mark.timeout(20)
START = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)


async def test_a_sleep_on_market_time_ends_when_market_time_passed_not_wall_time() -> None:
    sim = SimClock(manual=True, start_ms=START)
    clock = MarketClock(sim.now_ms)
    assert clock.now() == datetime(2026, 1, 5, tzinfo=UTC)
    sleeper = asyncio.ensure_future(clock.sleep(3600))
    fired: list[datetime] = []
    clock.call_at(clock.now() + timedelta(minutes=30), lambda: fired.append(clock.now()))
    await asyncio.sleep(0.05)  # wall time passes: nothing is due in market time
    assert not sleeper.done() and fired == [] and clock.next_due_ms() == START + 30 * 60_000
    sim.advance(30 * 60_000)
    assert clock.advanced() == 1 and fired == [datetime(2026, 1, 5, 0, 30, tzinfo=UTC)]
    await asyncio.sleep(0)
    assert not sleeper.done()
    sim.advance(30 * 60_000)
    clock.advanced()
    await asyncio.wait_for(sleeper, 1)
    assert clock.monotonic() == START / 1000 + 3600


async def test_a_cancelled_timer_never_runs_and_the_wall_clock_is_the_computers() -> None:
    sim = SimClock(manual=True, start_ms=START)
    clock = MarketClock(sim.now_ms)
    ran: list[int] = []
    clock.call_at(clock.now() + timedelta(seconds=1), lambda: ran.append(1)).cancel()
    sim.advance(5000)
    assert clock.advanced() == 0 and ran == [] and clock.next_due_ms() is None
    assert abs((WALL.now() - datetime.now(UTC)).total_seconds()) < 1
    done: list[int] = []
    WALL.call_at(WALL.now(), lambda: done.append(1))
    await WALL.sleep(0.01)
    assert done == [1]
