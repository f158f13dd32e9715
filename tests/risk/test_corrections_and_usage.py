"""Post-trade corrections, the usage report, and the per-view risk sums."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from revagent.risk import (
    ClosePosition,
    EnsureStop,
    RiskSettings,
    RiskState,
    corrections,
    evaluate,
    halt,
    open_risk,
    risk_usage,
)
from tests.risk.builders import FRESH, NOW, account, entry_order, position, stop_order

D = Decimal
S = RiskSettings()


def test_nothing_to_correct() -> None:
    acct = account(
        positions=(position("BTC", "0.01", "60000", stop="59000"),),
        triggers=(stop_order("BTC", "sell", "0.01", "59000"),),
    )
    assert corrections(acct, S, FRESH, NOW) == []


def test_missing_stop_from_the_plan_or_at_the_cap_after_the_grace() -> None:
    planned = position(
        "BTC", "0.01", "60000", planned_stop_px=D(59000), opened_at=NOW - timedelta(seconds=11)
    )
    fresh = position("ETH", "1", "3000", opened_at=NOW - timedelta(seconds=5))  # within stop_grace 10s
    no_plan = position("SOL", "-10", "150")
    out = corrections(account(positions=(planned, fresh, no_plan)), S, FRESH, NOW)
    assert [(c.kind, c.market) for c in out] == [("place_stop", "BTC"), ("place_stop", "SOL")]
    assert out[0].intent == EnsureStop(market="BTC", stop_px=D(59000), origin="system")
    assert out[1].intent == EnsureStop(market="SOL", stop_px=None, origin="system")
    # and they pass in any state
    worst = halt(RiskState(locked_until=NOW + timedelta(hours=1), lock_reason="daily_loss"), NOW, "human")
    acct = account(positions=(planned, fresh, no_plan))
    assert all(evaluate(c.intent, acct, S, worst, NOW).approved for c in out)


def test_a_planned_stop_through_the_mark_falls_back_to_the_cap() -> None:
    pos = position("BTC", "0.01", "60000", mark="58000", planned_stop_px=D(59000))
    from tests.risk.builders import DEFAULT_MARKETS, market

    acct = account(positions=(pos,), markets={**DEFAULT_MARKETS, "BTC": market(mark="58000")})
    (c,) = corrections(acct, S, FRESH, NOW)
    assert c.intent == EnsureStop(market="BTC", stop_px=None, origin="system")


def test_a_stop_covering_too_little_is_completed() -> None:
    acct = account(
        positions=(position("BTC", "0.02", "60000", stop="59000"),),
        triggers=(stop_order("BTC", "sell", "0.01", "59000"),),
    )
    (c,) = corrections(acct, S, FRESH, NOW)
    assert c.kind == "place_stop" and "0.01 of 0.02" in c.reason


def test_triggers_on_flat_or_flipped_markets_are_cancelled() -> None:
    acct = account(
        positions=(position("BTC", "0.01", "60000", stop="59000"),),
        triggers=(
            stop_order("BTC", "sell", "0.01", "59000", oid=1),
            stop_order("BTC", "buy", "0.01", "61000", oid=2),  # a short's stop left on a long
            stop_order("ETH", "sell", "1", "2900", oid=3),  # flat market
            stop_order("ETH", "sell", "1", "3300", oid=4, kind="take_profit"),
        ),
    )
    out = corrections(acct, S, FRESH, NOW)
    assert [(c.kind, c.intent.oid) for c in out] == [  # type: ignore[union-attr]
        ("cancel_trigger", 2),
        ("cancel_trigger", 3),
        ("cancel_trigger", 4),
    ]
    assert "flipped to long" in out[0].reason and "flat" in out[1].reason
    assert all(evaluate(c.intent, acct, S, FRESH, NOW).approved for c in out)


def test_over_cap_position_is_trimmed() -> None:
    # slippage filled 0.05 BTC with a 1000 stop distance: 0.05 * (1000 + 26.55) = 51.3275 > 40 (the
    # per-market cap) and > 25 (the per-trade cap, which binds: the trade goes back to 25)
    pos = position("BTC", "0.05", "60000", stop="59000")
    acct = account(positions=(pos,), triggers=(stop_order("BTC", "sell", "0.05", "59000"),))
    (c,) = corrections(acct, S, FRESH, NOW)
    assert c.kind == "trim_position" and "per-trade cap 25.00" in c.reason
    # fraction (51.3275 - 25) / 51.3275 = 0.512932... -> 0.512932 (rounded up)
    assert c.intent == ClosePosition(market="BTC", fraction=D("0.512932"), origin="system")
    v = evaluate(c.intent, acct, S, FRESH, NOW)
    # 0.05 * 0.512932 = 0.0256466 -> 0.02565 closed (up); 0.02435 left: 0.02435 * 1026.55 = 24.997 <= 25
    assert v.approved and v.size == D("0.02565")
    left = pos.model_copy(update={"size": D("0.05") - v.size})
    assert open_risk(left, S) <= D(25)


def test_risk_usage_report() -> None:
    acct = account(
        positions=(position("BTC", "0.01", "60000", stop="59000"), position("ETH", "0.01", "3000")),
        entries=(entry_order("BTC", "long", "0.01", "58000", "7.5"),),
    )
    state = RiskState(penalty=D("0.2"), updated_at=NOW)
    usage = risk_usage(acct, S, state, NOW)
    # m = 0.8: caps 80 / 32 / 20; BTC 10.2655 + 7.5 = 17.7655; ETH no stop: 0.01 * 3000 = 30 (flagged)
    assert (usage.multiplier, usage.portfolio_cap_usd, usage.market_cap_usd, usage.per_trade_cap_usd) == (
        D("0.8"),
        D("80.0"),
        D("32.00"),
        D("20.0"),
    )
    assert usage.total_open_risk_usd == D("47.7655")
    assert usage.headroom_usd == D("32.2345")
    btc, eth = usage.markets
    assert (btc.market, btc.position_risk_usd, btc.entries_risk_usd, btc.open_risk_usd) == (
        "BTC",
        D("10.2655"),
        D("7.5"),
        D("17.7655"),
    )
    assert (eth.open_risk_usd, eth.unprotected, eth.headroom_usd) == (D(30), True, D(2))
    assert usage.unprotected == ("ETH",)
    assert D(usage.model_dump(mode="json")["total_open_risk_usd"]) == D("47.7655")


def test_view_copies_never_reuse_the_originals_sums() -> None:
    acct = account(positions=(position("BTC", "0.01", "60000", stop="59000"),))
    assert risk_usage(acct, S, FRESH, NOW).total_open_risk_usd == D("10.2655")
    bigger = acct.model_copy(update={"positions": (position("BTC", "0.02", "60000", stop="59000"),)})
    assert risk_usage(bigger, S, FRESH, NOW).total_open_risk_usd == D("20.531")
    assert risk_usage(acct, S, FRESH, NOW).total_open_risk_usd == D("10.2655")
