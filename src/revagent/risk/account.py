"""The account as the risk engine sees it: a validated, immutable snapshot the caller builds.

Sync builds an `AccountView` from the exchange's state plus the recorded trade plans, and passes it
to `evaluate`, `corrections` and `risk_usage`. Everything is already validated when the view is
built (pydantic), so the engine reads attributes and never re-validates on the hot path.

Units: money in USD, prices in USD per unit, sizes in units of the coin, leverage as a multiple,
times as aware UTC datetimes. A position's `size` is signed (negative = short).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from revagent.models import UtcDateTime

MarginMode = Literal["cross", "isolated"]
Direction = Literal["long", "short"]
OrderSide = Literal["buy", "sell"]
SyncPhase = Literal["checking", "reconciling", "verifying", "consistent", "failed"]

Positive = Annotated[Decimal, Field(gt=0)]
NonNegative = Annotated[Decimal, Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BookLevel(_Frozen):
    """One level of the L2 book: price and the size resting there."""

    px: Positive
    sz: Positive


class MarketRules(_Frozen):
    """One perp market: its grid, its exchange leverage limit, and its current price.

    `leverage` is this account's current leverage setting on the market (None = never set: the
    engine then uses the settings' `max_leverage`, capped by `max_leverage` of the market).
    `price_time` is when `mark_px` / `mid_px` were last updated (their age is checked for entries).
    `bids` / `asks` are the L2 book (best first) when the caller fetched it: a market entry is then
    sized at its expected average fill; without them, at the slippage bound.
    """

    name: str
    sz_decimals: Annotated[int, Field(ge=0, le=6)]
    max_leverage: Annotated[int, Field(ge=1)]
    mark_px: Positive
    mid_px: Positive | None = None
    price_time: UtcDateTime
    leverage: Positive | None = None
    only_isolated: bool = False
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()

    @property
    def reference_px(self) -> Decimal:
        """The price a market order is priced from: the mid when known, else the mark."""
        return self.mid_px if self.mid_px is not None else self.mark_px


class PositionView(_Frozen):
    """An open position. `stop_px` is the live protective stop on the exchange (the worst one when
    several cover the position; None = unprotected); `planned_stop_px` / `target_px` come from the
    recorded trade plan (None when no plan is known). `opened_at` starts the stop grace period.
    """

    market: str
    size: Decimal
    entry_px: Positive
    mark_px: Positive
    stop_px: Positive | None = None
    planned_stop_px: Positive | None = None
    target_px: Positive | None = None
    leverage: Positive
    liquidation_px: Decimal | None = None
    margin_mode: MarginMode = "cross"
    opened_at: UtcDateTime | None = None
    trade_id: str | None = None

    @property
    def direction(self) -> int:
        """+1 for a long, -1 for a short, 0 for no size."""
        return (self.size > 0) - (self.size < 0)


class RestingEntry(_Frozen):
    """A resting (not yet filled) entry order with the risk its trade declared (USD lost at its stop)."""

    market: str
    oid: int | None = None
    cloid: str | None = None
    side: Direction
    size: Positive
    limit_px: Positive
    stop_px: Positive | None = None
    risk_usd: NonNegative


class TriggerOrder(_Frozen):
    """A resting trigger order: a protective stop (`kind="stop"`) or a take-profit, usually reduce-only.

    `side` is the order's side: a long's stop sells, a short's stop buys.
    """

    market: str
    oid: int | None = None
    cloid: str | None = None
    side: OrderSide
    size: Positive
    trigger_px: Positive
    kind: Literal["stop", "take_profit"]
    reduce_only: bool = True


class AccountView(_Frozen):
    """Everything the engine needs about one wallet at one moment.

    `equity` is the account value (cross); `available_margin` what a new order may still use.
    `sync_phase` is sync's phase: new risk is refused unless it is `consistent` (`sync_reason` says
    why it is not, in words, e.g. "websocket down: ..."). `price_source`: a paper venue's one line on
    where its prices come from ("synthetic prices: Hyperliquid unreachable"; "" when not said). `markets` must hold
    the rules of every market with a position (a close must be priced on the market's grid).
    """

    equity: NonNegative
    available_margin: NonNegative
    positions: tuple[PositionView, ...] = ()
    entries: tuple[RestingEntry, ...] = ()
    triggers: tuple[TriggerOrder, ...] = ()
    markets: dict[str, MarketRules] = Field(default_factory=dict)
    sync_phase: SyncPhase = "consistent"
    sync_reason: str = ""
    price_source: str = ""
    as_of: UtcDateTime | None = None

    @model_validator(mode="after")
    def _rules_for_positions(self) -> AccountView:
        missing = sorted({p.market for p in self.positions if p.size != 0 and p.market not in self.markets})
        if missing:
            raise ValueError(f"no market rules for the positions in {', '.join(missing)}")
        # prime the per-view risk sums once, off the hot path of `evaluate` (see `aggregates` below)
        aggregates(self)
        return self

    @property
    def positions_by_market(self) -> dict[str, PositionView]:
        """Open positions (size != 0) keyed by market (Hyperliquid perps are one-way: one per market).

        Built once per `positions` tuple: the index remembers the tuple it was built from, so a copy
        (`model_copy(update={"positions": ...})`, which keeps the instance dict) rebuilds it instead
        of reading the original's positions.
        """
        cached = self.__dict__.get("_positions_index")
        if cached is not None and cached[0] is self.positions:
            return cached[1]  # type: ignore[no-any-return]
        index = {p.market: p for p in self.positions if p.size != 0}
        self.__dict__["_positions_index"] = (self.positions, index)
        return index

    def position(self, market: str) -> PositionView | None:
        return self.positions_by_market.get(market)

    def price_age_seconds(self, market: str, now: datetime) -> float | None:
        """Seconds since the market's price was updated, or None for an unknown market."""
        rules = self.markets.get(market)
        if rules is None:
            return None
        return (now - rules.price_time).total_seconds()


# ----------------------------------------------------------------- the view's own risk sums
# The one definition of a position's open risk at its stop (`risk_parts`) and the per-market sums of a
# view (`aggregates`), computed once per validated view (its validator primes them). `exposure`,
# `evaluate` and `corrections` build on these.

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)


def risk_parts(position: PositionView) -> tuple[Decimal, Decimal, Decimal]:
    """`(loss, stop_notional, unprotected)` of one position: the parts of its open risk.

    `loss = |size| * max(0, (entry - stop) * direction)`, `stop_notional = |size| * stop` (the exit
    fee is `stop_notional * fee`), `unprotected = |size| * mark` when there is no stop. The one
    definition of "open risk of a position at a stop": `open_risk`, the per-market sums (`aggregates`,
    hence `risk_usage`, the panel and the snapshot), `evaluate` and `corrections` all use it.
    """
    size = abs(position.size)
    stop = position.stop_px
    if size == 0:
        return _ZERO, _ZERO, _ZERO
    if stop is None:
        return _ZERO, _ZERO, size * position.mark_px
    loss, stop_notional = loss_at_stop(size, 1 if position.size > 0 else -1, position.entry_px, stop)
    return loss, stop_notional, _ZERO


def loss_at_stop(size: Decimal, direction: int, entry_px: Decimal, stop_px: Decimal) -> tuple[Decimal, Decimal]:
    """`(loss, stop_notional)` of `size` (> 0) units in `direction` from `entry_px`, stopped at `stop_px`."""
    loss_per_unit = (entry_px - stop_px) * direction
    return (size * loss_per_unit if loss_per_unit > 0 else _ZERO), size * stop_px


def maintenance_rate(max_leverage: int | Decimal) -> Decimal:
    """Hyperliquid's maintenance margin as a fraction of notional: half the initial margin at max
    leverage, `1 / (2 * max_leverage)`."""
    return _ONE / (_TWO * Decimal(max_leverage))


_MM_RATES: dict[int | Decimal, Decimal] = {}


def _mm_rate(max_leverage: int | Decimal) -> Decimal:
    rate = _MM_RATES.get(max_leverage)
    if rate is None:
        rate = _MM_RATES[max_leverage] = maintenance_rate(max_leverage)
    return rate


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Per-market sums of one account view, enough to answer every cap check in O(1).

    Open risk of a market = `loss + stop_notional * fee + unprotected + entries`, where `loss` is
    `sum |size| * max(0, loss per unit at the stop)`, `stop_notional` is `sum |size| * stop` (the exit
    fee is linear in it, so the fee rate applies after summing), `unprotected` the notional of
    positions without a stop and `entries` the declared risk of resting entries.
    `cross_maintenance` is the maintenance margin of the market's cross position.
    """

    loss: dict[str, Decimal]
    stop_notional: dict[str, Decimal]
    unprotected: dict[str, Decimal]
    entries: dict[str, Decimal]
    cross_maintenance: dict[str, Decimal]
    total_loss: Decimal
    total_stop_notional: Decimal
    total_unprotected: Decimal
    total_entries: Decimal
    total_cross_maintenance: Decimal

    def market_risk(self, market: str, fee: Decimal) -> Decimal:
        return (
            self.loss.get(market, _ZERO)
            + self.stop_notional.get(market, _ZERO) * fee
            + self.unprotected.get(market, _ZERO)
            + self.entries.get(market, _ZERO)
        )

    def total_risk(self, fee: Decimal) -> Decimal:
        return self.total_loss + self.total_stop_notional * fee + self.total_unprotected + self.total_entries


def _aggregate(account: AccountView) -> Aggregates:
    loss: dict[str, Decimal] = {}
    stop_notional: dict[str, Decimal] = {}
    unprotected: dict[str, Decimal] = {}
    cross_mm: dict[str, Decimal] = {}
    markets = account.markets
    for p in account.positions:
        if p.size == 0:
            continue
        name = p.market
        p_loss, p_stop_notional, p_unprotected = risk_parts(p)
        if p.stop_px is None:
            unprotected[name] = unprotected.get(name, _ZERO) + p_unprotected
        else:
            if p_loss > _ZERO:
                loss[name] = loss.get(name, _ZERO) + p_loss
            stop_notional[name] = stop_notional.get(name, _ZERO) + p_stop_notional
        if p.margin_mode == "cross":
            rules = markets.get(name)
            rate = _mm_rate(rules.max_leverage if rules is not None else p.leverage)
            cross_mm[name] = cross_mm.get(name, _ZERO) + abs(p.size) * p.mark_px * rate
    entries: dict[str, Decimal] = {}
    for e in account.entries:
        entries[e.market] = entries.get(e.market, _ZERO) + e.risk_usd
    return Aggregates(
        loss=loss,
        stop_notional=stop_notional,
        unprotected=unprotected,
        entries=entries,
        cross_maintenance=cross_mm,
        total_loss=sum(loss.values(), _ZERO),
        total_stop_notional=sum(stop_notional.values(), _ZERO),
        total_unprotected=sum(unprotected.values(), _ZERO),
        total_entries=sum(entries.values(), _ZERO),
        total_cross_maintenance=sum(cross_mm.values(), _ZERO),
    )


_AGGREGATES: dict[int, tuple[weakref.ref[AccountView], Aggregates]] = {}
_AGGREGATES_MAX = 64


def aggregates(account: AccountView) -> Aggregates:
    """The per-market sums of `account`, computed once per view instance (views are immutable).

    Cached by identity with a weak reference, so a copy (`model_copy(update=...)`) never sees the
    original's sums and a dead view's id cannot be mistaken for a live one. Pure from the caller's
    side: same input, same output.
    """
    key = id(account)
    hit = _AGGREGATES.get(key)
    if hit is not None and hit[0]() is account:
        return hit[1]
    result = _aggregate(account)
    if len(_AGGREGATES) >= _AGGREGATES_MAX:
        _AGGREGATES.clear()
    _AGGREGATES[key] = (weakref.ref(account), result)
    return result



def share_aggregates(source: AccountView, copy: AccountView) -> AccountView:
    """`copy`, a `model_copy` of `source` that changed nothing the sums read (a market's book levels),
    given `source`'s per-market sums: its `evaluate` is warm instead of summing every position and
    order again (the gateway sizes a market entry on such a copy). Returns `copy`."""
    result = aggregates(source)
    if len(_AGGREGATES) >= _AGGREGATES_MAX:
        _AGGREGATES.clear()
    _AGGREGATES[id(copy)] = (weakref.ref(copy), result)
    return copy
