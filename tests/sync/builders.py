"""Test builders: fills and funding payments with average-cost closedPnl, as the exchange computes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from revagent.exchange.types import USER_FILLS, Fill, UserFunding, UserFundingDelta

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyperliquid-recorded"
Q6 = Decimal("0.000001")


def recorded_fills() -> list[Fill]:
    """The 500 recorded mainnet fills (newest first, as the exchange sent them)."""
    doc = json.loads((FIXTURES / "user_fills.json").read_text())
    fills: list[Fill] = USER_FILLS.validate_python(doc["response"])
    return fills


@dataclass
class Account:
    """Generates fills on one or more markets with Hyperliquid's average-cost closedPnl (6 decimals)."""

    time_ms: int = 1_700_000_000_000
    positions: dict[str, Decimal] = field(default_factory=dict)
    entry: dict[str, Decimal] = field(default_factory=dict)
    tid: int = 1
    oid: int = 100
    fee_rate: Decimal = Decimal("0.00035")
    with_tid: bool = True

    def trade(self, coin: str, size: str | Decimal, px: str | Decimal, *, dt_ms: int = 1000,
              cloid: str | None = None) -> Fill:
        """A fill of signed `size` (+ buy, - sell) at `px`."""
        size, px = Decimal(size), Decimal(px)
        self.time_ms += dt_ms
        start = self.positions.get(coin, Decimal(0))
        entry = self.entry.get(coin, Decimal(0))
        closing = min(abs(size), abs(start)) if start and (size > 0) != (start > 0) else Decimal(0)
        direction = 1 if start > 0 else -1
        closed_pnl = (direction * (px - entry) * closing).quantize(Q6, ROUND_HALF_EVEN)
        end = start + size
        if end == 0:
            self.entry[coin] = Decimal(0)
        elif start == 0 or (end > 0) != (start > 0):
            self.entry[coin] = px
        elif abs(end) > abs(start):
            self.entry[coin] = (entry * abs(start) + px * abs(size)) / abs(end)
        self.positions[coin] = end
        fee = (abs(size) * px * self.fee_rate).quantize(Q6, ROUND_HALF_EVEN)
        if start == 0:
            d = "Open Long" if size > 0 else "Open Short"
        elif closing and abs(size) > abs(start):
            d = "Long > Short" if start > 0 else "Short > Long"
        elif closing:
            d = "Close Long" if start > 0 else "Close Short"
        else:
            d = "Open Long" if size > 0 else "Open Short"
        self.tid += 1
        self.oid += 1
        return Fill(coin=coin, px=px, sz=abs(size), side="B" if size > 0 else "A", time=self.time_ms,
                    start_position=start, dir=d, closed_pnl=closed_pnl, hash="0x" + f"{self.tid:064x}",
                    oid=self.oid, crossed=True, fee=fee, tid=self.tid if self.with_tid else None, cloid=cloid)

    def funding(self, coin: str, usdc: str | Decimal, *, dt_ms: int = 1000) -> UserFunding:
        self.time_ms += dt_ms
        return UserFunding(time=self.time_ms, hash="0x" + "0" * 64,
                           delta=UserFundingDelta(coin=coin, usdc=Decimal(usdc),
                                                  szi=self.positions.get(coin, Decimal(0)),
                                                  funding_rate=Decimal("0.0000125")))
