"""OpenTrade: sizing from the stop, pricing, every cap and every reason code, with hand-worked numbers.

Default settings: per-trade cap 25, portfolio cap 100, per-market 40% of it (40), min R:R 1,
max leverage 5, max order 10000 USD, slippage 1%, price age 10s, taker fee 0.045% (f = 0.00045).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from revagent.risk import (
    OpenTrade,
    ReasonCode,
    RiskSettings,
    RiskState,
    evaluate,
    halt,
    is_on_lot,
    is_on_tick,
    note_order_sent,
)
from tests.risk.builders import DEFAULT_MARKETS, FRESH, NOW, account, entry_order, market, position

D = Decimal
SETTINGS = RiskSettings()


def open_(**fields: Any) -> OpenTrade:
    fields.setdefault("market", "BTC")
    fields.setdefault("side", "long")
    fields.setdefault("origin", "human")
    return OpenTrade.model_validate(fields)


AGENT_LONG = {
    "origin": "agent",
    "entry_px": "60000",
    "stop_px": "59000",
    "target_px": "63000",
    "conviction": 70,
    "risk_usd": "25",
}


def test_agent_limit_long_is_sized_from_the_stop_with_round_trip_fees() -> None:
    v = evaluate(open_(**AGENT_LONG), account(), SETTINGS, FRESH, NOW)
    assert v.approved, v.explain()
    # per unit: |60000 - 59000| + 0.00045 * (60000 + 59000) = 1000 + 53.55 = 1053.55
    # size: 25 / 1053.55 = 0.0237293... -> 0.02372 (BTC lot 0.00001, rounded down)
    assert v.size == D("0.02372")
    assert v.price == D(60000)
    assert v.stop_px == D(59000)
    # risk: 0.02372 * 1053.55 = 24.990206 (<= 25); fees: 0.02372 * 53.55 = 1.270206
    assert v.risk_usd == D("24.990206")
    assert v.est_fees_usd == D("1.270206")
    # notional 0.02372 * 60000 = 1423.2; leverage min(5 settings, 40 exchange) = 5; margin 284.64
    assert v.notional == D("1423.2")
    assert v.leverage == D(5)
    assert v.margin_usd == D("284.64")
    # reward:risk |63000 - 60000| / |60000 - 59000| = 3
    assert v.reward_risk == D(3)
    # cross with 10000 equity: 10000 - 1423.2/80 far exceeds the position: no liquidation price
    assert v.est_liquidation_px is None
    assert v.margin_mode == "cross"
    assert not v.reduce_only


def test_market_long_is_priced_at_the_slippage_bound() -> None:
    acct = account(markets={**DEFAULT_MARKETS, "BTC": market(mid="60000", mark="60010")})
    v = evaluate(open_(stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW)
    assert v.approved, v.explain()
    # entry: mid 60000 * 1.01 = 60600 (the mid, not the mark, prices a market order)
    assert v.price == D(60600)
    # per unit: 1600 + 0.00045 * (60600 + 59000) = 1653.82; 25 / 1653.82 = 0.015116... -> 0.01511
    assert v.size == D("0.01511")
    # 0.01511 * 1653.82 = 24.9892202
    assert v.risk_usd == D("24.9892202")


def test_market_short_rounds_its_sell_price_up() -> None:
    acct = account(markets={**DEFAULT_MARKETS, "ETH": market("ETH", sz_decimals=4, mark="3000.33")})
    v = evaluate(open_(market="ETH", side="short", stop_px="3100", risk_usd="20"), acct, SETTINGS, FRESH, NOW)
    assert v.approved, v.explain()
    # 3000.33 * 0.99 = 2970.3267 -> 5 significant figures, sell rounds up: 2970.4
    assert v.price == D("2970.4")
    # per unit: 129.6 + 0.00045 * 6070.4 = 129.6 + 2.73168 = 132.33168; 20 / 132.33168 = 0.15113... -> 0.1511
    assert v.size == D("0.1511")
    assert v.side == "short"


def test_prices_are_rounded_so_risk_never_grows() -> None:
    # long: entry 60000.7 is a buy -> 60000 (down); stop 59000.4 is a sell -> 59001 (up, toward entry)
    v = evaluate(open_(entry_px="60000.7", stop_px="59000.4", risk_usd="25"), account(), SETTINGS, FRESH, NOW)
    assert (v.price, v.stop_px) == (D(60000), D(59001))
    assert v.risk_usd is not None and v.risk_usd <= D(25)
    assert v.size is not None and is_on_lot(v.size, 5)
    assert v.price is not None and v.stop_px is not None
    assert is_on_tick(v.price, 5) and is_on_tick(v.stop_px, 5)


def test_under_the_minimum_order_says_the_smallest_risk_that_works() -> None:
    intent = open_(market="DOGE", entry_px="0.2", stop_px="0.19", risk_usd="0.5")
    v = evaluate(intent, account(), SETTINGS, FRESH, NOW)
    # per unit 0.01 + 0.00045 * 0.39 = 0.0101755; 0.5 / 0.0101755 = 49.1 -> 49 DOGE = 9.80 USD < 10
    # smallest size: 10 / 0.2 = 50 -> risk 50 * 0.0101755 = 0.508775 -> 0.51 USD (rounded up)
    assert v.codes == ["min_notional"]
    assert "9.80 USD" in v.reasons[0].message
    assert "0.51 USD" in v.reasons[0].message


def test_order_notional_cap_says_the_largest_risk_that_fits() -> None:
    v = evaluate(open_(entry_px="60000", stop_px="59990", risk_usd="25"), account(), SETTINGS, FRESH, NOW)
    # per unit 10 + 0.00045 * 119990 = 63.9955; 25 / 63.9955 = 0.39065 -> 23439 USD > 10000
    # largest size 10000 / 60000 = 0.16666 -> 0.16666 * 63.9955 = 10.6655 -> 10.66 USD
    assert "order_notional" in v.codes
    msg = v.reasons[v.codes.index("order_notional")].message
    assert "23439.00 USD" in msg and "10000" in msg and "10.66 USD" in msg


def test_per_trade_cap() -> None:
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="30"), account(), SETTINGS, FRESH, NOW)
    assert v.codes == ["risk_per_trade"]
    assert "30.00 USD" in v.reasons[0].message and "25.00 USD" in v.reasons[0].message


def test_penalty_scales_every_cap() -> None:
    state = RiskState(penalty=D("0.5"), updated_at=NOW, peak_equity=D(10000), equity=D(10000))
    # m = 0.5: per-trade 12.50, portfolio 50, per-market 20
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="15"), account(), SETTINGS, state, NOW)
    assert "risk_per_trade" in v.codes
    assert "12.50 USD" in v.reasons[v.codes.index("risk_per_trade")].message
    # BTC already holds 0.01 * (1000 + 26.55) = 10.2655; + 12.49 (new) = 22.76 > 20 (per-market),
    # and the trade after the add, 22.76, is over the per-trade 12.50 as well
    acct = account(positions=(position("BTC", "0.01", "60000", stop="59000"),))
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="12.5"), acct, SETTINGS, state, NOW)
    assert v.codes == ["risk_per_trade", "market_risk"]
    assert "20.00 USD" in v.reasons[1].message


def test_portfolio_cap_counts_positions_and_resting_entries() -> None:
    acct = account(
        positions=(position("ETH", "1", "3000", stop="2960"), position("SOL", "10", "150", stop="147")),
        entries=(entry_order("DOGE", "long", "100", "0.19", "10"),),
    )
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW)
    # ETH 1 * (40 + 2960 * 0.00045) = 41.332; SOL 10 * (3 + 147 * 0.00045) = 30.6615; DOGE entry 10
    # total 81.9935 + 24.990206 = 106.98 > 100; headroom 100 - 81.9935 = 18.0065 -> "18.00"
    assert v.codes == ["portfolio_risk"]
    msg = v.reasons[0].message
    assert "81.99 USD" in msg and "106.98 USD" in msg and "18.00 USD" in msg


def test_market_cap() -> None:
    acct = account(positions=(position("BTC", "0.02", "60000", stop="59000"),))
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW)
    # BTC 0.02 * (1000 + 59000 * 0.00045) = 20.531; + 24.990206 = 45.52 > 40; headroom 19.469 -> 19.46
    # (the trade after the add, 45.52, is over the per-trade cap 25 too: 25 - 20.53 = 4.46 can be added)
    assert v.codes == ["risk_per_trade", "market_risk"]
    assert "4.46 USD can be added" in v.reasons[0].message
    assert "45.52 USD" in v.reasons[1].message and "19.46 USD" in v.reasons[1].message


def test_stop_beyond_break_even_frees_the_budget() -> None:
    # the BTC long from 58000 has its stop above its entry: only the exit fee counts. An add at 60000
    # moves the whole position to 59000, still above the old part's entry: the merged position risks
    # about the add's own 1000 per unit less the 0.02 * 1000 locked in, far under every cap
    acct = account(positions=(position("BTC", "0.02", "58000", mark="60000", stop="59100"),))
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW)
    assert v.approved, v.explain()
    assert v.position_risk_usd is not None and v.position_risk_usd < D(10)


def test_a_position_without_a_stop_counts_its_whole_notional() -> None:
    acct = account(positions=(position("ETH", "0.03", "3000"),))  # 90 USD notional, no stop
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW)
    assert v.codes == ["portfolio_risk"]  # 90 + 24.99 > 100


def test_reward_risk_for_agent_trades_names_the_target_needed() -> None:
    v = evaluate(open_(**{**AGENT_LONG, "target_px": "60500"}), account(), SETTINGS, FRESH, NOW)
    # 500 / 1000 = 0.5 < 1.0; the target must reach 60000 + 1.0 * 1000 = 61000
    assert v.codes == ["reward_risk"]
    assert "0.50" in v.reasons[0].message and "61000" in v.reasons[0].message


def test_human_trades_need_no_target_or_conviction() -> None:
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), account(), SETTINGS, FRESH, NOW)
    assert v.approved
    assert v.reward_risk is None
    # a human's poor R:R is not refused either
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", target_px="60100", risk_usd="25"),
        account(),
        SETTINGS,
        FRESH,
        NOW,
    )
    assert v.approved and v.reward_risk == D("0.1")


def test_agent_trades_must_declare_target_and_conviction() -> None:
    intent = open_(origin="agent", entry_px="60000", stop_px="59000", risk_usd="25")
    assert evaluate(intent, account(), SETTINGS, FRESH, NOW).codes == [
        "target_required",
        "conviction_required",
    ]


def test_every_reason_is_given_at_once() -> None:
    acct = account(
        sync_phase="reconciling",
        markets={**DEFAULT_MARKETS, "BTC": market(price_time=NOW - timedelta(seconds=11))},
    )
    state = halt(FRESH, NOW, "agent")
    intent = open_(origin="agent", stop_px="61000", target_px="59000", risk_usd="40", leverage="7")
    v = evaluate(intent, acct, SETTINGS, state, NOW)
    assert not v.approved
    assert v.codes == [
        "halted",
        "not_synced",
        "stale_price",
        "conviction_required",
        "leverage",
        "stop_wrong_side",
        "target_wrong_side",
        "risk_per_trade",
    ]
    stale = v.reasons[2].message
    assert "11.0s" in stale and "10s" in stale


def test_stop_must_be_on_the_right_side_of_entry_and_mark() -> None:
    v = evaluate(open_(entry_px="59000", stop_px="59500", risk_usd="25"), account(), SETTINGS, FRESH, NOW)
    assert v.codes == ["stop_wrong_side"]
    assert "59500" in v.reasons[0].message
    # a short's stop above a limit entry but below the mark would fire at once
    v = evaluate(
        open_(side="short", entry_px="59000", stop_px="59900", risk_usd="25"), account(), SETTINGS, FRESH, NOW
    )
    assert v.codes == ["stop_wrong_side"]


@pytest.mark.parametrize(
    ("leverage", "settings", "fragment", "code"),
    [
        ("10", RiskSettings(), "limit 5x", "leverage"),
        ("45", RiskSettings(max_leverage=D(50)), "exchange max 40", "leverage"),
        ("2.5", RiskSettings(), "whole number", "leverage_not_whole"),
    ],
)
def test_leverage_limits(leverage: str, settings: RiskSettings, fragment: str, code: str) -> None:
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", risk_usd="25", leverage=leverage),
        account(),
        settings,
        FRESH,
        NOW,
    )
    assert v.codes == [code]
    assert fragment in v.reasons[0].message


def test_default_leverage_is_the_markets_current_capped_by_settings() -> None:
    acct = account(markets={**DEFAULT_MARKETS, "BTC": market(leverage=D(20))})
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW)
    assert v.approved and v.leverage == D(5)
    acct = account(markets={**DEFAULT_MARKETS, "BTC": market(leverage=D(3))})
    assert (
        evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), acct, SETTINGS, FRESH, NOW).leverage
        == 3
    )


def test_margin_must_fit_the_available_margin() -> None:
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", risk_usd="25"),
        account(available="200"),
        SETTINGS,
        FRESH,
        NOW,
    )
    # 1423.2 / 5 = 284.64 > 200
    assert v.codes == ["margin"]
    assert "284.64 USD" in v.reasons[0].message and "200.00 USD" in v.reasons[0].message


def test_stop_beyond_liquidation_depends_on_margin_mode() -> None:
    intent = open_(entry_px="60000", stop_px="48000", risk_usd="25", margin_mode="isolated")
    v = evaluate(intent, account(), SETTINGS, FRESH, NOW)
    # isolated 5x, BTC max 40x -> maintenance 1/80 = 0.0125
    # liq = 60000 * (1 - 1/5) / (1 - 0.0125) = 48000 / 0.9875 = 48607.59...; stop 48000 is beyond it
    assert v.codes == ["stop_beyond_liquidation"]
    assert v.est_liquidation_px is not None
    assert v.est_liquidation_px.quantize(D("0.01")) == D("48607.59")
    # cross with 10000 USD equity behind a 124 USD position: no liquidation price, the stop is fine
    v = evaluate(intent.model_copy(update={"margin_mode": "cross"}), account(), SETTINGS, FRESH, NOW)
    assert v.approved and v.est_liquidation_px is None


def test_cross_liquidation_uses_equity_minus_maintenance() -> None:
    # equity 300, a 0.05 BTC short at 60000 (3000 USD, 10x allowed by settings)
    settings = RiskSettings(max_leverage=D(10), max_risk_per_trade_usd=D(100), max_market_risk_pct=D(100))
    intent = open_(side="short", entry_px="60000", stop_px="62000", risk_usd="100", leverage="10")
    v = evaluate(intent, account(equity="300"), settings, FRESH, NOW)
    # per unit 2000 + 0.00045 * 122000 = 2054.9; 100 / 2054.9 = 0.04866 -> notional 2919.6
    # avail = 300 - 2919.6 / 80 = 263.505; liq = 60000 + 263.505 / 0.04866 / (1 + 0.0125)
    #       = 60000 + 5415.23 / 1.0125 = 65348.37...
    assert v.size == D("0.04866")
    assert v.est_liquidation_px is not None
    assert v.est_liquidation_px.quantize(D("0.01")) == D("65348.37")
    assert v.approved


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (halt(FRESH, NOW, "human"), "halted"),
        (RiskState(locked_until=NOW + timedelta(hours=3), lock_reason="max_drawdown"), "locked"),
        (RiskState(locked_until=NOW + timedelta(hours=3), lock_reason="daily_loss"), "locked"),
        (RiskState(cooldown_until=NOW + timedelta(minutes=30)), "cooldown"),
    ],
)
def test_trading_state_refuses_new_trades(state: RiskState, code: str) -> None:
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), account(), SETTINGS, state, NOW)
    assert v.codes == [code]


def test_locked_message_states_the_time_left_and_the_limit() -> None:
    state = RiskState(locked_until=NOW + timedelta(hours=3), lock_reason="max_drawdown", drawdown=D("0.152"))
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), account(), SETTINGS, state, NOW)
    msg = v.reasons[0].message
    assert "3h left" in msg and "15.20%" in msg and "max_drawdown_pct 15%" in msg


def test_orders_per_minute() -> None:
    state = FRESH
    for i in range(30):
        state = note_order_sent(state, NOW - timedelta(seconds=59) + timedelta(seconds=i))
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="25"), account(), SETTINGS, state, NOW)
    assert v.codes == ["rate_limit"]
    assert "30 orders" in v.reasons[0].message
    # a minute after the first send it has left the window
    later = NOW + timedelta(seconds=1, microseconds=1)
    assert evaluate(
        open_(entry_px="60000", stop_px="59000", risk_usd="25"), account(), SETTINGS, state, later
    ).approved


def test_cannot_open_against_an_existing_position() -> None:
    acct = account(positions=(position("BTC", "-0.01", "60000", stop="61000"),))
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="5"), acct, SETTINGS, FRESH, NOW)
    assert v.codes == ["opposite_position"]


def test_unknown_market() -> None:
    v = evaluate(open_(market="NOPE", stop_px="1", risk_usd="5"), account(), SETTINGS, FRESH, NOW)
    assert v.codes == ["unknown_market"]


def test_take_profit_is_rounded_and_checked() -> None:
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", take_profit_px="63000.4", risk_usd="25"),
        account(),
        SETTINGS,
        FRESH,
        NOW,
    )
    assert v.approved and v.take_profit_px == D(63001)  # a long's take-profit sells: rounds up
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", take_profit_px="59500", risk_usd="25"),
        account(),
        SETTINGS,
        FRESH,
        NOW,
    )
    assert v.codes == ["take_profit_wrong_side"]


def test_isolated_only_markets() -> None:
    markets = {**DEFAULT_MARKETS, "BTC": market(only_isolated=True)}
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", risk_usd="25"),
        account(markets=markets),
        SETTINGS,
        FRESH,
        NOW,
    )
    assert v.approved and v.margin_mode == "isolated"
    v = evaluate(
        open_(entry_px="60000", stop_px="59000", risk_usd="25", margin_mode="cross"),
        account(markets=markets),
        SETTINGS,
        FRESH,
        NOW,
    )
    assert v.codes == ["isolated_only"]


def test_reason_codes_are_stable_strings() -> None:
    assert ReasonCode.PORTFOLIO_RISK.value == "portfolio_risk"
    v = evaluate(open_(entry_px="60000", stop_px="59000", risk_usd="30"), account(), SETTINGS, FRESH, NOW)
    doc = v.model_dump(mode="json")
    assert doc["reasons"][0]["code"] == "risk_per_trade"
    assert doc["size"] == "0.02847"  # 30 / 1053.55 = 0.0284751... -> 0.02847, as an exact decimal string
