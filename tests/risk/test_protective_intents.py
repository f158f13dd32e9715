"""Closes, stops, cancels, targets and leverage: what always passes, and what is checked like new risk."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from revagent.risk import (
    AccountView,
    CancelOrder,
    ClosePosition,
    EnsureStop,
    ModifyStop,
    PositionView,
    RiskSettings,
    RiskState,
    SetLeverage,
    SetTarget,
    evaluate,
    halt,
    note_order_sent,
)
from tests.risk.builders import (
    DEFAULT_MARKETS,
    FRESH,
    NOW,
    account,
    entry_order,
    market,
    position,
    stop_order,
)

D = Decimal
SETTINGS = RiskSettings()


def _worst_state() -> RiskState:
    """Halted and locked with the rate limit exhausted."""
    state = RiskState(locked_until=NOW + timedelta(hours=5), lock_reason="max_drawdown")
    for _ in range(40):
        state = note_order_sent(state, NOW)
    return halt(state, NOW, "human")


def _worst_account(positions: tuple[PositionView, ...]) -> AccountView:
    stale = {**DEFAULT_MARKETS, "BTC": market(price_time=NOW - timedelta(hours=1))}
    return account(sync_phase="failed", markets=stale, positions=positions)


LONG = position("BTC", "0.01", "60000", stop="59000")


@pytest.mark.parametrize("state", [FRESH, _worst_state()], ids=["active", "halted+locked+rate-limited"])
def test_close_always_passes_at_the_slippage_bound(state: RiskState) -> None:
    acct = account(positions=(LONG,))
    v = evaluate(ClosePosition(market="BTC"), acct, SETTINGS, state, NOW)
    # a long's close sells: 60000 * 0.99 = 59400 (sell prices round up)
    assert v.approved and v.reduce_only
    assert (v.side, v.size, v.price) == ("sell", D("0.01"), D(59400))
    acct = _worst_account(positions=(LONG,))
    assert evaluate(ClosePosition(market="BTC"), acct, SETTINGS, state, NOW).approved


def test_partial_close_rounds_up_and_warns_under_the_minimum() -> None:
    acct = account(positions=(position("BTC", "-0.01001", "60000", stop="61000"),))
    v = evaluate(ClosePosition(market="BTC", fraction=D("0.5")), acct, SETTINGS, FRESH, NOW)
    # 0.01001 * 0.5 = 0.005005 -> 0.00501 (a close rounds up: it never leaves more than asked)
    # a short's close buys at 60000 * 1.01 = 60600; 0.00501 * 60600 = 303.606 USD
    assert v.approved and (v.side, v.size, v.price) == ("buy", D("0.00501"), D(60600))
    assert v.warnings == ()
    acct = account(positions=(position("BTC", "0.0002", "60000", stop="59000"),))
    v = evaluate(ClosePosition(market="BTC", fraction=D("0.5")), acct, SETTINGS, FRESH, NOW)
    # 0.0001 * 59400 = 5.94 USD < 10: approved, with a warning
    assert v.approved and [w.code.value for w in v.warnings] == ["below_min_notional"]


def test_close_without_a_position() -> None:
    assert evaluate(ClosePosition(market="BTC"), account(), SETTINGS, FRESH, NOW).codes == ["no_position"]


def test_tightening_a_stop_always_passes() -> None:
    acct = _worst_account(positions=(LONG,))
    v = evaluate(ModifyStop(market="BTC", stop_px=D(59500)), acct, SETTINGS, _worst_state(), NOW)
    # risk 0.01 * (1000 + 26.55) = 10.2655 -> 0.01 * (500 + 59500 * 0.00045) = 5.26775
    assert v.approved, v.explain()
    assert v.risk_usd == D("5.26775")
    assert (v.stop_px, v.size, v.side) == (D(59500), D("0.01"), "sell")


def test_a_first_stop_is_protective() -> None:
    acct = account(positions=(position("BTC", "0.01", "60000"),))
    assert evaluate(ModifyStop(market="BTC", stop_px=D(50000)), acct, SETTINGS, _worst_state(), NOW).approved


def test_loosening_a_stop_is_new_risk() -> None:
    acct = account(positions=(LONG,))
    intent = ModifyStop(market="BTC", stop_px=D(58000))
    # 10.2655 -> 0.01 * (2000 + 58000 * 0.00045) = 20.261: adds 9.9955 USD
    v = evaluate(intent, acct, SETTINGS, FRESH, NOW)
    assert v.approved and v.risk_usd == D("20.261")
    assert evaluate(intent, acct, SETTINGS, _worst_state(), NOW).codes == ["halted", "locked", "rate_limit"]
    # 9.9955 added to a per-trade cap of 5
    small = RiskSettings(max_risk_per_trade_usd=D(5))
    v = evaluate(intent, acct, small, FRESH, NOW)
    assert v.codes == ["risk_per_trade"] and "9.99 USD" in v.reasons[0].message
    # another 85 USD elsewhere: 10.2655 + 85 + 9.9955 = 105.26 > 100
    busy = account(positions=(LONG,), entries=(entry_order("ETH", "long", "1", "2900", "85"),))
    v = evaluate(intent, busy, SETTINGS, FRESH, NOW)
    assert v.codes == ["portfolio_risk"] and "4.73 USD" in v.reasons[0].message  # 100 - 95.2655
    # in BTC alone: a 35 USD BTC entry -> 10.2655 + 35 + 9.9955 = 55.26 > 40
    btc_entry = entry_order("BTC", "long", "0.01", "59000", "35")
    v = evaluate(intent, account(positions=(LONG,), entries=(btc_entry,)), SETTINGS, FRESH, NOW)
    assert v.codes == ["market_risk"]


def test_a_looser_stop_must_stay_inside_liquidation() -> None:
    acct = account(positions=(position("BTC", "0.01", "60000", stop="59000", liquidation_px=D(58500)),))
    v = evaluate(ModifyStop(market="BTC", stop_px=D(58400)), acct, SETTINGS, FRESH, NOW)
    assert v.codes == ["stop_beyond_liquidation"]


def test_a_stop_through_the_mark_is_refused() -> None:
    acct = account(positions=(LONG,))
    v = evaluate(ModifyStop(market="BTC", stop_px=D(60500)), acct, SETTINGS, FRESH, NOW)
    assert v.codes == ["stop_wrong_side"]
    assert "60500" in v.reasons[0].message and "close" in v.reasons[0].message


def test_ensure_stop_at_the_per_trade_cap() -> None:
    acct = _worst_account(positions=(position("BTC", "0.01", "60000"),))
    v = evaluate(EnsureStop(market="BTC"), acct, SETTINGS, _worst_state(), NOW)
    # long: s = (0.01 * 60000 - 25) / (0.01 * (1 - 0.00045)) = 575 / 0.0099955 = 57525.88... -> 57526 (up)
    # risk at 57526: 0.01 * (2474 + 57526 * 0.00045) = 24.998867 <= 25
    assert v.approved and v.reduce_only
    assert v.stop_px == D(57526)
    assert v.risk_usd == D("24.998867")
    acct = account(positions=(position("BTC", "-0.01", "60000"),))
    v = evaluate(EnsureStop(market="BTC"), acct, SETTINGS, FRESH, NOW)
    # short: s = (600 + 25) / (0.01 * 1.00045) = 62471.88... -> 62471 (a buy rounds down)
    assert v.approved and v.stop_px == D(62471) and v.side == "buy"


def test_ensure_stop_with_a_planned_price_and_without_a_position() -> None:
    acct = account(positions=(position("BTC", "0.01", "60000"),))
    v = evaluate(EnsureStop(market="BTC", stop_px=D("58999.5")), acct, SETTINGS, _worst_state(), NOW)
    assert v.approved and v.stop_px == D(59000)
    assert evaluate(EnsureStop(market="ETH"), acct, SETTINGS, FRESH, NOW).codes == ["no_position"]


def test_ensure_stop_through_the_mark_is_placed_just_beyond_the_mark() -> None:
    # the long is already 6% down: the stop at the cap would be above the mark and fire at once, so
    # the protective stop goes 0.2% beyond the mark instead (an approved stop is always protective)
    acct = account(
        positions=(position("BTC", "0.01", "60000", mark="56000"),),
        markets={**DEFAULT_MARKETS, "BTC": market(mark="56000")},
    )
    v = evaluate(EnsureStop(market="BTC"), acct, SETTINGS, FRESH, NOW)
    assert v.approved and not v.warnings
    assert v.stop_px == D("55888")


def test_cancels() -> None:
    acct = account(
        positions=(LONG,),
        entries=(entry_order("ETH", "long", "1", "2900", "20", oid=7),),
        triggers=(
            stop_order("BTC", "sell", "0.01", "59000", oid=11),
            stop_order("BTC", "sell", "0.01", "63000", oid=12, kind="take_profit"),
            stop_order("SOL", "sell", "1", "140", oid=13),
        ),
    )
    worst = _worst_state()
    assert evaluate(CancelOrder(market="ETH", oid=7), acct, SETTINGS, worst, NOW).approved
    assert evaluate(CancelOrder(market="BTC", oid=12), acct, SETTINGS, worst, NOW).approved
    assert evaluate(CancelOrder(market="SOL", oid=13), acct, SETTINGS, worst, NOW).approved  # flat market
    v = evaluate(CancelOrder(market="BTC", oid=11), acct, SETTINGS, FRESH, NOW)
    assert v.codes == ["cancel_protective_stop"] and "0.01" in v.reasons[0].message
    assert evaluate(CancelOrder(market="BTC", oid=99), acct, SETTINGS, FRESH, NOW).codes == ["unknown_order"]
    assert evaluate(CancelOrder(market="BTC"), acct, SETTINGS, FRESH, NOW).codes == ["unknown_order"]
    # a second stop covers the position: the first may go
    covered = acct.model_copy(
        update={"triggers": (*acct.triggers, stop_order("BTC", "sell", "0.01", "59500", oid=14))}
    )
    assert evaluate(CancelOrder(market="BTC", oid=11), covered, SETTINGS, FRESH, NOW).approved


def test_set_target() -> None:
    acct = account(positions=(LONG,))
    v = evaluate(
        SetTarget(market="BTC", target_px=D(64000), take_profit_px=D("63000.2")), acct, SETTINGS, FRESH, NOW
    )
    assert v.approved and v.take_profit_px == D(63001) and v.reduce_only
    v = evaluate(
        SetTarget(market="BTC", target_px=D(59000), take_profit_px=D(59900)), acct, SETTINGS, FRESH, NOW
    )
    assert v.codes == ["target_wrong_side", "take_profit_wrong_side"]
    assert evaluate(SetTarget(market="BTC", target_px=D(64000)), account(), SETTINGS, FRESH, NOW).codes == [
        "no_position"
    ]
    # only the plan's target changes in a lock: it passes
    assert evaluate(SetTarget(market="BTC", target_px=D(64000)), acct, SETTINGS, _worst_state(), NOW).approved


def test_set_leverage() -> None:
    acct = account(markets={**DEFAULT_MARKETS, "BTC": market(leverage=D(3))})
    assert evaluate(SetLeverage(market="BTC", leverage=D(5)), acct, SETTINGS, FRESH, NOW).approved
    assert evaluate(SetLeverage(market="BTC", leverage=D(6)), acct, SETTINGS, FRESH, NOW).codes == [
        "leverage"
    ]
    locked = RiskState(locked_until=NOW + timedelta(hours=1), lock_reason="daily_loss")
    assert evaluate(SetLeverage(market="BTC", leverage=D(4)), acct, SETTINGS, locked, NOW).codes == ["locked"]
    assert evaluate(SetLeverage(market="BTC", leverage=D(2)), acct, SETTINGS, locked, NOW).approved
    assert evaluate(SetLeverage(market="XYZ", leverage=D(2)), acct, SETTINGS, FRESH, NOW).codes == [
        "unknown_market"
    ]
