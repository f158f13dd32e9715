"""Open risk, effective caps, liquidation estimates and the usage report the UI and snapshot show.

Open risk of a position (USD lost if its stop fills) = `|size| * max(0, (entry - stop) * direction)`
plus the exit fee at the stop (`|size| * stop * taker_fee`): a stop at or beyond break-even frees its
budget but for the exit fee. A position without a stop counts its whole notional (`|size| * mark`) and
is flagged. A resting entry counts with the risk its trade declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from revagent.risk.account import AccountView, MarketRules, PositionView
from revagent.risk.account import Aggregates as Aggregates  # the per-view sums live with the view
from revagent.risk.account import aggregates as aggregates
from revagent.risk.account import loss_at_stop as _loss_at_stop
from revagent.risk.account import maintenance_rate as maintenance_rate
from revagent.risk.account import risk_parts as _risk_parts
from revagent.risk.settings import RiskSettings
from revagent.risk.state import RiskState, multiplier

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)
_HUNDRED = Decimal(100)


def fee_rate(settings: RiskSettings) -> Decimal:
    """The taker fee as a fraction of notional (0.045% -> 0.00045)."""
    return settings.taker_fee_pct / _HUNDRED


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
