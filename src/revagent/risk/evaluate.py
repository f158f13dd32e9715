"""`evaluate(intent, account, settings, state, now) -> Verdict`: the one judgement every order passes.

Pure and fast: it reads already-validated models and builds one verdict (no I/O, no clock).

Always allowed (in LOCKED and HALTED, with stale data, whatever the rate): a reduce-only
`ClosePosition`, cancelling a resting entry or a take-profit, tightening a stop (`ModifyStop` whose
new open risk is not larger), `EnsureStop`, and placing a first stop with `ModifyStop`. Only validity
is checked for them (a position to act on, a stop on the right side of the mark).

Risk-increasing intents (`OpenTrade`, loosening a stop, raising leverage) pass the gate: not HALTED,
not LOCKED, no cooldown (opens and loosening), sync `consistent` and a fresh price (opens and
loosening), and the orders-per-minute limit. Every failed rule adds a reason; nothing stops at the
first one.

Sizing (opens): `size = risk_usd / (|entry - stop| + taker_fee * (entry + stop))` rounded down to the
lot. A market entry's order (IOC) is priced at the slippage bound `reference * (1 +/- max_slippage_pct%)`
(`price`, `worst_entry_px`: no fill can be worse); it is sized and judged (R:R, target side, caps)
at its expected average fill (`expected_entry_px`), walked from the L2 book in the market's rules
(`MarketRules.bids/asks`), or at the bound when the caller brought no book. `risk_usd` is the risk at
the expected fill, `risk_at_worst_usd` at the bound; a fill worse than expected that leaves the
trade over its cap is trimmed by `corrections`. Prices round by side (`rounding.round_price`).

Adds: an open on a market that already holds a same-side position is judged as the whole position
after the fill (`exposure.position_after_fill`), at the looser of its live stop and the new one (the
gateway moves the whole position to the new stop once the add fills; until then sync counts the
worst stop). The per-trade cap binds that trade's open risk, not the amount added; a looser
`ModifyStop` is capped the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Any, cast

from pydantic import BaseModel

from revagent.models import MAX_PRICE, MAX_USD, format_duration
from revagent.risk.account import AccountView, MarginMode, MarketRules, PositionView
from revagent.risk.exposure import (
    Caps,
    aggregates,
    effective_caps,
    estimate_liquidation_px,
    open_risk,
    risk_at_stop,
)
from revagent.risk.intents import (
    AdjustMargin,
    CancelOrder,
    ClosePosition,
    EnsureStop,
    ModifyStop,
    OpenTrade,
    SetLeverage,
    SetTarget,
)
from revagent.risk.rounding import is_on_tick, round_price, round_size_down, round_size_up
from revagent.risk.settings import RiskSettings
from revagent.risk.state import RiskState, active_cooldown, cooldown_streak, multiplier, orders_in_last_minute
from revagent.risk.verdict import Reason, ReasonCode, Verdict

MIN_ORDER_USD = Decimal(10)
"""Hyperliquid's minimum order value."""

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_BEYOND_MARK = Decimal("0.002")  # how far beyond the mark an emergency stop goes (0.2%)
_FLOOR = Context(prec=28, rounding=ROUND_FLOOR)
_CEIL = Context(prec=28, rounding=ROUND_CEILING)


# ------------------------------------------------------------------------------------ formatting


_MICRO = Decimal("0.000001")


def _num(d: Decimal) -> str:
    """A price or size as plain decimal text (no exponent, no trailing zeros; an average price is
    shown to 6 decimals, the finest grid there is)."""
    if d != d.to_integral_value() and d.as_tuple().exponent < -6:  # type: ignore[operator]
        d = d.quantize(_MICRO)
    text = f"{d.normalize():f}" if d != d.to_integral_value() else f"{d.quantize(_ONE):f}"
    return text


def _usd(d: Decimal, rounding: str = ROUND_FLOOR) -> str:
    return f"{d.quantize(_CENT, rounding=rounding):f}"


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * _HUNDRED).quantize(_CENT):f}%"


def _side_word(direction: int) -> str:
    return "long" if direction > 0 else "short"


# ------------------------------------------------------------------------------------------ gate


def _gate(
    account: AccountView,
    settings: RiskSettings,
    state: RiskState,
    now: datetime,
    rules: MarketRules | None,
    *,
    new_exposure: bool,
) -> list[Reason]:
    """Reasons that refuse any risk-increasing intent. `new_exposure` adds the cooldown, sync and
    price-age rules (opens and loosened stops)."""
    reasons: list[Reason] = []
    if state.halted:
        reasons.append(
            Reason(
                code=ReasonCode.HALTED,
                message=(
                    f"trading is halted (kill switch engaged by {state.halted_by or 'unknown'}); only "
                    "closes, "
                    "cancels of entries, tighter stops and protective stops pass until a human resumes"
                ),
            )
        )
    if state.locked_until is not None and state.locked_until > now:  # an expired lock is released at `now`
        left = state.locked_until - now
        why = (
            f"drawdown {_pct(state.drawdown)} reached max_drawdown_pct {settings.max_drawdown_pct}%"
            if state.lock_reason == "max_drawdown"
            else f"the day's loss reached max_daily_loss_pct {settings.max_daily_loss_pct}%"
        )
        reasons.append(
            Reason(
                code=ReasonCode.LOCKED,
                message=(
                    f"trading is locked until {state.locked_until.isoformat()} "
                    f"({format_duration(left)} left) "
                    f"because {why}; only risk-reducing and protective actions pass"
                ),
            )
        )
    if new_exposure:
        cooldown_until = active_cooldown(state, now, settings)
        if cooldown_until is not None:
            reasons.append(
                Reason(
                    code=ReasonCode.COOLDOWN,
                    message=(
                        f"cooling down until {cooldown_until.isoformat()} "
                        f"({format_duration(cooldown_until - now)} left) after "
                        f"{cooldown_streak(state, settings)} consecutive losing trades (cooldown_after_losses)"
                    ),
                )
            )
        if account.sync_phase != "consistent":
            reasons.append(
                Reason(
                    code=ReasonCode.NOT_SYNCED,
                    message=f"the account is not in sync (phase {account.sync_phase}, needs consistent)"
                    + (f": {account.sync_reason}" if account.sync_reason else ""),
                )
            )
        if rules is not None:
            age = now - rules.price_time
            if age > settings.max_price_age:
                reasons.append(
                    Reason(
                        code=ReasonCode.STALE_PRICE,
                        message=(
                            f"the {rules.name} price is {age.total_seconds():.1f}s old, older than "
                            f"max_price_age {format_duration(settings.max_price_age)}"
                        ),
                    )
                )
    reasons.extend(_rate_limit(state, now, settings))
    return reasons


def _rate_limit(state: RiskState, now: datetime, settings: RiskSettings) -> list[Reason]:
    """The orders-per-minute limit, as a reason when it is reached."""
    sent = orders_in_last_minute(state, now)
    if sent < settings.max_orders_per_minute:
        return []
    return [Reason(code=ReasonCode.RATE_LIMIT,
                   message=(f"{sent} orders were sent in the last minute, the limit is max_orders_per_minute "
                            f"{settings.max_orders_per_minute}"))]


def _exposure(account: AccountView, settings: RiskSettings, market: str) -> tuple[Decimal, Decimal, Decimal]:
    """(total open risk, this market's open risk, maintenance of the other markets' cross positions)."""
    fee = settings.taker_fee_pct / _HUNDRED
    agg = aggregates(account)
    other_mm = agg.total_cross_maintenance - agg.cross_maintenance.get(market, _ZERO)
    return agg.total_risk(fee), agg.market_risk(market, fee), other_mm


def _refused(kind: str, market: str, reasons: list[Reason], **extra: Any) -> Verdict:
    return Verdict(approved=False, kind=kind, market=market, reasons=tuple(reasons), **extra)


def _unknown_market(kind: str, market: str, reasons: list[Reason]) -> Verdict:
    reasons.append(
        Reason(code=ReasonCode.UNKNOWN_MARKET, message=f"no market named {market!r} is known to this account")
    )
    return _refused(kind, market, reasons)


def _no_position(kind: str, market: str, what: str) -> Verdict:
    return _refused(
        kind,
        market,
        [Reason(code=ReasonCode.NO_POSITION, message=f"there is no open {market} position {what}")],
    )


def _leverage_cap(settings: RiskSettings, rules: MarketRules) -> Decimal:
    return min(settings.max_leverage, Decimal(rules.max_leverage))


def _check_leverage(lev: Decimal, settings: RiskSettings, rules: MarketRules, reasons: list[Reason]) -> None:
    cap = _leverage_cap(settings, rules)
    if lev != lev.to_integral_value():
        reasons.append(
            Reason(code=ReasonCode.LEVERAGE_NOT_WHOLE, message=f"leverage must be a whole number, got {_num(lev)}")
        )
    if lev > cap:
        reasons.append(
            Reason(
                code=ReasonCode.LEVERAGE,
                message=(
                    f"leverage {_num(lev)}x exceeds the limit {_num(cap)}x (max_leverage "
                    f"{_num(settings.max_leverage)}, {rules.name} exchange max {rules.max_leverage})"
                ),
            )
        )


def _per_trade_reason(
    trade_risk: Decimal, existing_at_stop: Decimal | None, caps: Caps, settings: RiskSettings
) -> Reason:
    """The per-trade cap binds the trade: its open risk once this entry fills, the whole position at
    its new stop for an add (`existing_at_stop`: the open position's risk at that stop)."""
    base = (
        f"risk {_usd(trade_risk)} USD exceeds the per-trade cap {_usd(caps.per_trade_usd)} USD "
        f"(max_risk_per_trade_usd {_num(settings.max_risk_per_trade_usd)} x multiplier "
        f"{caps.multiplier.quantize(Decimal('0.001'))})"
    )
    if existing_at_stop is not None:
        base = (
            f"the trade's open risk after this add would be {_usd(trade_risk)} USD (the whole position moves "
            f"to the new stop; the open position alone risks {_usd(existing_at_stop)} USD there), over the "
            f"per-trade cap {_usd(caps.per_trade_usd)} USD; at most "
            f"{_usd(max(_ZERO, caps.per_trade_usd - existing_at_stop))} USD can be added with this stop"
        )
    return Reason(code=ReasonCode.RISK_PER_TRADE, message=base)


def _risk_line(q: Decimal, cost: Decimal, direction: int, stop: Decimal, fee: Decimal) -> Decimal:
    """Risk at `stop` of `q` units bought (sold) for `cost` in total, both taker fees included:
    long `(1 + f) * cost - q * stop * (1 - f)`, short `q * stop * (1 + f) - (1 - f) * cost`."""
    if direction > 0:
        return (_ONE + fee) * cost - q * stop * (_ONE - fee)
    return q * stop * (_ONE + fee) - (_ONE - fee) * cost


def _size_at_market(
    levels: tuple[tuple[Decimal, Decimal], ...],
    limit: Decimal,
    direction: int,
    stop: Decimal,
    risk_usd: Decimal,
    fee: Decimal,
    sz_decimals: int,
) -> tuple[Decimal, Decimal]:
    """(size, expected average fill) of a market entry risking `risk_usd` at `stop`, walking the
    book's `levels` (best first, none beyond `limit`); what the book lacks is taken at `limit`.

    Size and average price depend on each other; within one level the risk is linear in the size
    taken there (`_risk_line`), so it is solved level by level, exactly. The size is rounded down to
    the lot and its average recomputed: the risk at the expected fill never exceeds `risk_usd`.
    """
    q = cost = _ZERO
    for px, sz in (*levels, (limit, None)):
        base = _risk_line(q, cost, direction, stop, fee)
        slope = _risk_line(_ONE, px, direction, stop, fee)
        if slope <= 0:
            break
        take = max(_ZERO, _FLOOR.divide(risk_usd - base, slope))
        if sz is not None and take > sz:
            take = sz
        q += take
        cost += take * px
        if sz is None or take < sz:
            break
    size = round_size_down(q, sz_decimals)
    return size, _average_fill(levels, limit, size)


def _average_fill(levels: tuple[tuple[Decimal, Decimal], ...], limit: Decimal, size: Decimal) -> Decimal:
    """The average price of `size` units taken from `levels` (best first), the rest at `limit`."""
    if size <= 0:
        return levels[0][0] if levels else limit
    left, cost = size, _ZERO
    for px, sz in levels:
        take = min(left, sz)
        cost += take * px
        left -= take
        if left <= 0:
            break
    cost += left * limit
    return cost / size


def _caps(settings: RiskSettings, state: RiskState, now: datetime) -> Caps:
    return effective_caps(settings, multiplier(state, now, settings))


# -------------------------------------------------------------------------------------- open trade


def _reason(code: ReasonCode, message: str) -> Reason:
    """The one way an open's rules word a refusal: a stable code and the numbers in a sentence."""
    return Reason(code=code, message=message)


@dataclass(frozen=True, slots=True)
class _Entry:
    """An open's prices as rounded for its market: the order's limit, the book it can take, the
    expected fill, the stop, and whether the stop is on the right side of the entry and the mark."""

    order_px: Decimal
    levels: tuple[tuple[Decimal, Decimal], ...]
    entry: Decimal
    stop: Decimal
    stop_ok: bool
    market_size: Decimal | None


@dataclass(frozen=True, slots=True)
class _AfterFill:
    """The trade once this entry fills (an add: the whole position at the looser stop)."""

    same_side: PositionView | None
    stop_after: Decimal
    size: Decimal
    entry: Decimal
    position_risk: Decimal
    trade_risk: Decimal
    added: Decimal


def _agent_declarations(intent: OpenTrade) -> list[Reason]:
    """An agent's trade declares its plan: a target and a conviction."""
    if intent.origin != "agent":
        return []
    reasons = []
    if intent.target_px is None:
        reasons.append(_reason(ReasonCode.TARGET_REQUIRED,
                               "an agent's trade must declare target_px (the plan's profit target)"))
    if intent.conviction is None:
        reasons.append(_reason(ReasonCode.CONVICTION_REQUIRED, "an agent's trade must declare conviction (0-100)"))
    return reasons


def _opposite_position(intent: OpenTrade, position: PositionView | None, direction: int) -> list[Reason]:
    if position is None or position.direction == direction:
        return []
    return [_reason(ReasonCode.OPPOSITE_POSITION,
                    f"a {intent.side} would trade against the open {_side_word(position.direction)} "
                    f"{_num(abs(position.size))} {intent.market}; close it first")]


def _margin_mode(intent: OpenTrade, position: PositionView | None, rules: MarketRules,
                 settings: RiskSettings) -> tuple[MarginMode, list[Reason]]:
    """The open's margin mode (asked, else the position's, else the setting); isolated-only markets."""
    mode = intent.margin_mode or (position.margin_mode if position is not None else settings.margin_mode)
    if not (rules.only_isolated and mode == "cross"):
        return mode, []
    if intent.margin_mode == "cross":
        return "isolated", [_reason(ReasonCode.ISOLATED_ONLY, f"{intent.market} trades with isolated margin only")]
    return "isolated", []


def _open_leverage(intent: OpenTrade, position: PositionView | None, rules: MarketRules,
                   settings: RiskSettings, reasons: list[Reason]) -> Decimal:
    """The asked leverage (checked), else the market's or the position's, within the cap."""
    if intent.leverage is not None:
        _check_leverage(intent.leverage, settings, rules, reasons)
        return intent.leverage
    lev_cap = _leverage_cap(settings, rules)
    current = (
        rules.leverage
        if rules.leverage is not None
        else (position.leverage if position is not None else lev_cap)
    )
    leverage = min(current, lev_cap).to_integral_value(rounding=ROUND_FLOOR)
    return _ONE if leverage < 1 else leverage


def _entry_prices(intent: OpenTrade, rules: MarketRules, settings: RiskSettings, direction: int,
                  fee: Decimal) -> _Entry:
    """The order's limit (a market entry: the slippage bound), the expected fill walked from the book
    once the stop allows sizing, and the stop, all rounded by side."""
    is_buy = direction > 0
    szd = rules.sz_decimals
    levels: tuple[tuple[Decimal, Decimal], ...] = ()
    if intent.entry_px is None:
        slip = settings.max_slippage_pct / _HUNDRED
        order_px = round_price(rules.reference_px * (_ONE + direction * slip), szd, is_buy=is_buy)
        # the book's levels a market order can take: at or better than its limit (the slippage bound)
        levels = tuple(
            (lv.px, lv.sz) for lv in (rules.asks if is_buy else rules.bids) if (order_px - lv.px) * direction >= 0
        )
    else:
        order_px = round_price(intent.entry_px, szd, is_buy=is_buy)
    entry = levels[0][0] if levels else order_px  # the best price the entry can get, until it is sized
    stop = round_price(intent.stop_px, szd, is_buy=not is_buy)
    mark = rules.mark_px
    stop_ok = stop < min(entry, mark) if is_buy else stop > max(entry, mark)
    market_size: Decimal | None = None
    if stop_ok and levels:
        market_size, entry = _size_at_market(levels, order_px, direction, stop, intent.risk_usd, fee, szd)
    return _Entry(order_px, levels, entry, stop, stop_ok, market_size)


def _stop_side(intent: OpenTrade, e: _Entry, mark: Decimal) -> list[Reason]:
    if e.stop_ok:
        return []
    where = "below" if intent.side == "long" else "above"
    return [_reason(ReasonCode.STOP_WRONG_SIDE,
                    f"a {intent.side}'s stop must be {where} the entry {_num(e.entry)} and the mark "
                    f"{_num(mark)}; got {_num(e.stop)}")]


def _take_profit(intent: OpenTrade, e: _Entry, direction: int, szd: int) -> tuple[Decimal | None, list[Reason]]:
    if intent.take_profit_px is None:
        return None, []
    is_buy = direction > 0
    take_profit = round_price(intent.take_profit_px, szd, is_buy=not is_buy)
    if (take_profit - e.entry) * direction > 0:
        return take_profit, []
    return take_profit, [_reason(ReasonCode.TAKE_PROFIT_WRONG_SIDE,
                                 f"a {intent.side}'s take-profit must be {'above' if is_buy else 'below'} the "
                                 f"entry {_num(e.entry)}; got {_num(take_profit)}")]


def _target(intent: OpenTrade, e: _Entry, direction: int,
            settings: RiskSettings) -> tuple[Decimal | None, list[Reason]]:
    """The target's side, and an agent's reward:risk against `min_reward_risk`: (reward:risk, reasons)."""
    target = intent.target_px
    if target is None:
        return None, []
    entry, stop = e.entry, e.stop
    if (target - entry) * direction <= 0:
        return None, [_reason(ReasonCode.TARGET_WRONG_SIDE,
                              f"a {intent.side}'s target must be {'above' if direction > 0 else 'below'} the "
                              f"entry {_num(entry)}; got {_num(target)}")]
    if not e.stop_ok:
        return None, []
    reward_risk = abs(target - entry) / abs(entry - stop)
    if intent.origin != "agent" or reward_risk >= settings.min_reward_risk:
        return reward_risk, []
    needed = entry + direction * settings.min_reward_risk * abs(entry - stop)
    return reward_risk, [_reason(ReasonCode.REWARD_RISK,
                                 f"reward:risk {reward_risk.quantize(_CENT, rounding=ROUND_FLOOR)} (target "
                                 f"{_num(target)}, entry {_num(entry)}, stop {_num(stop)}) is under min_reward_risk "
                                 f"{_num(settings.min_reward_risk)}; with this stop the target must reach "
                                 f"{_num(needed)}")]


def _order_value(size: Decimal, entry: Decimal, per_unit: Decimal, notional: Decimal, szd: int,
                 settings: RiskSettings) -> list[Reason]:
    """The order's value between Hyperliquid's minimum and `max_order_notional_usd`."""
    reasons = []
    if notional < MIN_ORDER_USD:
        min_size = round_size_up(_CEIL.divide(MIN_ORDER_USD, entry), szd)
        reasons.append(_reason(ReasonCode.MIN_NOTIONAL,
                               f"order value {_usd(notional)} USD (size {_num(size)} at {_num(entry)}) is under "
                               f"Hyperliquid's {_num(MIN_ORDER_USD)} USD minimum; the smallest risk that works "
                               f"with this stop is {_usd(min_size * per_unit, ROUND_CEILING)} USD"))
    if notional > settings.max_order_notional_usd:
        max_size = round_size_down(_FLOOR.divide(settings.max_order_notional_usd, entry), szd)
        reasons.append(_reason(ReasonCode.ORDER_NOTIONAL,
                               f"order value {_usd(notional)} USD exceeds max_order_notional_usd "
                               f"{_num(settings.max_order_notional_usd)}; with this stop the largest risk that "
                               f"fits is {_usd(max_size * per_unit)} USD"))
    return reasons


def _after_fill(position: PositionView | None, direction: int, size: Decimal, entry: Decimal, stop: Decimal,
                fee: Decimal, settings: RiskSettings) -> _AfterFill:
    """An add is judged as the whole position after the fill, at the looser of its live stop and the
    new one: the gateway moves the whole position to the new stop once an add fills
    (`_consolidate_stops`), and until then (a resting add) sync counts the worst stop covering it."""
    same_side = position if position is not None and position.direction == direction else None
    before = open_risk(same_side, settings) if same_side is not None else _ZERO
    stop_after = stop
    if same_side is not None and same_side.stop_px is not None and (stop - same_side.stop_px) * direction > 0:
        stop_after = same_side.stop_px
    # the position after the fill (`exposure.position_after_fill`, in numbers: this is the hot path)
    after_size, after_entry = size, entry
    if same_side is not None:
        old_size = abs(same_side.size)
        after_size = old_size + size
        after_entry = (old_size * same_side.entry_px + size * entry) / after_size if after_size > 0 else entry
    position_risk = risk_at_stop(after_size, direction, after_entry, stop_after, settings) if after_size > 0 else _ZERO
    trade_risk = position_risk + size * entry * fee  # this entry's fee is part of what the trade risks
    return _AfterFill(same_side, stop_after, after_size, after_entry, position_risk, trade_risk, trade_risk - before)


def _per_trade_cap(intent: OpenTrade, after: _AfterFill, caps: Caps, settings: RiskSettings) -> list[Reason]:
    at_risk = max(intent.risk_usd, after.trade_risk)
    if at_risk <= caps.per_trade_usd:
        return []
    existing = None
    if after.same_side is not None:
        existing = open_risk(after.same_side.model_copy(update={"stop_px": after.stop_after}), settings)
    return [_per_trade_reason(at_risk, existing, caps, settings)]


def _portfolio_and_market_caps(market: str, added: Decimal, account: AccountView, caps: Caps,
                               settings: RiskSettings) -> tuple[Decimal, list[Reason]]:
    """The portfolio and per-market caps on open risk: (the other markets' cross maintenance, reasons)."""
    total, in_market, other_mm = _exposure(account, settings, market)
    reasons = []
    if total + added > caps.portfolio_usd:
        reasons.append(_reason(ReasonCode.PORTFOLIO_RISK,
                               f"open risk {_usd(total)} USD + this trade {_usd(added)} USD = "
                               f"{_usd(total + added)} USD exceeds the portfolio cap {_usd(caps.portfolio_usd)} USD "
                               f"(max_portfolio_risk_usd {_num(settings.max_portfolio_risk_usd)} x multiplier "
                               f"{caps.multiplier.quantize(Decimal('0.001'))}); at most "
                               f"{_usd(max(_ZERO, caps.portfolio_usd - total))} USD can be risked now"))
    if in_market + added > caps.market_usd:
        reasons.append(_reason(ReasonCode.MARKET_RISK,
                               f"{market} open risk {_usd(in_market)} USD + this trade {_usd(added)} USD = "
                               f"{_usd(in_market + added)} USD exceeds the per-market cap {_usd(caps.market_usd)} "
                               f"USD (max_market_risk_pct {_num(settings.max_market_risk_pct)}% of the portfolio "
                               f"cap); at most {_usd(max(_ZERO, caps.market_usd - in_market))} USD can be risked "
                               f"in {market} now"))
    return other_mm, reasons


def _margin(margin: Decimal, notional: Decimal, leverage: Decimal, account: AccountView) -> list[Reason]:
    if margin <= account.available_margin:
        return []
    return [_reason(ReasonCode.MARGIN,
                    f"the order needs {_usd(margin, ROUND_CEILING)} USD of margin ({_usd(notional)} USD at "
                    f"{_num(leverage)}x) but only {_usd(account.available_margin)} USD is available")]


def _liquidation(after: _AfterFill, direction: int, stop: Decimal, leverage: Decimal, mode: MarginMode,
                 rules: MarketRules, account: AccountView, other_mm: Decimal) -> tuple[Decimal | None, list[Reason]]:
    """The liquidation of the whole position after the fill (an add merges with the existing one),
    which the stop must come before."""
    if after.size <= 0:
        return None, []
    liq = estimate_liquidation_px(
        direction=direction,
        entry_px=after.entry,
        size=after.size,
        leverage=leverage,
        margin_mode=mode,
        market_max_leverage=rules.max_leverage,
        equity=account.equity,
        other_maintenance_usd=other_mm,
    )
    if liq is None or (stop - liq) * direction > 0:
        return liq, []
    return liq, [_reason(ReasonCode.STOP_BEYOND_LIQUIDATION,
                         f"the stop {_num(stop)} is at or beyond the estimated liquidation price "
                         f"{_num(liq.quantize(_CENT))} at {_num(leverage)}x {mode}; lower the leverage or "
                         "tighten the stop")]


def _evaluate_open(
    intent: OpenTrade, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    """Every rule of an open, in a fixed order; each failed rule adds its reason."""
    market = intent.market
    rules = account.markets.get(market)
    reasons = _gate(account, settings, state, now, rules, new_exposure=True)
    if rules is None:
        return _unknown_market("open", market, reasons)
    direction = 1 if intent.side == "long" else -1
    szd = rules.sz_decimals
    fee = settings.taker_fee_pct / _HUNDRED
    caps = _caps(settings, state, now)
    position = account.position(market)

    reasons += _agent_declarations(intent)
    reasons += _opposite_position(intent, position, direction)
    mode, why = _margin_mode(intent, position, rules, settings)
    reasons += why
    leverage = _open_leverage(intent, position, rules, settings, reasons)
    e = _entry_prices(intent, rules, settings, direction, fee)
    entry, stop, order_px = e.entry, e.stop, e.order_px
    reasons += _stop_side(intent, e, rules.mark_px)
    take_profit, why = _take_profit(intent, e, direction, szd)
    reasons += why
    reward_risk, why = _target(intent, e, direction, settings)
    reasons += why

    if not e.stop_ok:
        if intent.risk_usd > caps.per_trade_usd:
            reasons.append(_per_trade_reason(intent.risk_usd, None, caps, settings))
        return _refused("open", market, reasons, side=intent.side, price=order_px, stop_px=stop, leverage=leverage,
                        margin_mode=mode, expected_entry_px=entry, worst_entry_px=order_px)

    per_unit = abs(entry - stop) + fee * (entry + stop)
    size = (e.market_size if e.market_size is not None
            else round_size_down(_FLOOR.divide(intent.risk_usd, per_unit), szd))
    notional = size * entry
    margin = size * order_px / leverage  # the exchange reserves margin at the order's limit
    reasons += _order_value(size, entry, per_unit, notional, szd, settings)
    after = _after_fill(position, direction, size, entry, stop, fee, settings)
    reasons += _per_trade_cap(intent, after, caps, settings)
    other_mm, why = _portfolio_and_market_caps(market, after.added, account, caps, settings)
    reasons += why
    reasons += _margin(margin, notional, leverage, account)
    liq, why = _liquidation(after, direction, stop, leverage, mode, rules, account, other_mm)
    reasons += why

    return Verdict(
        approved=not reasons,
        kind="open",
        market=market,
        reasons=tuple(reasons),
        side=intent.side,
        size=size,
        price=order_px,
        stop_px=stop,
        take_profit_px=take_profit,
        target_px=intent.target_px,
        expected_entry_px=entry,
        worst_entry_px=order_px,
        risk_at_worst_usd=size * (abs(order_px - stop) + fee * (order_px + stop)),
        leverage=leverage,
        margin_mode=mode,
        notional=notional,
        risk_usd=size * per_unit,
        position_risk_usd=after.position_risk,
        est_fees_usd=size * fee * (entry + stop),
        est_liquidation_px=liq,
        reward_risk=reward_risk,
        margin_usd=margin,
    )


# ------------------------------------------------------------------------------ always-allowed


def _close_price(rules: MarketRules, direction: int, settings: RiskSettings) -> Decimal:
    """Market close priced at the slippage bound: a long's close sells at `ref * (1 - slip)` (rounded up),
    a short's buys at `ref * (1 + slip)` (rounded down)."""
    slip = settings.max_slippage_pct / _HUNDRED
    closing_is_buy = direction < 0
    return round_price(
        rules.reference_px * (_ONE - direction * slip), rules.sz_decimals, is_buy=closing_is_buy
    )


def _evaluate_close(
    intent: ClosePosition, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    position = account.position(intent.market)
    if position is None:
        return _no_position("close", intent.market, "to close")
    rules = account.markets[intent.market]
    full = abs(position.size)
    size = (
        full if intent.fraction == 1 else min(full, round_size_up(full * intent.fraction, rules.sz_decimals))
    )
    price = _close_price(rules, position.direction, settings)
    warnings: list[Reason] = []
    if size < full and size * price < MIN_ORDER_USD:
        warnings.append(
            Reason(
                code=ReasonCode.BELOW_MIN_NOTIONAL,
                message=(
                    f"a partial close worth {_usd(size * price)} USD is under Hyperliquid's 10 USD minimum "
                    "and may be rejected; close all instead"
                ),
            )
        )
    return Verdict(
        approved=True,
        kind="close",
        market=intent.market,
        warnings=tuple(warnings),
        side="sell" if position.direction > 0 else "buy",
        size=size,
        price=price,
        reduce_only=True,
        notional=size * price,
    )


def _stop_wrong_side(position: PositionView, stop: Decimal, mark: Decimal) -> Reason | None:
    if (mark - stop) * position.direction > 0:
        return None
    where = "below" if position.direction > 0 else "above"
    return Reason(
        code=ReasonCode.STOP_WRONG_SIDE,
        message=(
            f"the {_side_word(position.direction)}'s stop must be {where} the mark "
            f"{_num(mark)}; got {_num(stop)} "
            "(it would fire at once: close the position instead)"
        ),
    )


def _cap_stop(position: PositionView, cap: Decimal, settings: RiskSettings) -> Decimal:
    """The stop at which the position's open risk (exit fee included) equals `cap`.

    long: `S*(e - s) + S*s*f = cap` -> `s = (S*e - cap) / (S*(1 - f))`;
    short: `S*(s - e) + S*s*f = cap` -> `s = (S*e + cap) / (S*(1 + f))`.
    """
    size = abs(position.size)
    fee = settings.taker_fee_pct / _HUNDRED
    if position.direction > 0:
        return (size * position.entry_px - cap) / (size * (_ONE - fee))
    return (size * position.entry_px + cap) / (size * (_ONE + fee))


def _evaluate_ensure_stop(
    intent: EnsureStop, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    position = account.position(intent.market)
    if position is None:
        return _no_position("ensure_stop", intent.market, "to protect")
    rules = account.markets[intent.market]
    direction = position.direction
    warnings: list[Reason] = []
    raw = intent.stop_px
    mark = rules.mark_px
    if raw is None:
        raw = _cap_stop(position, _caps(settings, state, now).per_trade_usd, settings)
        liq = position.liquidation_px
        if liq is not None and (raw - liq) * direction <= 0:
            raw = liq * (_ONE + direction * Decimal("0.002"))
        if (mark - raw) * direction <= 0:
            # the position already lost more than the cap: protect it just beyond the mark rather than
            # place a stop that fires at once (a trim or a close is the trader's call)
            raw = mark * (_ONE - direction * _BEYOND_MARK)
        if raw <= 0:
            raw = position.entry_px / 2
    stop = round_price(raw, rules.sz_decimals, is_buy=direction < 0)
    if intent.stop_px is None and (mark - stop) * direction <= 0:
        # a derived stop that rounding brought onto the mark: protect just beyond it instead (never refuse)
        stop = round_price(mark * (_ONE - direction * _BEYOND_MARK), rules.sz_decimals, is_buy=direction < 0)
    common: dict[str, Any] = {
        "side": "sell" if direction > 0 else "buy",
        "size": abs(position.size),
        "price": stop,
        "stop_px": stop,
        "reduce_only": True,
    }
    wrong = _stop_wrong_side(position, stop, mark)
    if wrong is not None:
        return _refused("ensure_stop", intent.market, [wrong], **common)
    live = position.stop_px
    if intent.stop_px is not None and live is not None and (live - stop) * direction > 0:
        return _refused(
            "ensure_stop",
            intent.market,
            [
                Reason(
                    code=ReasonCode.STOP_LOOSER,
                    message=(
                        f"a stop at {_num(stop)} is looser than the live stop {_num(live)}; "
                        "protect at the live stop, or loosen it with modify_stop (new risk)"
                    ),
                )
            ],
            **common,
        )
    return Verdict(
        approved=True,
        kind="ensure_stop",
        market=intent.market,
        warnings=tuple(warnings),
        risk_usd=open_risk(position.model_copy(update={"stop_px": stop}), settings),
        **common,
    )


def _evaluate_modify_stop(
    intent: ModifyStop, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    position = account.position(intent.market)
    if position is None:
        return _no_position("modify_stop", intent.market, "whose stop to move")
    rules = account.markets[intent.market]
    direction = position.direction
    stop = round_price(intent.stop_px, rules.sz_decimals, is_buy=direction < 0)
    moved = position.model_copy(update={"stop_px": stop})
    new_risk = open_risk(moved, settings)
    common: dict[str, Any] = {
        "side": "sell" if direction > 0 else "buy",
        "size": abs(position.size),
        "price": stop,
        "stop_px": stop,
        "reduce_only": True,
        "risk_usd": new_risk,
        "leverage": position.leverage,
        "margin_mode": position.margin_mode,
        "est_liquidation_px": position.liquidation_px,
    }
    wrong = _stop_wrong_side(position, stop, rules.mark_px)
    if wrong is not None:
        return _refused("modify_stop", intent.market, [wrong], **common)
    old_risk = open_risk(position, settings)
    if position.stop_px is None or new_risk <= old_risk:
        return Verdict(approved=True, kind="modify_stop", market=intent.market, **common)

    # loosening: new risk, checked like a new trade
    reasons = _gate(account, settings, state, now, rules, new_exposure=True)
    caps = _caps(settings, state, now)
    added = new_risk - old_risk
    if new_risk > caps.per_trade_usd:  # the per-trade cap binds the trade's open risk, not the change
        reasons.append(
            Reason(
                code=ReasonCode.RISK_PER_TRADE,
                message=(
                    f"moving the stop to {_num(stop)} puts the trade's open risk at {_usd(new_risk)} USD "
                    f"(+{_usd(added)} USD), over the per-trade cap {_usd(caps.per_trade_usd)} USD"
                ),
            )
        )
    total, in_market, _ = _exposure(account, settings, intent.market)
    if total + added > caps.portfolio_usd:
        reasons.append(
            Reason(
                code=ReasonCode.PORTFOLIO_RISK,
                message=(
                    f"open risk {_usd(total)} USD + {_usd(added)} USD from the looser stop exceeds "
                    "the portfolio cap "
                    f"{_usd(caps.portfolio_usd)} USD; at most "
                    f"{_usd(max(_ZERO, caps.portfolio_usd - total))} USD "
                    "can be added"
                ),
            )
        )
    if in_market + added > caps.market_usd:
        reasons.append(
            Reason(
                code=ReasonCode.MARKET_RISK,
                message=(
                    f"{intent.market} open risk {_usd(in_market)} USD + {_usd(added)} USD from the "
                    "looser stop exceeds "
                    f"the per-market cap {_usd(caps.market_usd)} USD; at most "
                    f"{_usd(max(_ZERO, caps.market_usd - in_market))} USD can be added"
                ),
            )
        )
    liq = position.liquidation_px
    if liq is not None and liq > 0 and (stop - liq) * direction <= 0:
        reasons.append(
            Reason(
                code=ReasonCode.STOP_BEYOND_LIQUIDATION,
                message=f"the stop {_num(stop)} is at or beyond the liquidation price {_num(liq)}",
            )
        )
    return Verdict(
        approved=not reasons, kind="modify_stop", market=intent.market, reasons=tuple(reasons), **common
    )


def _evaluate_set_target(
    intent: SetTarget, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    position = account.position(intent.market)
    if position is None:
        return _no_position("set_target", intent.market, "to set a target on")
    rules = account.markets[intent.market]
    direction = position.direction
    side = _side_word(direction)
    where = "above" if direction > 0 else "below"
    reasons: list[Reason] = []
    if intent.target_px is not None and (intent.target_px - position.entry_px) * direction <= 0:
        reasons.append(
            Reason(
                code=ReasonCode.TARGET_WRONG_SIDE,
                message=(
                    f"the {side}'s target must be {where} the entry {_num(position.entry_px)}; "
                    f"got {_num(intent.target_px)}"
                ),
            )
        )
    take_profit = None
    if intent.take_profit_px is not None:
        take_profit = round_price(intent.take_profit_px, rules.sz_decimals, is_buy=direction < 0)
        if (take_profit - rules.mark_px) * direction <= 0:
            reasons.append(
                Reason(
                    code=ReasonCode.TAKE_PROFIT_WRONG_SIDE,
                    message=(
                        f"the {side}'s take-profit must be {where} the mark {_num(rules.mark_px)}; "
                        f"got {_num(take_profit)}"
                    ),
                )
            )
        reasons.extend(_rate_limit(state, now, settings))
    return Verdict(
        approved=not reasons,
        kind="set_target",
        market=intent.market,
        reasons=tuple(reasons),
        side="sell" if direction > 0 else "buy",
        size=abs(position.size) if take_profit is not None else None,
        price=take_profit,
        take_profit_px=take_profit,
        target_px=intent.target_px,
        reduce_only=take_profit is not None,
    )


def _uncovered_message(ident: object, trigger_px: Decimal, position: PositionView, covered: Decimal) -> str:
    size = abs(position.size)
    return (
        f"cancelling stop {ident} at {_num(trigger_px)} would leave {_num(size - covered)} of the "
        f"{_side_word(position.direction)} {_num(size)} {position.market} without a stop; "
        "move it with modify_stop"
    )


def _evaluate_cancel(
    intent: CancelOrder, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    market = intent.market
    if intent.oid is None and intent.cloid is None:
        return _refused(
            "cancel", market, [Reason(code=ReasonCode.UNKNOWN_ORDER, message="give the order's oid or cloid")]
        )

    def matches(oid: int | None, cloid: str | None) -> bool:
        return (intent.oid is not None and oid == intent.oid) or (
            intent.cloid is not None and cloid == intent.cloid
        )

    for e in account.entries:
        if e.market == market and matches(e.oid, e.cloid):
            return Verdict(approved=True, kind="cancel", market=market, oid=e.oid, cloid=e.cloid)
    for t in account.triggers:
        if t.market != market or not matches(t.oid, t.cloid):
            continue
        position = account.position(market)
        if t.kind == "stop" and position is not None:
            closing = "sell" if position.direction > 0 else "buy"
            if t.side == closing:
                covered = sum(
                    (
                        o.size
                        for o in account.triggers
                        if o.market == market and o.kind == "stop" and o.side == closing and o is not t
                    ),
                    _ZERO,
                )
                if covered < abs(position.size):
                    return _refused(
                        "cancel",
                        market,
                        [
                            Reason(
                                code=ReasonCode.CANCEL_PROTECTIVE_STOP,
                                message=_uncovered_message(t.oid or t.cloid, t.trigger_px, position, covered),
                            )
                        ],
                        oid=t.oid,
                        cloid=t.cloid,
                    )
        return Verdict(approved=True, kind="cancel", market=market, oid=t.oid, cloid=t.cloid)
    ident = f"oid {intent.oid}" if intent.oid is not None else f"cloid {intent.cloid}"
    return _refused(
        "cancel",
        market,
        [Reason(code=ReasonCode.UNKNOWN_ORDER, message=f"no resting {market} order with {ident}")],
    )


def _evaluate_set_leverage(
    intent: SetLeverage, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    market = intent.market
    rules = account.markets.get(market)
    if rules is None:
        return _unknown_market("set_leverage", market, [])
    position = account.position(market)
    current = (
        rules.leverage
        if rules.leverage is not None
        else (position.leverage if position is not None else None)
    )
    reasons: list[Reason] = []
    if current is None or intent.leverage > current:
        reasons.extend(_gate(account, settings, state, now, rules, new_exposure=False))
    _check_leverage(intent.leverage, settings, rules, reasons)
    mode = intent.margin_mode or (position.margin_mode if position is not None else settings.margin_mode)
    if rules.only_isolated and mode == "cross":
        reasons.append(
            Reason(code=ReasonCode.ISOLATED_ONLY, message=f"{market} trades with isolated margin only")
        )
    return Verdict(
        approved=not reasons,
        kind="set_leverage",
        market=market,
        reasons=tuple(reasons),
        leverage=intent.leverage,
        margin_mode=mode,
    )


def _evaluate_adjust_margin(
    intent: AdjustMargin, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    """Isolated margin in or out. Adding moves the liquidation away: allowed in every state (the
    exchange checks the withdrawable balance). Removing moves it closer: new risk, gated like a
    higher leverage, and never more than the available margin would allow back."""
    market = intent.market
    rules = account.markets.get(market)
    if rules is None:
        return _unknown_market("adjust_margin", market, [])
    position = account.position(market)
    if position is None:
        return _no_position("adjust_margin", market, "to move margin for")
    reasons: list[Reason] = []
    if position.margin_mode != "isolated":
        reasons.append(Reason(code=ReasonCode.ISOLATED_ONLY,
                              message=f"the {market} position uses cross margin: only an isolated position has "
                                      "its own margin to adjust (set_leverage with margin_mode isolated first, "
                                      "with no position open)"))
    if intent.op == "add" and intent.usd > account.available_margin:
        reasons.append(Reason(code=ReasonCode.MARGIN,
                              message=f"adding ${_num(intent.usd)} needs that much available margin "
                                      f"(${_num(account.available_margin)} available)"))
    if intent.op == "remove":
        reasons.extend(_gate(account, settings, state, now, rules, new_exposure=False))
    return Verdict(approved=not reasons, kind="adjust_margin", market=market, reasons=tuple(reasons),
                   margin_mode=position.margin_mode, margin_usd=intent.usd)


_Evaluator = Callable[[Any, AccountView, RiskSettings, RiskState, datetime], Verdict]
_DISPATCH: dict[type, _Evaluator] = {
    OpenTrade: _evaluate_open,
    ClosePosition: _evaluate_close,
    ModifyStop: _evaluate_modify_stop,
    EnsureStop: _evaluate_ensure_stop,
    SetTarget: _evaluate_set_target,
    CancelOrder: _evaluate_cancel,
    SetLeverage: _evaluate_set_leverage,
    AdjustMargin: _evaluate_adjust_margin,
}

Intent = OpenTrade | ClosePosition | ModifyStop | EnsureStop | SetTarget | CancelOrder | SetLeverage | AdjustMargin


def evaluate(
    intent: Intent, account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> Verdict:
    """Judge `intent` against `account`, `settings` and `state` at `now` (aware UTC). Pure and total:
    it never raises for a bad intent, whatever its numbers (NaN, infinite, out of bounds, or built
    without validation): every problem is a reason in the verdict. An approved verdict's prices are on
    the market's tick grid and positive. Callers: the gateway (every order), `risk check`, tools
    that preview a trade."""
    handler = _DISPATCH.get(type(intent))
    if handler is None:
        raise TypeError(f"not an order intent: {type(intent).__name__}")
    kind = _KINDS[type(intent)]
    market = str(getattr(intent, "market", ""))
    bad = _bad_numbers(intent)
    if bad:
        return _refused(kind, market, [Reason(code=ReasonCode.INVALID_NUMBER, message="; ".join(bad))])
    try:
        verdict = handler(intent, account, settings, state, now)
    except (ArithmeticError, ValueError, TypeError) as exc:  # decimal.InvalidOperation is an ArithmeticError
        return _refused(
            kind,
            market,
            [Reason(code=ReasonCode.INVALID_NUMBER,
                    message=f"the numbers of this {kind} cannot be judged ({type(exc).__name__})")],
        )
    if verdict.approved:
        return _check_grid(verdict, account)
    return verdict


_KINDS: dict[type, str] = {
    OpenTrade: "open",
    ClosePosition: "close",
    ModifyStop: "modify_stop",
    EnsureStop: "ensure_stop",
    SetTarget: "set_target",
    CancelOrder: "cancel",
    SetLeverage: "set_leverage",
    AdjustMargin: "adjust_margin",
}
_BOUNDS: dict[str, Decimal] = {"risk_usd": MAX_USD, "usd": MAX_USD, "leverage": Decimal(1000), "fraction": _ONE}


_NUMERIC_FIELDS: dict[type, tuple[tuple[str, Decimal], ...]] = {
    cls: tuple(
        (name, _BOUNDS.get(name, MAX_PRICE))
        for name in model.model_fields
        if name not in ("conviction", "oid", "cloid", "market", "origin", "kind", "side", "margin_mode", "thesis",
                        "invalidation", "op", "entry_ttl")
    )
    for cls in _KINDS
    for model in (cast("type[BaseModel]", cls),)
}


def _bad_numbers(intent: Any) -> list[str]:
    """Every numeric field that is not a finite number in (0, bound]: intents are validated where
    they enter (tools, CLI, commands), but `evaluate` must hold for one built without validation."""
    out: list[str] = []
    values = intent.__dict__
    for name, bound in _NUMERIC_FIELDS[type(intent)]:
        value = values.get(name)
        if value is None:
            continue
        if type(value) is Decimal and value.is_finite() and _ZERO < value <= bound:
            continue
        if type(value) is not Decimal and not isinstance(value, int | float):
            out.append(f"{name} must be a number, got {str(value)[:40]}")
            continue
        out.append(f"{name} must be a positive number at most {_num(bound)}, got {str(value)[:40]}")
    conviction = values.get("conviction")
    if conviction is not None and (not isinstance(conviction, int) or not 0 <= conviction <= 100):
        out.append(f"conviction must be 0-100, got {str(conviction)[:40]}")
    return out


def _check_grid(verdict: Verdict, account: AccountView) -> Verdict:
    """An approved verdict's prices must be valid on the exchange: positive and on the tick grid."""
    rules = account.markets.get(verdict.market)
    if rules is None:
        return verdict
    # every price a handler puts in a verdict comes from `round_price` (on the grid by construction);
    # what can still go wrong is a price that rounds to nothing
    bad = [
        f"{name} {_num(px)}"
        for name, px in (("price", verdict.price), ("stop_px", verdict.stop_px),
                         ("take_profit_px", verdict.take_profit_px))
        if px is not None and (px <= 0 or (px < _ONE and not is_on_tick(px, rules.sz_decimals)))
    ]
    if not bad:
        return verdict
    reason = Reason(
        code=ReasonCode.INVALID_PRICE,
        message=(f"{', '.join(bad)} is not a valid {verdict.market} price once rounded to the tick grid "
                 f"({rules.sz_decimals} size decimals)"),
    )
    return verdict.model_copy(update={"approved": False, "reasons": (*verdict.reasons, reason)})
