"""The runtime's one clock (issue 19.1): what every part reads time from and sleeps on.

A live session runs on `WallClock` (the computer's clock); a replay (`revagent replay`) runs on a
`MarketClock` that follows the simulator's manual market time: it moves only when the replay driver
advances the simulator, and a `sleep()` on it ends when market time has passed, not wall time.

This module is the only place in `src/` that reads the wall clock directly (tests/test_clock_reads.py
checks it, with an allowlist of the places not yet converted that may only shrink).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Time as the runtime sees it: `now()` (aware UTC), `monotonic()` (seconds, never goes back),
    `sleep(seconds)`, and `call_at(when, callback)`, a callback run once `now()` reaches `when`."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: datetime, callback: Callable[[], object]) -> Cancellable: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class WallClock:
    """The computer's clock (a live session)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: datetime, callback: Callable[[], object]) -> Cancellable:
        delay = max(0.0, (when - self.now()).total_seconds())
        return asyncio.get_running_loop().call_later(delay, callback)


WALL = WallClock()


class _Timer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class MarketClock:
    """Market time read from `now_ms` (the simulator's manual clock, milliseconds since the epoch).

    Nothing here moves time: the driver advances the simulator, then calls `advanced()`, which runs
    the callbacks and wakes the sleepers that are due. `monotonic()` is market seconds."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._seq = itertools.count()
        self._timers: list[tuple[int, int, _Timer]] = []

    def now_ms(self) -> int:
        return self._now_ms()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now_ms() / 1000, UTC)

    def monotonic(self) -> float:
        return self._now_ms() / 1000

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        done = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        timer = self._at_ms(self._now_ms() + int(seconds * 1000), wake)
        try:
            await done
        finally:
            timer.cancel()

    def call_at(self, when: datetime, callback: Callable[[], object]) -> Cancellable:
        return self._at_ms(int(when.timestamp() * 1000), callback)

    def _at_ms(self, due_ms: int, callback: Callable[[], object]) -> _Timer:
        timer = _Timer(callback)
        heapq.heappush(self._timers, (due_ms, next(self._seq), timer))
        return timer

    def next_due_ms(self) -> int | None:
        """When the earliest pending timer is due (None: none is): the driver may jump there."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advanced(self) -> int:
        """Run every callback that market time has reached; returns how many ran."""
        now = self._now_ms()
        ran = 0
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()
                ran += 1
        return ran
