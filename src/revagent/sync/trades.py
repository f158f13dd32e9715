"""The trade book: fills folded into trade lifecycles. Pure (no I/O, no clock).

A *trade* opens with the first fill of a position and closes when the position is flat again. A
fill that flips the position (long > short) closes one trade and opens the next with the rest of
its size (its fee is split between the two pro rata). Per trade:

- entry / exit VWAP (USD per coin), entry and exit quantity, peak size (coins);
- fees (USD paid, from the fills), funding (USD, + received, from the funding payments made while
  the trade was open);
- gross realized PnL: for a complete closed trade, recomputed from the VWAPs (`vwap_pnl`,
  `direction * (exit_notional - entry_notional)`), which equals the sum of the exchange's `closedPnl`
  (`closed_pnl`; average-cost accounting) up to the exchange's rounding (`PNL_ROUNDING_PER_FILL` per
  fill): then `pnl_source="vwap"`. When they disagree beyond rounding (real 2023 records do: their
  closedPnl does not always follow average cost), or the trade is open or incomplete, the exchange's
  sum is the truth: `pnl_source="exchange"`, and `vwap_pnl` shows the recomputation;
- net PnL = gross - fees + funding; R multiple = net / the risk the trade plan declared.

Data with holes (the recorded fixtures start in the middle of positions): a fill whose
`startPosition` is not where the previous fill left the position shows fills are missing. A trade
whose opening is not in the data, or that has a hole inside, is `complete=False` with the reason,
and its entry VWAP is None: the book never invents numbers.

Fills are ordered by time; fills of one market in the same millisecond are chained by their
`startPosition`. Adding a fill older than the last one seen on its market refolds that market.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from revagent.exchange.types import Fill, UserFunding
from revagent.models import OrderRecord, TradePlan
from revagent.store.ledger import fill_key, funding_key
from revagent.sync.fills import end_position, signed_size

_ZERO = Decimal(0)
_FEE_QUANTUM = Decimal("1e-12")  # a flip's fee split keeps sums exact
PNL_ROUNDING_PER_FILL = Decimal("0.00001")  # USD: the exchange rounds each fill's closedPnl


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


class PlanSummary(BaseModel):
    """The plan a trade was opened with (from the gateway's TradePlan)."""

    model_config = ConfigDict(frozen=True)

    stop_px: Decimal | None = None
    target_px: Decimal | None = None
    conviction: int | None = None
    risk_usd: Decimal | None = None
    origin: str | None = None
    rationale: str = ""
    thesis: str = ""
    invalidation: str = ""


class Trade(BaseModel):
    """One trade lifecycle (see the module docstring for the meaning of each figure). Sizes in coins,
    money in USD, times UTC."""

    model_config = ConfigDict(frozen=True)

    trade_id: str
    market: str
    side: Literal["long", "short"]
    status: Literal["open", "closed"]
    complete: bool
    incomplete_reason: str | None = None
    opened_at: datetime
    closed_at: datetime | None = None
    entry_qty: Decimal
    entry_vwap: Decimal | None
    exit_qty: Decimal
    exit_vwap: Decimal | None
    size: Decimal
    position: Decimal
    fees: Decimal
    funding: Decimal
    closed_pnl: Decimal
    vwap_pnl: Decimal | None = None
    gross_pnl: Decimal
    net_pnl: Decimal
    pnl_source: Literal["vwap", "exchange"]
    risk_usd: Decimal | None = None
    r_multiple: Decimal | None = None
    holding_s: float | None = None
    thread_id: str | None = None
    tool_call_id: str | None = None
    plan: PlanSummary | None = None
    fills: int


@dataclass
class _Building:
    trade_id: str
    market: str
    direction: int
    opened_ms: int
    complete: bool
    reason: str | None
    position: Decimal
    plan: TradePlan | None
    first: Fill
    entry_qty: Decimal = _ZERO
    entry_ntl: Decimal = _ZERO
    exit_qty: Decimal = _ZERO
    exit_ntl: Decimal = _ZERO
    closed_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    funding: Decimal = _ZERO
    peak: Decimal = _ZERO
    closed_ms: int | None = None
    fills: int = 0

    def incomplete(self, why: str) -> None:
        if self.complete:
            self.complete, self.reason = False, why

    def freeze(self) -> Trade:
        closed_ms = self.closed_ms
        closed = closed_ms is not None
        entry_vwap = self.entry_ntl / self.entry_qty if self.complete and self.entry_qty else None
        exit_vwap = self.exit_ntl / self.exit_qty if self.exit_qty else None
        vwap_pnl = self.direction * (self.exit_ntl - self.entry_ntl) if closed and self.complete else None
        source: Literal["vwap", "exchange"] = "exchange"
        gross = self.closed_pnl
        if vwap_pnl is not None and abs(vwap_pnl - self.closed_pnl) <= PNL_ROUNDING_PER_FILL * self.fills:
            gross, source = vwap_pnl, "vwap"
        net = gross - self.fees + self.funding
        plan = self.plan
        risk = plan.risk_usd if plan is not None and plan.risk_usd > 0 else None
        return Trade(
            trade_id=self.trade_id, market=self.market, side="long" if self.direction > 0 else "short",
            status="closed" if closed else "open", complete=self.complete, incomplete_reason=self.reason,
            opened_at=ms_to_dt(self.opened_ms), closed_at=ms_to_dt(closed_ms) if closed_ms is not None else None,
            entry_qty=self.entry_qty, entry_vwap=entry_vwap, exit_qty=self.exit_qty, exit_vwap=exit_vwap,
            size=self.peak, position=self.position, fees=self.fees, funding=self.funding,
            closed_pnl=self.closed_pnl, vwap_pnl=vwap_pnl, gross_pnl=gross, net_pnl=net, pnl_source=source,
            risk_usd=risk, r_multiple=(net / risk) if risk is not None and closed else None,
            holding_s=(self.closed_ms - self.opened_ms) / 1000 if self.closed_ms is not None else None,
            thread_id=plan.thread_id if plan else None, tool_call_id=plan.tool_call_id if plan else None,
            plan=PlanSummary(stop_px=plan.stop_px, target_px=plan.target_px, conviction=plan.conviction,
                             risk_usd=plan.risk_usd, origin=plan.origin, rationale=plan.rationale,
                             thesis=plan.thesis, invalidation=plan.invalidation)
            if plan else None,
            fills=self.fills)


@dataclass
class _Market:
    fills: list[tuple[int, int, Fill]] = field(default_factory=list)  # (time, seq, fill), time order
    trades: list[_Building] = field(default_factory=list)
    last_ms: int = -1


class TradeBook:
    """Fills in, trades out. Feed fills (any order, duplicates ignored by fill key) and funding
    payments; read `trades()`. `add_fills` returns the trades the new fills closed (for the risk
    state's losing streak and the plans' closing). Journal records name the trades the gateway opened
    (by the opening fill's cloid or oid) and plans describe them.
    """

    def __init__(self, plans: Sequence[TradePlan] = (), journal: Sequence[OrderRecord] = ()) -> None:
        self._markets: dict[str, _Market] = {}
        self._keys: set[str] = set()
        self._seq = 0
        self._funding: dict[str, UserFunding] = {}
        self._plans: dict[str, TradePlan] = {}
        self._by_order: dict[str | int, str] = {}
        self.set_plans(plans, journal)

    # ------------------------------------------------------------------------------------ plans
    def set_plans(self, plans: Iterable[TradePlan], journal: Iterable[OrderRecord] = ()) -> None:
        """Learn plans and journal records (call again when new ones appear; existing trades keep theirs
        unless they had none)."""
        for p in plans:
            self._plans[p.trade_id] = p
        for r in journal:
            if r.trade_id is None:
                continue
            self._by_order[r.cloid] = r.trade_id
            if r.oid is not None:
                self._by_order[r.oid] = r.trade_id
        for market in self._markets.values():
            for t in market.trades:
                if t.trade_id.startswith("x_") and t.complete:
                    trade_id, _ = self._identify(t.first, market)
                    if not trade_id.startswith("x_"):
                        t.trade_id = trade_id  # the journal record arrived after the fill
                if t.plan is None and t.trade_id in self._plans:
                    t.plan = self._plans[t.trade_id]

    def _identify(self, fill: Fill, market: _Market) -> tuple[str, TradePlan | None]:
        """The trade id of a trade opened by `fill`: the gateway's (through the journal record of the fill's
        order, by cloid or oid), else a deterministic id from the fill (`x_...`: opened outside revagent)."""
        claimed = {t.trade_id for t in market.trades}
        for ref in (fill.cloid, fill.oid):
            trade_id = self._by_order.get(ref) if ref is not None else None
            if trade_id is not None and trade_id not in claimed and not trade_id.startswith("untracked-"):
                return trade_id, self._plans.get(trade_id)
        return "x_" + hashlib.sha256(fill_key(fill).encode()).hexdigest()[:10], None

    def trade_ids(self) -> set[str]:
        """The ids of every trade in the book (cheap: nothing is frozen)."""
        return {t.trade_id for m in self._markets.values() for t in m.trades}

    def known_orders(self) -> set[str | int]:
        """Client order ids and oids whose journal record the book knows."""
        return set(self._by_order)

    # ------------------------------------------------------------------------------------ fills
    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add_fills(self, fills: Iterable[Fill]) -> list[Trade]:
        """Add fills (duplicates ignored). Returns the trades closed by them, in closing order."""
        touched: dict[str, list[tuple[int, int, Fill]]] = {}
        for f in fills:
            key = fill_key(f)
            if key in self._keys:
                continue
            self._keys.add(key)
            self._seq += 1
            touched.setdefault(f.coin, []).append((f.time, self._seq, f))
        closed: list[_Building] = []
        for coin, new in touched.items():
            market = self._markets.setdefault(coin, _Market())
            new.sort(key=lambda e: (e[0], e[1]))
            if new[0][0] <= market.last_ms:  # older, or of the last millisecond: refold to chain them
                before = {t.trade_id for t in market.trades if t.closed_ms is not None}
                market.fills = sorted([*market.fills, *new], key=lambda e: (e[0], e[1]))
                market.trades = []
                market.last_ms = -1
                self._fold(coin, market, market.fills)
                closed.extend(t for t in market.trades if t.closed_ms is not None and t.trade_id not in before)
            else:
                market.fills.extend(new)
                closed.extend(self._fold(coin, market, new))
        funded = {p.delta.coin for p in self._funding.values()}
        for coin in touched:
            if coin in funded:
                self._reattach_funding(coin)
        return [t.freeze() for t in sorted(closed, key=lambda t: t.closed_ms or 0)]

    def _fold(self, coin: str, market: _Market, entries: list[tuple[int, int, Fill]]) -> list[_Building]:
        closed: list[_Building] = []
        i = 0
        while i < len(entries):
            j = i
            while j < len(entries) and entries[j][0] == entries[i][0]:
                j += 1
            for n, f in enumerate(self._chain(market, [e[2] for e in entries[i:j]])):
                closed.extend(self._apply(coin, market, f, check=n == 0))
            market.last_ms = entries[i][0]
            i = j
        return closed

    @staticmethod
    def _chain(market: _Market, group: list[Fill]) -> list[Fill]:
        """Order fills of one millisecond so each starts where the previous one ended, as far as their
        `startPosition`s allow (a self-trade's two fills share one); ties go to the lower trade id (the
        exchange's order), then to the order of arrival."""
        if len(group) == 1:
            return group
        current = market.trades[-1] if market.trades and market.trades[-1].closed_ms is None else None
        pos = current.position if current is not None else _ZERO
        rest = sorted(enumerate(group), key=lambda e: (e[1].tid is None, e[1].tid or 0, e[0]))
        out: list[Fill] = []
        while rest:
            pick = next((e for e in rest if e[1].start_position == pos), rest[0])
            rest.remove(pick)
            out.append(pick[1])
            pos = end_position(pick[1])
        return out

    def _open(self, coin: str, market: _Market, fill: Fill, direction: int, *, complete: bool,
              reason: str | None, position: Decimal) -> _Building:
        trade_id, plan = self._identify(fill, market)
        t = _Building(trade_id=trade_id, market=coin, direction=direction, opened_ms=fill.time, complete=complete,
                      reason=reason, position=position, plan=plan, first=fill, peak=abs(position))
        market.trades.append(t)
        return t

    def _apply(self, coin: str, market: _Market, f: Fill, *, check: bool) -> list[_Building]:
        """Apply one fill. `check`: compare its `startPosition` with the tracked position (only the first
        fill of a millisecond is checked: the two fills of a self-trade report the same start)."""
        closed: list[_Building] = []
        cur = market.trades[-1] if market.trades and market.trades[-1].closed_ms is None else None
        start = f.start_position if check else (cur.position if cur is not None else _ZERO)
        if cur is not None and cur.position != start:
            gap = f"fills missing on {coin} before {ms_to_dt(f.time).isoformat()}: the position was " \
                  f"{start}, the recorded fills left it at {cur.position}"
            cur.incomplete(gap)
            if start == 0 or _sign(start) != cur.direction:
                cur.closed_ms = f.time  # it closed (or flipped) in the hole: its exit is not in the data
                cur.position = _ZERO
                closed.append(cur)
                cur = None
            else:
                cur.position = start
                cur.peak = max(cur.peak, abs(start))
        if cur is None and start != 0:
            cur = self._open(coin, market, f, _sign(start), complete=False, position=start,
                             reason=f"opened before the recorded fills ({coin} was {start} at "
                                    f"{ms_to_dt(f.time).isoformat()})")
        delta = signed_size(f)
        if cur is None:
            cur = self._open(coin, market, f, _sign(delta), complete=True, reason=None, position=_ZERO)
        cur.fills += 1
        if _sign(delta) == cur.direction:  # opening or adding
            cur.entry_qty += f.sz
            cur.entry_ntl += f.px * f.sz
            cur.fees += f.fee
            cur.closed_pnl += f.closed_pnl
            cur.position += delta
            cur.peak = max(cur.peak, abs(cur.position))
            return closed
        closing = min(f.sz, abs(cur.position))
        opening = f.sz - closing
        fee_close = f.fee if opening == 0 else (f.fee * closing / f.sz).quantize(_FEE_QUANTUM)
        cur.exit_qty += closing
        cur.exit_ntl += f.px * closing
        cur.closed_pnl += f.closed_pnl
        cur.fees += fee_close
        cur.position += _sign(delta) * closing
        if cur.position == 0:
            cur.closed_ms = f.time
            closed.append(cur)
        if opening > 0:
            nxt = self._open(coin, market, f, _sign(delta), complete=True, reason=None, position=_ZERO)
            nxt.fills += 1
            nxt.entry_qty = opening
            nxt.entry_ntl = f.px * opening
            nxt.fees = f.fee - fee_close
            nxt.position = _sign(delta) * opening
            nxt.peak = opening
        return closed

    # ---------------------------------------------------------------------------------- funding
    def add_funding(self, payments: Iterable[UserFunding]) -> int:
        """Attach funding payments to the trade open on their market at their time (duplicates ignored).
        Returns how many were new."""
        coins: set[str] = set()
        added = 0
        for p in payments:
            key = funding_key(p)
            if key not in self._funding:
                self._funding[key] = p
                coins.add(p.delta.coin)
                added += 1
        for coin in coins:
            self._reattach_funding(coin)
        return added

    def _reattach_funding(self, coin: str) -> None:
        market = self._markets.get(coin)
        if market is None:
            return
        for t in market.trades:
            t.funding = _ZERO
        for p in self._funding.values():
            if p.delta.coin != coin:
                continue
            owner = self._trade_at(market, p.time)
            if owner is not None:
                owner.funding += p.delta.usdc

    @staticmethod
    def _trade_at(market: _Market, ms: int) -> _Building | None:
        for t in reversed(market.trades):
            if t.opened_ms <= ms and (t.closed_ms is None or ms <= t.closed_ms):
                return t
        return None

    def unattributed_funding(self) -> Decimal:
        """Funding paid or received while no recorded trade was open on its market (before the data)."""
        total = _ZERO
        for p in self._funding.values():
            market = self._markets.get(p.delta.coin)
            if market is None or self._trade_at(market, p.time) is None:
                total += p.delta.usdc
        return total

    # ----------------------------------------------------------------------------------- output
    def trades(self) -> list[Trade]:
        """Every trade, ordered by opening time."""
        out = [t.freeze() for m in self._markets.values() for t in m.trades]
        return sorted(out, key=lambda t: (t.opened_at, t.market))

    def open_trades(self) -> dict[str, Trade]:
        """The open trade of each market, by market."""
        return {coin: m.trades[-1].freeze() for coin, m in self._markets.items()
                if m.trades and m.trades[-1].closed_ms is None}

    def positions(self) -> dict[str, Decimal]:
        """Where the recorded fills leave each market's position (0 for flat)."""
        out: dict[str, Decimal] = {}
        for coin, m in self._markets.items():
            last = m.trades[-1] if m.trades else None
            out[coin] = last.position if last is not None and last.closed_ms is None else _ZERO
        return out

    def last_fill_ms(self) -> int | None:
        times = [m.last_ms for m in self._markets.values() if m.last_ms >= 0]
        return max(times) if times else None

    def total_closed_pnl(self) -> Decimal:
        """The sum of the exchange's `closedPnl` over every fill in the book."""
        return sum((f.closed_pnl for m in self._markets.values() for _, _, f in m.fills), _ZERO)


def build_trades(fills: Iterable[Fill], funding: Iterable[UserFunding] = (), plans: Sequence[TradePlan] = (),
                 journal: Sequence[OrderRecord] = ()) -> TradeBook:
    """A trade book over recorded facts (the CLI's `ledger` and `stats`, and the sync service's start)."""
    book = TradeBook(plans, journal)
    book.add_fills(fills)
    book.add_funding(funding)
    return book
