"""The host-wide request budget in Redis: shared by sessions, slowed by a 429."""

from __future__ import annotations

import asyncio
import time

from revagent.exchange.hyperliquid.rate_budget import RateBudget
from revagent.store.connection import connect
from revagent.store.rate_budget import RedisRateBudget


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
