"""Issue 14 item 1 (engine half): a market entry is sized and judged at its expected average fill from
the L2 book; the IOC limit stays at the slippage bound; a fill worse than planned is trimmed."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.risk import (
    AccountView,
    BookLevel,
    MarketRules,
    OpenTrade,
    PositionView,
    RiskSettings,
    RiskState,
    corrections,
    evaluate,
)
from tests.risk.builders import NOW

D = Decimal
S = RiskSettings()
FEE = S.taker_fee_pct / 100


def _book(mid: Decimal = D(60000), step: Decimal = D(1), size: Decimal = D("0.02"), n: int = 20) -> MarketRules:
    asks = tuple(BookLevel(px=mid + step * (i + 1), sz=size) for i in range(n))
    bids = tuple(BookLevel(px=mid - step * (i + 1), sz=size) for i in range(n))
    return MarketRules(name="BTC", sz_decimals=5, max_leverage=40, mark_px=mid, mid_px=mid, price_time=NOW,
                       bids=bids, asks=asks)


def _view(rules: MarketRules) -> AccountView:
    return AccountView(equity=D(100000), available_margin=D(100000), markets={"BTC": rules})


def _risk(size: Decimal, entry: Decimal, stop: Decimal) -> Decimal:
    return size * (abs(entry - stop) + FEE * (entry + stop))


def test_a_market_entry_is_sized_at_the_expected_fill_not_the_slippage_bound() -> None:
    rules = _book()
    stop = D(60000) * D("0.98")
    v = evaluate(OpenTrade(market="BTC", side="long", origin="human", stop_px=stop, risk_usd=D(20)), _view(rules),
                 S, RiskState(), NOW)
    assert v.approved, v.explain()
    assert v.price == D(60600)  # the IOC limit stays at the 1% bound
    assert v.worst_entry_px == D(60600)
    assert v.expected_entry_px is not None and D(60000) < v.expected_entry_px < D(60010)
    assert v.risk_usd is not None and D("19.9") <= v.risk_usd <= D(20)
    assert v.risk_usd == _risk(v.size or D(0), v.expected_entry_px, v.stop_px or D(0))
    assert v.risk_at_worst_usd is not None and v.risk_at_worst_usd > v.risk_usd


def test_the_target_side_and_reward_risk_are_judged_from_the_expected_fill() -> None:
    rules = _book()
    v = evaluate(OpenTrade(market="BTC", side="long", origin="agent", stop_px=D(58800), risk_usd=D(20),
                           target_px=D(60300), conviction=50), _view(rules), S, RiskState(), NOW)
    assert "target_wrong_side" not in v.codes  # above the expected fill, below the bound
    assert v.codes == ["reward_risk"]  # 300 / 1200: measured from the expected entry
    assert "entry 60001" in v.reasons[0].message


def test_without_a_book_the_entry_is_sized_at_the_bound() -> None:
    rules = MarketRules(name="BTC", sz_decimals=5, max_leverage=40, mark_px=D(60000), price_time=NOW)
    v = evaluate(OpenTrade(market="BTC", side="short", origin="human", stop_px=D(61200), risk_usd=D(20)),
                 _view(rules), S, RiskState(), NOW)
    assert v.approved and v.expected_entry_px == v.worst_entry_px == v.price == D(59400)


books = st.lists(st.tuples(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=3000)),
                 min_size=1, max_size=15)


@settings(max_examples=150, deadline=None)
@given(levels=books, stop_pct=st.sampled_from([D("0.005"), D("0.01"), D("0.02"), D("0.05")]),
       risk=st.decimals(min_value=D(5), max_value=D(25), places=2), long=st.booleans())
def test_the_expected_fill_walks_the_book_and_never_risks_more_than_declared(
    levels: list[tuple[int, int]], stop_pct: Decimal, risk: Decimal, long: bool
) -> None:
    direction = 1 if long else -1
    mid = D(60000)
    px, out = mid, []
    for gap, lots in levels:
        px = px + direction * gap
        out.append(BookLevel(px=px, sz=D(lots) / 100000))
    rules = MarketRules(name="BTC", sz_decimals=5, max_leverage=40, mark_px=mid, mid_px=mid, price_time=NOW,
                        **({"asks": tuple(out)} if long else {"bids": tuple(out)}))
    stop = mid * (1 - direction * stop_pct)
    v = evaluate(OpenTrade(market="BTC", side="long" if long else "short", origin="human", stop_px=stop,
                           risk_usd=risk), _view(rules), S, RiskState(), NOW)
    if not v.approved:
        assert set(v.codes) <= {"min_notional", "order_notional"}, v.explain()
        return
    assert v.size is not None and v.expected_entry_px is not None and v.stop_px is not None
    assert v.risk_usd is not None and v.risk_usd <= risk
    best = out[0].px
    assert (v.expected_entry_px - best) * direction >= 0 and (v.price - v.expected_entry_px) * direction >= 0  # type: ignore[operator]
    # sized tight: one more lot at the worst price would exceed the declared risk
    assert v.risk_usd + _risk(D("0.00001"), v.price or D(0), v.stop_px) > risk


def test_a_fill_worse_than_planned_is_trimmed_to_the_per_trade_cap() -> None:
    rules = _book()
    pos = PositionView(market="BTC", size=D("0.02"), entry_px=D(60600), mark_px=D(60000), stop_px=D(59400),
                       leverage=D(5))  # 0.02 * (1200 + 59400 * 0.00045) = 24.53: at the cap, no trim
    view = AccountView(equity=D(100000), available_margin=D(100000), positions=(pos,), markets={"BTC": rules})
    assert not [c for c in corrections(view, S, RiskState(), NOW) if c.kind == "trim_position"]
    worse = view.model_copy(update={"positions": (pos.model_copy(update={"entry_px": D(60900)}),)})  # 30.53
    trims = [c for c in corrections(worse, S, RiskState(), NOW) if c.kind == "trim_position"]
    assert len(trims) == 1
    fraction = trims[0].intent.fraction  # type: ignore[union-attr]
    left = D("0.02") * (1 - fraction) * (D(1500) + D(59400) * FEE)
    assert left <= S.max_risk_per_trade_usd
