"""Fixtures for the alert runtime: a started Session (real Redis), a controllable clock, and helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from revagent.alerts.scheduling import SchedulerTimings
from revagent.config import load_config
from revagent.runtime.session import Session

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

FAST = SchedulerTimings(
    trade_refresh=timedelta(seconds=30),
    trade_refresh_min=timedelta(milliseconds=10),
    stop_grace=timedelta(0),
    health_grace=timedelta(milliseconds=100),
    stale_after=timedelta(milliseconds=100),
    max_sleep=timedelta(milliseconds=20),
)


class Clock:
    """A wall clock the test moves by hand (the scheduler asks it for `now`)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


@pytest.fixture
async def session(revagent_home: Path) -> AsyncIterator[Session]:
    cfg = load_config()
    s = Session(cfg, cfg.wallet(), role="daemon")
    await s.start(serve_commands=False)
    try:
        yield s
    finally:
        await s.stop("test finished")


@pytest.fixture
def clock() -> Clock:
    return Clock()
