"""The 1h ATR 14 of the snapshot's markets (watcher distances in ATR, the MARKETS line), from the
venue's candles, remembered per market for `max_age_s` (15 minutes: an hourly ATR barely moves), at
most `max_fetch` markets fetched per snapshot, each fetch bounded by `timeout_s`. A market whose
candles fail is left out (the snapshot then shows the distance in % only)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from revagent.engine.indicators import atr
from revagent.models import utc_now

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000


class AtrSource:
    def __init__(self, market: Any, *, clock: Callable[[], datetime] = utc_now, max_age_s: float = 900.0,
                 max_fetch: int = 8, timeout_s: float = 3.0, bars: int = 30) -> None:
        self.market = market
        self.clock = clock
        self.max_age_s = max_age_s
        self.max_fetch = max_fetch
        self.timeout_s = timeout_s
        self.bars = bars
        self._cache: dict[str, tuple[float, Decimal | None]] = {}

    async def _one(self, coin: str) -> Decimal | None:
        end = int(self.clock().timestamp() * 1000)
        candles = await asyncio.wait_for(self.market.candles(coin, "1h", end - HOUR_MS * self.bars, end),
                                         self.timeout_s)
        values = atr([float(c.high) for c in candles], [float(c.low) for c in candles],
                     [float(c.close) for c in candles], 14)
        last = values[-1] if values else None
        return None if last is None else Decimal(f"{last:.6g}")

    async def __call__(self, markets: Sequence[str]) -> dict[str, Decimal]:
        now = time.monotonic()
        stale = [m for m in markets if now - self._cache.get(m, (-1e18, None))[0] > self.max_age_s][:self.max_fetch]
        if stale:
            got = await asyncio.gather(*(self._one(m) for m in stale), return_exceptions=True)
            for m, value in zip(stale, got, strict=True):
                if isinstance(value, BaseException):
                    log.info("ATR of %s unavailable (%r)", m, value)
                    value = None
                self._cache[m] = (now, value)
        return {m: v for m in markets if (v := self._cache.get(m, (0.0, None))[1]) is not None}
