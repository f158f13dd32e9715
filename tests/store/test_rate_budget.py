"""The host-wide request budget in Redis: shared by sessions, slowed by a 429."""

from __future__ import annotations

import asyncio
import time

from revagent.exchange.hyperliquid.rate_budget import RateBudget, UnlimitedRateBudget
from revagent.store.connection import connect
from revagent.store.rate_budget import RedisRateBudget, budget_for


async def test_two_sessions_share_one_budget(redis_url: str) -> None:
    r1, r2 = await connect(redis_url), await connect(redis_url)
    try:
        a = RedisRateBudget(r1, capacity=100, scope="test-host")
        b = RedisRateBudget(r2, capacity=100, scope="test-host")
        assert isinstance(a, RateBudget)
        await a.acquire(60)
        await b.acquire(40)
        assert await a.spent() == 100
        # The budget is full for both: the next acquire waits for the window to move.
        with_timeout = asyncio.wait_for(b.acquire(20), timeout=0.5)
        try:
            await with_timeout
            raised = False
        except TimeoutError:
            raised = True
        assert raised, "a full shared budget must make the second session wait"
    finally:
        await r1.aclose()
        await r2.aclose()


async def test_a_429_pauses_every_session_and_halves_capacity(redis_url: str) -> None:
    r = await connect(redis_url)
    try:
        a = RedisRateBudget(r, capacity=100, scope="test-host-2")
        b = RedisRateBudget(r, capacity=100, scope="test-host-2")
        await a.rate_limited(0.3)
        started = time.monotonic()
        await b.acquire(1)
        assert time.monotonic() - started >= 0.25
        await b.acquire(49)  # 50 of the halved capacity of 50
        try:
            await asyncio.wait_for(b.acquire(1), timeout=0.3)
            full = False
        except TimeoutError:
            full = True
        assert full
    finally:
        await r.aclose()


async def test_requests_cost_no_redis_round_trip_each(redis_url: str) -> None:
    r = await connect(redis_url)
    try:
        budget = RedisRateBudget(r, capacity=1200, scope="test-host-chunks", chunk=40)
        for _ in range(40):
            await budget.acquire(2)  # 80 weight in 40 reads
        assert budget.round_trips == 2  # two chunks of 40, not 40 round trips
        assert await budget.spent() == 80
        await budget.acquire(1, "protect")
        assert budget.round_trips == 3
        assert await budget.release() == 39  # what was reserved and not spent goes back
        assert await budget.spent() == 81
    finally:
        await r.aclose()


async def test_a_stop_is_not_delayed_by_reads_queued_on_a_full_shared_budget(redis_url: str) -> None:
    r = await connect(redis_url)
    try:
        other = RedisRateBudget(r, capacity=100, scope="test-host-lanes", chunk=1)
        ours = RedisRateBudget(r, capacity=100, scope="test-host-lanes", chunk=1, headroom={"read": 10})
        await other.acquire(90)  # another session filled the reads' share of the window
        reads = [asyncio.create_task(ours.acquire(20)) for _ in range(5)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await asyncio.wait_for(ours.acquire(1, "protect"), timeout=1.0)
        assert time.monotonic() - started < 0.5
        await ours.rate_limited(30.0)  # a read was answered 429: reads pause, protection does not
        await asyncio.wait_for(ours.acquire(1, "protect"), timeout=1.0)
        assert not any(task.done() for task in reads)
        for task in reads:
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
    finally:
        await r.aclose()


async def test_the_paper_venue_has_no_budget_unless_configured(redis_url: str) -> None:
    r = await connect(redis_url)
    try:
        paper = budget_for(r, network="paper", base_url="http://127.0.0.1:9", weight_per_minute=1200)
        assert isinstance(paper, UnlimitedRateBudget)
        for _ in range(200):
            await paper.acquire(184)  # ten times more than a minute's worth, at once
        limited = budget_for(r, network="paper", base_url="http://127.0.0.1:9", weight_per_minute=1200,
                             paper_weight_per_minute=600)
        assert isinstance(limited, RedisRateBudget) and limited.capacity == 600
        main = budget_for(r, network="mainnet", base_url="https://api.hyperliquid.xyz", weight_per_minute=1200)
        test = budget_for(r, network="testnet", base_url="https://api.hyperliquid-testnet.xyz",
                          weight_per_minute=1200)
        assert isinstance(main, RedisRateBudget) and isinstance(test, RedisRateBudget)
        await main.acquire(100)
        assert await main.spent() == 100 and await test.spent() == 0  # one budget per upstream host
    finally:
        await r.aclose()


async def test_one_budget_per_egress_address(redis_url: str) -> None:
    """Hosts (or supervisors) that set one `[rate] egress` share one budget; another address has its own."""
    r = await connect(redis_url)
    try:
        url = "https://api.hyperliquid.xyz"
        here = budget_for(r, network="mainnet", base_url=url, weight_per_minute=1200, egress="203.0.113.7")
        there = budget_for(r, network="mainnet", base_url=url, weight_per_minute=1200, egress="203.0.113.7")
        other = budget_for(r, network="mainnet", base_url=url, weight_per_minute=1200, egress="198.51.100.2")
        default = budget_for(r, network="mainnet", base_url=url, weight_per_minute=1200)
        await here.acquire(100)
        await there.acquire(50)
        assert await here.spent() == 150 and await there.spent() == 150
        assert await other.spent() == 0 and await default.spent() == 0
    finally:
        await r.aclose()
