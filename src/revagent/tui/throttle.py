"""Coalescing of price ticks: keep the latest mid per market, hand them over in one batch.

The bus may deliver a thousand `MidsUpdated` a second; the UI repaints at most every flush
interval with the latest value of each market, so a tick storm never starves input or frames.
Plain Python, no Textual, O(markets in the message) per tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal


class TickCoalescer:
    """Latest mid per market since the last `take()`. Only the UI's event loop calls it."""

    __slots__ = ("_pending", "received")

    def __init__(self) -> None:
        self._pending: dict[str, Decimal] = {}
        self.received = 0

    def add(self, mids: Mapping[str, Decimal]) -> None:
        """Record a tick message (later values replace earlier ones per market)."""
        self._pending.update(mids)
        self.received += 1

    def take(self) -> dict[str, Decimal]:
        """The markets changed since the last call, each with its latest mid; empties the buffer."""
        pending, self._pending = self._pending, {}
        return pending

    def __len__(self) -> int:
        return len(self._pending)
