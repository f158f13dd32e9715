"""The account panel's equity line: the sync loop's one-minute equity points from the ledger (the
same series the drawdown state is sampled into), with the current equity as the newest point, so
the sparkline shows the last hours even right after the TUI starts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from revagent.models import utc_now
from revagent.store.ledger import LedgerStore

log = logging.getLogger(__name__)


class EquityHistory:
    """`await points(current)` -> equity oldest first (USD): up to `minutes - 1` minute points, then
    `current`. The ledger is re-read at most every `refresh_s` seconds (a snapshot comes every few)."""

    def __init__(self, ledger: LedgerStore, *, minutes: int = 240, refresh_s: float = 60.0,
                 clock: Callable[[], datetime] = utc_now, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.minutes = minutes
        self.refresh_s = refresh_s
        self.clock = clock
        self.monotonic = monotonic
        self._points: list[Decimal] = []
        self._read_at = float("-inf")

    async def points(self, current: Decimal | None) -> tuple[Decimal, ...]:
        if self.monotonic() - self._read_at >= self.refresh_s:
            self._read_at = self.monotonic()
            try:
                since = self.clock() - timedelta(minutes=self.minutes)
                self._points = [v for _, v in await self.ledger.equity_history(since=since)]
            except Exception as exc:  # a Redis hiccup: keep what was read before
                log.warning("equity history not read: %s", exc)
        out = self._points[-(self.minutes - 1):] if current is not None else self._points[-self.minutes:]
        return (*out, current) if current is not None else tuple(out)
