"""The market clock: wall time plus an offset (advanced by test controls), or a manual, deterministic clock.

Market time drives candles, funding, triggers and timestamps; nonces are always checked against wall time.
"""

from __future__ import annotations

import time


class MarketClock:
    """Milliseconds since the epoch. `manual=True` starts at `start_ms` and moves only through `advance`."""

    def __init__(self, *, manual: bool = False, start_ms: int | None = None) -> None:
        self.manual = manual
        wall = int(time.time() * 1000)
        self._manual_now = start_ms if start_ms is not None else wall
        self._offset = 0 if start_ms is None or manual else start_ms - wall

    def now_ms(self) -> int:
        if self.manual:
            return self._manual_now
        return int(time.time() * 1000) + self._offset

    def advance(self, ms: int) -> int:
        """Move market time forward by `ms` (>= 0); returns the new time."""
        if ms < 0:
            raise ValueError("the market clock never goes back")
        if self.manual:
            self._manual_now += ms
        else:
            self._offset += ms
        return self.now_ms()

    @property
    def offset_ms(self) -> int:
        return self._offset if not self.manual else self._manual_now - int(time.time() * 1000)

    def restore(self, now_ms: int) -> None:
        """After a restart: market time never goes back behind the persisted time."""
        if self.manual:
            self._manual_now = max(self._manual_now, now_ms)
        elif now_ms > self.now_ms():
            self._offset += now_ms - self.now_ms()


def wall_ms() -> int:
    return int(time.time() * 1000)
