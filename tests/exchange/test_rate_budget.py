"""The weight budget: Hyperliquid's weights, a sliding one-minute window, and slowing down after 429s."""

from __future__ import annotations

import asyncio

import pytest

from revagent.exchange.hyperliquid.rate_budget import (
    LocalRateBudget,
    RateBudget,
    UnlimitedRateBudget,
    action_weight,
    info_weight,
)


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make(capacity: int = 100) -> tuple[LocalRateBudget, FakeTime]:
    t = FakeTime()
    return LocalRateBudget(capacity, clock=t.clock, sleep=t.sleep), t


def test_weights() -> None:
    assert [action_weight(n) for n in (0, 1, 39, 40, 79, 80)] == [1, 1, 1, 2, 2, 3]
    assert info_weight("l2Book") == info_weight("allMids") == info_weight("clearinghouseState") == 2
    assert info_weight("orderStatus") == 2
    assert info_weight("userRole") == 60
    assert info_weight("userFills") == info_weight("meta") == 20


def test_local_budget_is_a_rate_budget() -> None:
    assert isinstance(LocalRateBudget(), RateBudget)


async def test_within_budget_no_wait() -> None:
    budget, t = make(100)
    for _ in range(5):
        await budget.acquire(20)
    assert t.sleeps == [] and budget.spent == 100


async def test_over_budget_waits_for_the_window() -> None:
    budget, t = make(100)
    await budget.acquire(20)
    t.now = 5.0
    for _ in range(4):
        await budget.acquire(20)
    t.now = 10.0
    await budget.acquire(20)  # waits until the first spend leaves the 60 s window
    assert t.now == pytest.approx(60.0)
    assert budget.spent == 20 * 5  # four old ones left + the new one


async def test_a_429_pauses_and_halves_the_budget_until_recovery() -> None:
    budget, t = make(100)
    await budget.rate_limited(None)
    assert budget.effective_capacity == 50
    await budget.acquire(1)
    assert t.now == pytest.approx(1.0)  # paused for 1 s
    await budget.rate_limited(None)
    assert budget.effective_capacity == 25
    await budget.acquire(1)
    assert t.now == pytest.approx(1.0 + 2.0)  # consecutive 429s pause longer
    await budget.rate_limited(7.5)  # the server's Retry-After wins
    await budget.acquire(1)
    assert t.now == pytest.approx(3.0 + 7.5)
    t.now += 61
    assert budget.effective_capacity == 100
    assert budget.rate_limited_count == 3


async def test_oversized_weight_still_passes_on_an_empty_window() -> None:
    budget, t = make(10)
    await budget.acquire(60)
    assert t.sleeps == []


async def test_concurrent_acquirers_never_exceed_the_window() -> None:
    budget, t = make(100)
    times: list[float] = []

    async def one() -> None:
        await budget.acquire(20)
        times.append(t.now)

    await asyncio.gather(*(one() for _ in range(12)))
    for start in times:
        in_window = [x for x in times if start <= x < start + 60]
        assert len(in_window) * 20 <= 100


# ---------------------------------------------------------------------------------- lanes (issue 12.5)


async def test_a_stop_is_not_delayed_by_a_queue_of_reads_waiting_for_the_window() -> None:
    budget, t = make(100)
    await budget.acquire(100)  # the window is full
    order: list[str] = []

    async def read(i: int) -> None:
        await budget.acquire(20)
        order.append(f"read{i}")

    granted: list[float] = []

    async def stop() -> None:
        await budget.acquire(1, "protect")
        order.append("stop")
        granted.append(t.now)

    reads = [asyncio.create_task(read(i)) for i in range(5)]
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop())
    await asyncio.gather(*reads, stopper)
    # the first read and the stop both went the moment the window freed; the stop never queued behind the
    # other four (a lane of reads waits first come, first served, 60 s more for each)
    assert order[:2] in (["read0", "stop"], ["stop", "read0"]), order
    assert granted == [pytest.approx(60.0)]


async def test_a_read_429_pauses_reads_but_not_protection() -> None:
    budget, t = make(100)
    await budget.rate_limited(10.0)  # answered to a read
    await budget.acquire(1, "protect")
    assert t.now == 0.0  # protection went at once
    await budget.acquire(1)
    assert t.now == pytest.approx(10.0)  # the read waited the pause out
    await budget.rate_limited(5.0, "protect")  # the exchange refused a stop: everyone waits
    await budget.acquire(1, "protect")
    assert t.now == pytest.approx(15.0)


async def test_headroom_is_left_for_protection() -> None:
    t = FakeTime()
    budget = LocalRateBudget(100, clock=t.clock, sleep=t.sleep, headroom={"read": 20, "trade": 5})
    for _ in range(4):
        await budget.acquire(20)
    assert t.sleeps == []
    await budget.acquire(15, "trade")  # trades may use the reads' headroom, not their own
    await budget.acquire(5, "protect")  # protection spends the last of it
    assert t.sleeps == [] and budget.spent == 100
    assert budget.spent_by_lane == {"protect": 5, "trade": 15, "read": 80}


async def test_the_unlimited_budget_never_waits_and_counts() -> None:
    budget = UnlimitedRateBudget()
    assert isinstance(budget, RateBudget)
    for _ in range(1000):
        await budget.acquire(20)
    await budget.acquire(1, "protect")
    assert budget.spent_total == 20_001 and budget.waited_s == 0
