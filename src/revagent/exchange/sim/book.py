"""One market's book: the synthetic liquidity around the mid, and users' resting orders in price-time priority.

The synthetic side is stateless (recomputed from the mid); users' orders are kept sorted best first.
When the market mirrors an upstream (live prices), the upstream's last L2 snapshot replaces the synthetic
levels: a paper order takes its displayed size, and what it took stays taken until the next snapshot
(`consume`). Queue position behind displayed size and impact beyond one snapshot are not modelled.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from revagent.exchange.sim.candles import CandleSeries
from revagent.exchange.sim.markets import MarketSpec
from revagent.exchange.sim.model import Order
from revagent.exchange.sim.numbers import ZERO, fmt, lot, round_to, tick_for

LEVELS = 20


@dataclass(slots=True)
class Market:
    """Live state of one market. `mid` sits on the tick grid and doubles as the mark price."""

    spec: MarketSpec
    oracle: Decimal
    mid: Decimal = ZERO
    tick: Decimal = Decimal(1)
    half_ticks: int = 1
    gap_ticks: int = 1
    liquidity: Decimal = Decimal(1)  # scale of the synthetic depth; 0 empties the synthetic book
    spread_override_ticks: int | None = None
    bids: list[Order] = field(default_factory=list)  # best (highest) first, then oldest
    asks: list[Order] = field(default_factory=list)  # best (lowest) first, then oldest
    triggers: list[Order] = field(default_factory=list)
    premium: Decimal = ZERO
    prev_day_px: Decimal = ZERO
    day_ntl_vlm: Decimal = ZERO
    day_base_vlm: Decimal = ZERO
    upstream_book: tuple[tuple[tuple[Decimal, Decimal], ...], tuple[tuple[Decimal, Decimal], ...]] | None = None
    consumed: dict[bool, dict[Decimal, Decimal]] = field(default_factory=lambda: {True: {}, False: {}})
    book_version: int = 0
    upstream_funding: Decimal | None = None  # the upstream's hourly funding rate (asset context)
    upstream_ctx: dict[str, Any] | None = None
    candles: CandleSeries = field(init=False)
    _synthetic_cache: dict[bool, tuple[Any, tuple[tuple[Decimal, Decimal], ...]]] = field(
        init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.candles = CandleSeries(self.spec.name)
        self.set_oracle(self.oracle)
        if self.prev_day_px == 0:
            self.prev_day_px = self.mid

    def set_oracle(self, px: Decimal) -> None:
        """Move the market to `px`: the mid snaps to the tick grid; spread and level gaps follow the price."""
        self.oracle = px
        self.tick = tick_for(px, self.spec.sz_decimals)
        self.mid = max(round_to(px, self.tick), self.tick * (self.half_ticks + 1))
        if self.spread_override_ticks is not None:
            self.half_ticks = self.spread_override_ticks
        else:
            half = float(self.mid) * self.spec.spread_bps / 2e4 / float(self.tick)
            self.half_ticks = max(1, round(half))
        self.gap_ticks = max(1, round(float(self.mid) * 1e-4 / float(self.tick)))

    # synthetic liquidity -------------------------------------------------------------------------------
    def synthetic(self, is_bid: bool) -> tuple[tuple[Decimal, Decimal], ...]:
        """Synthetic levels (px, sz) best first; sizes grow with distance from the mid. Cached per mid."""
        key = (is_bid, self.mid, self.liquidity, self.half_ticks, self.gap_ticks, self.book_version)
        cached = self._synthetic_cache.get(is_bid)
        if cached is not None and cached[0] == key:
            return cached[1]
        levels = self._synthetic(is_bid)
        self._synthetic_cache[is_bid] = (key, levels)
        return levels

    def set_upstream_book(self, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]) -> None:
        """A new upstream L2 snapshot (best first): it replaces the levels, and what paper orders took is back."""
        self.upstream_book = (tuple(bids), tuple(asks))
        self.consumed = {True: {}, False: {}}
        self.book_version += 1

    def consume(self, is_bid: bool, px: Decimal, qty: Decimal) -> None:
        """A paper order took `qty` at `px` of the upstream side `is_bid`: gone until the next snapshot."""
        if self.upstream_book is None:
            return
        side = self.consumed[is_bid]
        side[px] = side.get(px, ZERO) + qty
        self.book_version += 1

    def _synthetic(self, is_bid: bool) -> tuple[tuple[Decimal, Decimal], ...]:
        if self.upstream_book is not None:
            taken = self.consumed[is_bid]
            levels = self.upstream_book[0 if is_bid else 1]
            if not taken:
                return levels
            return tuple((px, sz - taken.get(px, ZERO)) for px, sz in levels if sz > taken.get(px, ZERO))
        if self.liquidity <= 0:
            return ()
        step = lot(self.spec.sz_decimals)
        sign = -1 if is_bid else 1
        out = []
        for i in range(LEVELS):
            px = self.mid + sign * (self.half_ticks + i * self.gap_ticks) * self.tick
            if px <= 0:
                break
            usd = Decimal(self.spec.level_usd) * (1 + Decimal(i) / 4) * self.liquidity
            sz = max(step, round_to(usd / px, step, up=False))
            out.append((px, sz))
        return tuple(out)

    def best_synthetic(self, is_bid: bool) -> Decimal | None:
        if self.upstream_book is not None:
            levels = self.synthetic(is_bid)
            return levels[0][0] if levels else None
        if self.liquidity <= 0:
            return None
        return self.mid + (-1 if is_bid else 1) * self.half_ticks * self.tick

    # users' resting orders --------------------------------------------------------------------------------
    def rest(self, order: Order) -> None:
        side = self.bids if order.is_buy else self.asks
        bisect.insort_right(side, order, key=_key)

    def remove(self, order: Order) -> bool:
        side = self.bids if order.is_buy else self.asks
        for i, o in enumerate(side):
            if o is order:
                del side[i]
                return True
        return False

    def bbo(self) -> tuple[Decimal | None, Decimal | None]:
        """Best bid and ask over synthetic liquidity and resting orders."""
        bid = self.best_synthetic(True)
        ask = self.best_synthetic(False)
        if self.bids and (bid is None or self.bids[0].limit_px > bid):
            bid = self.bids[0].limit_px
        if self.asks and (ask is None or self.asks[0].limit_px < ask):
            ask = self.asks[0].limit_px
        return bid, ask

    def l2_levels(self, depth: int = LEVELS) -> list[list[dict[str, Any]]]:
        """`levels` of `/info l2Book`: [bids, asks], each [{"px","sz","n"}] best first, at most `depth`."""
        sides = []
        for is_bid, users in ((True, self.bids), (False, self.asks)):
            agg: dict[Decimal, list[Any]] = {}
            for px, sz in self.synthetic(is_bid):
                agg[px] = [sz, 1]
            for o in users:
                cur = agg.setdefault(o.limit_px, [ZERO, 0])
                cur[0] += o.sz
                cur[1] += 1
            ordered = sorted(agg.items(), key=lambda kv: -kv[0] if is_bid else kv[0])[:depth]
            sides.append([{"px": fmt(px), "sz": fmt(sz), "n": n} for px, (sz, n) in ordered])
        return sides


def _key(order: Order) -> tuple[Decimal, int]:
    return (-order.limit_px if order.is_buy else order.limit_px, order.oid)
