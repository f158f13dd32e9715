"""Request weight budget: Hyperliquid allows 1200 weight per minute per IP.

Weights (Hyperliquid's own accounting): an `/exchange` action weighs `1 + floor(n / 40)` for a
batch of n orders/cancels/modifies; `/info` requests `l2Book`, `allMids`, `clearinghouseState`,
`orderStatus`, `spotClearinghouseState` and `exchangeStatus` weigh 2, `userRole` 60, the rest 20.

`RateBudget` is the seam: the bridge `acquire`s before every HTTP request and reports every 429
with `rate_limited`, which slows down every user of the same budget. `LocalRateBudget` is the
in-process implementation (a sliding one-minute window); a Redis-backed one shared by all sessions
on a host lives in `store/` and implements the same protocol. `UnlimitedRateBudget` never waits
and only counts (a venue that is not rate-limited: the local paper venue).

Every request names its lane (`Lane`): `protect` (stops, exits, cancels: reduce-only actions),
`trade` (entries, leverage), `read` (`/info`). Protection never waits behind the other lanes: it
does not queue behind their waiters, a 429 answered to another lane does not pause it, the
capacity shrink after a 429 does not apply to it, and budgets may keep headroom that only higher
lanes can spend.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, runtime_checkable

HYPERLIQUID_WEIGHT_PER_MINUTE = 1200

Lane = Literal["protect", "trade", "read"]
LANES: tuple[Lane, ...] = ("protect", "trade", "read")  # highest priority first

_LIGHT_INFO = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
_HEAVY_INFO = {"userRole": 60}


def info_weight(request_type: str) -> int:
    """Weight of one `/info` request of `request_type`."""
    if request_type in _LIGHT_INFO:
        return 2
    return _HEAVY_INFO.get(request_type, 20)


def action_weight(batch_len: int) -> int:
    """Weight of one `/exchange` action carrying `batch_len` orders, cancels or modifies (1 for none)."""
    return 1 + max(0, batch_len) // 40


@runtime_checkable
class RateBudget(Protocol):
    """A shared budget of request weight. Both methods may wait; neither raises on a busy budget."""

    async def acquire(self, weight: int, lane: Lane = "read") -> None:
        """Wait until `weight` fits in the budget (for `lane`), then spend it."""
        ...

    async def rate_limited(self, retry_after_s: float | None, lane: Lane = "read") -> None:
        """The exchange answered 429 to a request of `lane`: pause the users of this budget (every lane
        for a `protect` request, the others for the others) and shrink it for a while."""
        ...


class UnlimitedRateBudget:
    """No budget (a venue that is not rate-limited): never waits; counts the weight spent per lane."""

    def __init__(self) -> None:
        self.spent_by_lane: dict[str, int] = dict.fromkeys(LANES, 0)
        self.waited_s = 0.0
        self.rate_limited_count = 0

    @property
    def spent_total(self) -> int:
        return sum(self.spent_by_lane.values())

    async def acquire(self, weight: int, lane: Lane = "read") -> None:
        self.spent_by_lane[lane] += max(1, weight)

    async def rate_limited(self, retry_after_s: float | None, lane: Lane = "read") -> None:
        del retry_after_s, lane
        self.rate_limited_count += 1  # the transport's own backoff still spaces the retries


class LocalRateBudget:
    """A sliding-window weight budget for one process.

    After a 429 every acquirer waits `retry_after_s` (or an exponential pause from `pause_base_s`
    up to `pause_max_s` for consecutive 429s) and the budget runs at half its capacity (down to a tenth after repeated
    429s) until `recovery_s` pass without one. `clock` and `sleep` are injectable for tests.

    Lanes: each lane queues first come, first served on its own, so a stop never waits behind a read
    waiting for the window; `headroom` (weight per lane) is the part of the window only higher lanes
    may spend; the `protect` lane ignores the pause of a 429 answered to another lane and the shrink.
    """

    def __init__(
        self,
        capacity: int = HYPERLIQUID_WEIGHT_PER_MINUTE,
        *,
        window_s: float = 60.0,
        recovery_s: float = 60.0,
        pause_base_s: float = 1.0,
        pause_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        headroom: dict[Lane, int] | None = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._window_s = window_s
        self._recovery_s = recovery_s
        self._pause_base_s = pause_base_s
        self._pause_max_s = pause_max_s
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[tuple[float, int]] = deque()
        self._spent_total = 0
        self._paused_until = 0.0  # every lane but `protect`
        self._paused_all = 0.0  # every lane (a 429 answered to a protective request)
        self._headroom: dict[Lane, int] = dict(headroom or {})
        self._locks: dict[Lane, asyncio.Lock] = {lane: asyncio.Lock() for lane in LANES}
        self.spent_by_lane: dict[str, int] = dict.fromkeys(LANES, 0)
        self._factor = 1.0
        self._last_429 = -1e18
        self._consecutive_429 = 0
        self.waited_s = 0.0
        self.rate_limited_count = 0

    @property
    def effective_capacity(self) -> int:
        """The weight the window allows right now (less than `capacity` while recovering from a 429)."""
        self._recover()
        return max(1, int(self._capacity * self._factor))

    @property
    def spent(self) -> int:
        """Weight spent inside the current window."""
        self._prune(self._clock())
        return self._spent_total

    def _ceiling(self, lane: Lane) -> int:
        if lane == "protect":
            return self._capacity
        return max(1, self.effective_capacity - self._headroom.get(lane, 0))

    async def acquire(self, weight: int, lane: Lane = "read") -> None:
        weight = max(1, min(weight, self._capacity))
        async with self._locks[lane]:  # first come, first served within the lane
            while True:
                now = self._clock()
                paused = self._paused_all if lane == "protect" else max(self._paused_all, self._paused_until)
                if now < paused:
                    await self._wait(paused - now)
                    continue
                self._prune(now)
                allowed = self._ceiling(lane)
                if self._spent_total + min(weight, allowed) <= allowed:
                    self._spent.append((now, weight))
                    self._spent_total += weight
                    self.spent_by_lane[lane] += weight
                    return
                oldest = self._spent[0][0] if self._spent else now
                await self._wait(max(0.001, oldest + self._window_s - now))

    async def rate_limited(self, retry_after_s: float | None, lane: Lane = "read") -> None:
        now = self._clock()
        self.rate_limited_count += 1
        self._consecutive_429 = self._consecutive_429 + 1 if now - self._last_429 < self._recovery_s else 1
        self._last_429 = now
        backoff = self._pause_base_s * 2.0 ** (self._consecutive_429 - 1)
        pause = retry_after_s if retry_after_s is not None else min(self._pause_max_s, backoff)
        self._paused_until = max(self._paused_until, now + pause)
        if lane == "protect":
            self._paused_all = max(self._paused_all, now + pause)
        self._factor = max(0.1, 0.5**self._consecutive_429)

    async def _wait(self, seconds: float) -> None:
        self.waited_s += seconds
        await self._sleep(seconds)

    def _prune(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self._window_s:
            _, weight = self._spent.popleft()
            self._spent_total -= weight

    def _recover(self) -> None:
        if self._factor < 1.0 and self._clock() - self._last_429 >= self._recovery_s:
            self._factor = 1.0
            self._consecutive_429 = 0
