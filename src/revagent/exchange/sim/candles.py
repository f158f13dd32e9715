"""Candles aggregated from the feed (and traded volume): 1-minute bars kept per market, coarser on demand."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from revagent.exchange.sim.numbers import fmt

MINUTE = 60_000
Bar = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int]  # start, open, high, low, close, volume, n
INTERVALS: dict[str, int] = {
    "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE,
    "1h": 60 * MINUTE, "2h": 120 * MINUTE, "4h": 240 * MINUTE, "8h": 480 * MINUTE, "12h": 720 * MINUTE,
    "1d": 1440 * MINUTE, "3d": 3 * 1440 * MINUTE, "1w": 7 * 1440 * MINUTE, "1M": 30 * 1440 * MINUTE,
}
KEEP_MINUTES = 7 * 1440
MAX_CANDLES = 5000


class CandleSeries:
    """1-minute OHLCV bars of one market, the last week. Each bar is [open, high, low, close, volume, trades]."""

    def __init__(self, coin: str) -> None:
        self.coin = coin
        self._bars: OrderedDict[int, list[Any]] = OrderedDict()
        self.pending_history: Callable[[], list[Bar]] | None = None  # built on first read (start-up is cheap)

    def update(self, px: Decimal, time_ms: int, volume: Decimal = Decimal(0), trades: int = 0) -> None:
        t = time_ms - time_ms % MINUTE
        bar = self._bars.get(t)
        if bar is None:
            last = next(reversed(self._bars.values()))[3] if self._bars else px
            if self._bars and t < next(reversed(self._bars)):
                return  # never rewrite history
            bar = self._bars[t] = [last, max(last, px), min(last, px), px, Decimal(0), 0]
            while len(self._bars) > KEEP_MINUTES:
                self._bars.popitem(last=False)
        bar[1] = max(bar[1], px)
        bar[2] = min(bar[2], px)
        bar[3] = px
        bar[4] += volume
        bar[5] += trades

    def _materialize(self) -> None:
        if self.pending_history is not None:
            make, self.pending_history = self.pending_history, None
            self.backfill(make())

    def backfill(self, bars: list[Bar]) -> None:
        """Seed history before the first live bar: (minute start, open, high, low, close, volume, trades)."""
        existing = dict(self._bars)
        self._bars.clear()
        for t, o, h, low, c, v, n in sorted(bars):
            if t not in existing:
                self._bars[t] = [o, h, low, c, v, n]
        self._bars.update(existing)
        while len(self._bars) > KEEP_MINUTES:
            self._bars.popitem(last=False)

    def snapshot(self, interval: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Bars of `interval` whose open time lies in [start_ms, end_ms], oldest first, at most 5000."""
        self._materialize()
        size = INTERVALS[interval]
        out: dict[int, list[Any]] = {}
        for t, bar in self._bars.items():
            bucket = _bucket(t, size)
            if bucket + size <= start_ms or bucket > end_ms:
                continue
            agg = out.get(bucket)
            if agg is None:
                out[bucket] = list(bar)
            else:
                agg[1] = max(agg[1], bar[1])
                agg[2] = min(agg[2], bar[2])
                agg[3] = bar[3]
                agg[4] += bar[4]
                agg[5] += bar[5]
        rows = [self._wire(t, size, interval, bar) for t, bar in sorted(out.items())]
        return rows[-MAX_CANDLES:]

    def current(self, interval: str, now_ms: int) -> dict[str, Any] | None:
        size = INTERVALS[interval]
        start = _bucket(now_ms, size)
        rows = self.snapshot(interval, start, now_ms)
        return rows[-1] if rows else None

    def _wire(self, t: int, size: int, interval: str, bar: list[Any]) -> dict[str, Any]:
        return {"t": t, "T": t + size - 1, "s": self.coin, "i": interval, "o": fmt(bar[0]), "c": fmt(bar[3]),
                "h": fmt(bar[1]), "l": fmt(bar[2]), "v": fmt(bar[4]), "n": bar[5]}


def _bucket(t: int, size: int) -> int:
    return t - t % size
