"""Open risk, effective caps, liquidation estimates and the usage report the UI and snapshot show.

Open risk of a position (USD lost if its stop fills) = `|size| * max(0, (entry - stop) * direction)`
plus the exit fee at the stop (`|size| * stop * taker_fee`): a stop at or beyond break-even frees its
budget but for the exit fee. A position without a stop counts its whole notional (`|size| * mark`) and
is flagged. A resting entry counts with the risk its trade declared.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from revagent.risk.account import AccountView, MarketRules, PositionView
from revagent.risk.settings import RiskSettings
from revagent.risk.state import RiskState, multiplier

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)
_HUNDRED = Decimal(100)


def fee_rate(settings: RiskSettings) -> Decimal:
    """The taker fee as a fraction of notional (0.045% -> 0.00045)."""
    return settings.taker_fee_pct / _HUNDRED


def _risk_parts(position: PositionView) -> tuple[Decimal, Decimal, Decimal]:
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
    loss, stop_notional = _loss_at_stop(size, 1 if position.size > 0 else -1, position.entry_px, stop)
    return loss, stop_notional, _ZERO


def _loss_at_stop(size: Decimal, direction: int, entry_px: Decimal, stop_px: Decimal) -> tuple[Decimal, Decimal]:
    loss_per_unit = (entry_px - stop_px) * direction
    return (size * loss_per_unit if loss_per_unit > 0 else _ZERO), size * stop_px


def risk_at_stop(size: Decimal, direction: int, entry_px: Decimal, stop_px: Decimal, settings: RiskSettings) -> Decimal:
    """`open_risk` of a position of `size` (> 0) units in `direction` (+1 long, -1 short) from
    `entry_px`, protected at `stop_px`, without building the position (the same formula)."""
    loss, stop_notional = _loss_at_stop(size, direction, entry_px, stop_px)
    return loss + stop_notional * fee_rate(settings)


def open_risk(position: PositionView, settings: RiskSettings) -> Decimal:
    """USD the position loses if its stop fills (exit fee included); its notional when it has no stop."""
    loss, stop_notional, unprotected = _risk_parts(position)
    return loss + stop_notional * fee_rate(settings) + unprotected


def position_after_fill(
    position: PositionView | None,
    *,
    market: str,
    side: str,
    size: Decimal,
    price: Decimal,
    stop_px: Decimal,
    mark_px: Decimal,
    leverage: Decimal,
) -> PositionView:
    """The position once an entry of `size` (> 0) units at `price` fills, protected at `stop_px`.

    An add to a same-side position merges with it (size-weighted entry) and the whole position
    takes the new stop: the gateway consolidates the stops after an add fills (one stop covering the
    whole size at the plan's new stop). An opposite or no position gives a new one. This is the
    position whose `open_risk` an entry is judged by.
    """
    direction = 1 if side == "long" else -1
    if position is not None and position.direction == direction:
        old = abs(position.size)
        total = old + size
        entry = (old * position.entry_px + size * price) / total
        return position.model_copy(update={"size": direction * total, "entry_px": entry, "stop_px": stop_px,
                                           "mark_px": mark_px})
    return PositionView(market=market, size=direction * size, entry_px=price, mark_px=mark_px, stop_px=stop_px,
                        leverage=leverage)


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps in force: the settings' caps scaled by the penalty multiplier `m` (USD)."""

    multiplier: Decimal
    portfolio_usd: Decimal
    market_usd: Decimal
    per_trade_usd: Decimal


def effective_caps(settings: RiskSettings, m: Decimal) -> Caps:
    """Portfolio cap = `max_portfolio_risk_usd * m`; per-market = `max_market_risk_pct`% of that;
    per-trade = `max_risk_per_trade_usd * m`."""
    portfolio = settings.max_portfolio_risk_usd * m
    return Caps(
        multiplier=m,
        portfolio_usd=portfolio,
        market_usd=portfolio * settings.max_market_risk_pct / _HUNDRED,
        per_trade_usd=settings.max_risk_per_trade_usd * m,
    )


def maintenance_rate(max_leverage: int | Decimal) -> Decimal:
    """Hyperliquid's maintenance margin as a fraction of notional: half the initial margin at max
    leverage, `1 / (2 * max_leverage)`."""
    return _ONE / (_TWO * Decimal(max_leverage))


def estimate_liquidation_px(
    *,
    direction: int,
    entry_px: Decimal,
    size: Decimal,
    leverage: Decimal,
    margin_mode: str,
    market_max_leverage: int,
    equity: Decimal,
    other_maintenance_usd: Decimal,
) -> Decimal | None:
    """Estimated liquidation price of a position of `size` (> 0) units at `entry_px`, Hyperliquid's way:
    `liq = entry - direction * avail / size / (1 - direction * mm)`, `mm = 1 / (2 * max_leverage)`.

    `avail` is, isolated: the position's margin `size * entry / leverage` minus its maintenance;
    cross: `equity` minus the maintenance of every cross position (`other_maintenance_usd` for the
    others, plus this one's). An estimate: other positions' moves are ignored. None when the
    position cannot be liquidated (the price would have to reach zero or below).
    """
    mm = maintenance_rate(market_max_leverage)
    notional = size * entry_px
    if margin_mode == "isolated":
        avail = notional / leverage - notional * mm
    else:
        avail = equity - other_maintenance_usd - notional * mm
    liq = entry_px - direction * avail / size / (_ONE - direction * mm)
    if liq <= 0:
        return None
    return liq


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
        p_loss, p_stop_notional, p_unprotected = _risk_parts(p)
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


def position_maintenance_usd(position: PositionView, rules: MarketRules | None) -> Decimal:
    """Maintenance margin of a position at its mark (without the market's rules: at its own leverage,
    which over-states it)."""
    max_lev: Decimal | int = rules.max_leverage if rules is not None else position.leverage
    return abs(position.size) * position.mark_px * maintenance_rate(max_lev)


# ------------------------------------------------------------------------------------- report


class MarketUsage(BaseModel):
    """Risk in one market (USD): positions' open risk, resting entries' declared risk, their sum,
    the effective per-market cap and what is left of it; `unprotected` when the position has no stop."""

    model_config = ConfigDict(frozen=True)

    market: str
    position_risk_usd: Decimal
    entries_risk_usd: Decimal
    open_risk_usd: Decimal
    cap_usd: Decimal
    headroom_usd: Decimal
    unprotected: bool


class RiskUsage(BaseModel):
    """Risk across the account (USD) with the caps in force at `now` (what `risk show`, the TUI panel
    and the runtime snapshot display)."""

    model_config = ConfigDict(frozen=True)

    multiplier: Decimal
    portfolio_cap_usd: Decimal
    market_cap_usd: Decimal
    per_trade_cap_usd: Decimal
    total_open_risk_usd: Decimal
    headroom_usd: Decimal
    markets: tuple[MarketUsage, ...]
    unprotected: tuple[str, ...]


def risk_usage(account: AccountView, settings: RiskSettings, state: RiskState, now: datetime) -> RiskUsage:
    """Open risk per market and in total, against the effective caps at `now` (markets sorted by name)."""
    caps = effective_caps(settings, multiplier(state, now, settings))
    fee = fee_rate(settings)
    agg = aggregates(account)
    names = sorted(set(agg.loss) | set(agg.stop_notional) | set(agg.unprotected) | set(agg.entries))
    rows = []
    for market in names:
        er = agg.entries.get(market, _ZERO)
        total = agg.market_risk(market, fee)
        rows.append(
            MarketUsage(
                market=market,
                position_risk_usd=total - er,
                entries_risk_usd=er,
                open_risk_usd=total,
                cap_usd=caps.market_usd,
                headroom_usd=max(_ZERO, caps.market_usd - total),
                unprotected=market in agg.unprotected,
            )
        )
    total = agg.total_risk(fee)
    return RiskUsage(
        multiplier=caps.multiplier,
        portfolio_cap_usd=caps.portfolio_usd,
        market_cap_usd=caps.market_usd,
        per_trade_cap_usd=caps.per_trade_usd,
        total_open_risk_usd=total,
        headroom_usd=max(_ZERO, caps.portfolio_usd - total),
        markets=tuple(rows),
        unprotected=tuple(sorted(agg.unprotected)),
    )
