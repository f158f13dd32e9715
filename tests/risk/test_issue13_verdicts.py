"""Issue 13 items 4, 5, 6 and 10: a verdict for every input, one code per rule, approved prices on the
grid and on the protective side, an expired lock released at `now`, no looser "ensure"."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.risk import (
    AccountView,
    ClosePosition,
    EnsureStop,
    MarketRules,
    ModifyStop,
    OpenTrade,
    PositionView,
    RiskSettings,
    RiskState,
    SetLeverage,
    SetTarget,
    Verdict,
    evaluate,
    is_on_tick,
)
from tests.risk.builders import NOW

D = Decimal
S = RiskSettings()
BTC = MarketRules(name="BTC", sz_decimals=5, max_leverage=40, mark_px=D(60000), price_time=NOW)


def _view(size: str = "0.01", stop: str | None = "59000", rules: MarketRules = BTC,
          entry: str = "60000") -> AccountView:
    pos = PositionView(market=rules.name, size=D(size), entry_px=D(entry), mark_px=rules.mark_px,
                       stop_px=D(stop) if stop else None, leverage=D(5))
    return AccountView(equity=D(10000), available_margin=D(10000), positions=(pos,), markets={rules.name: rules})


FLAT = AccountView(equity=D(10000), available_margin=D(10000), markets={"BTC": BTC})


def test_huge_finite_numbers_get_a_refusal_not_an_exception() -> None:
    cases: list[tuple[Any, AccountView]] = [
        (OpenTrade.model_construct(market="BTC", side="long", origin="human", stop_px=D(59000),
                                   risk_usd=D("1e26"), entry_px=None, target_px=None, conviction=None,
                                   take_profit_px=None, leverage=None, margin_mode=None), FLAT),
        (OpenTrade.model_construct(market="BTC", side="long", origin="human", stop_px=D(59000),
                                   risk_usd=D(10), entry_px=None, target_px=None, conviction=None,
                                   take_profit_px=D("1e28"), leverage=None, margin_mode=None), FLAT),
        (OpenTrade.model_construct(market="BTC", side="short", origin="human", stop_px=D("1e28"),
                                   risk_usd=D(10), entry_px=None, target_px=None, conviction=None,
                                   take_profit_px=None, leverage=None, margin_mode=None), FLAT),
        (SetTarget.model_construct(market="BTC", origin="human", target_px=D("1e28"), take_profit_px=D("1e28")),
         _view()),
        (EnsureStop.model_construct(market="BTC", origin="human", stop_px=D("1e28")), _view(stop=None)),
    ]
    for intent, view in cases:
        v = evaluate(intent, view, S, RiskState(), NOW)
        assert isinstance(v, Verdict) and not v.approved
        assert "invalid_number" in v.codes


def test_the_intent_models_refuse_numbers_out_of_bounds() -> None:
    import pytest
    from pydantic import ValidationError

    for bad in ("1e26", "Infinity", "NaN", "1" * 5000):
        with pytest.raises(ValidationError):
            OpenTrade(market="BTC", side="long", stop_px=D(59000), risk_usd=D(bad))
        with pytest.raises(ValidationError):
            ModifyStop(market="BTC", stop_px=D(bad))


numbers = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([D("1e26"), D("1e28"), D("-1"), D(0), D("1e-30"), D("1" * 60), D("NaN"), D("-Infinity")]),
    st.decimals(min_value=D("0.0001"), max_value=D(100000), places=4),
)


@st.composite
def any_intent(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(("open", "close", "modify", "ensure", "target", "leverage")))
    n = lambda: draw(numbers)  # noqa: E731
    opt = lambda: draw(st.one_of(st.none(), numbers))  # noqa: E731
    if kind == "open":
        return OpenTrade.model_construct(market="BTC", side=draw(st.sampled_from(("long", "short"))),
                                         origin=draw(st.sampled_from(("agent", "human"))), stop_px=n(),
                                         risk_usd=n(), entry_px=opt(), target_px=opt(), conviction=50,
                                         take_profit_px=opt(), leverage=opt(), margin_mode=None)
    if kind == "close":
        return ClosePosition.model_construct(market="BTC", origin="human", fraction=n())
    if kind == "modify":
        return ModifyStop.model_construct(market="BTC", origin="human", stop_px=n())
    if kind == "ensure":
        return EnsureStop.model_construct(market="BTC", origin="system", stop_px=opt())
    if kind == "target":
        return SetTarget.model_construct(market="BTC", origin="human", target_px=opt(), take_profit_px=opt())
    return SetLeverage.model_construct(market="BTC", origin="human", leverage=n(), margin_mode=None)


@settings(max_examples=300, deadline=None)
@given(intent=any_intent(), held=st.booleans(), short=st.booleans())
def test_any_numeric_input_gets_a_verdict_and_approved_prices_are_valid(
    intent: Any, held: bool, short: bool
) -> None:
    view = _view(size="-0.01" if short else "0.01", stop="61000" if short else "59000") if held else FLAT
    v = evaluate(intent, view, S, RiskState(), NOW)
    assert isinstance(v, Verdict)
    assert len(v.codes) == len(set(v.codes))
    if v.approved:
        for px in (v.price, v.stop_px, v.take_profit_px):
            assert px is None or is_on_tick(px, BTC.sz_decimals)
        position = view.position("BTC")
        if v.stop_px is not None and position is not None and v.kind in ("ensure_stop", "modify_stop"):
            assert (BTC.mark_px - v.stop_px) * position.direction > 0  # on the protective side


def test_one_code_per_rule_for_a_fractional_leverage_over_the_limit() -> None:
    v = evaluate(OpenTrade(market="BTC", side="long", origin="human", stop_px=D(59000), risk_usd=D(10),
                           leverage=D("7.5")), FLAT, S, RiskState(), NOW)
    assert v.codes.count("leverage") == 1
    assert "leverage_not_whole" in v.codes


def test_an_ensure_stop_that_rounds_to_zero_or_sits_on_the_wrong_side_is_refused() -> None:
    tiny = MarketRules(name="X", sz_decimals=3, max_leverage=10, mark_px=D(1), price_time=NOW)
    view = _view(size="-100", stop=None, rules=tiny, entry="1")
    v = evaluate(EnsureStop(market="X", stop_px=D("0.0001")), view, S, RiskState(), NOW)
    assert not v.approved and v.codes == ["stop_wrong_side"]  # it rounds to 0 and sits below the mark
    assert v.stop_px == 0  # (the refusal shows the rounded value)


def test_an_ensure_stop_at_the_cap_beyond_the_mark_is_placed_on_the_protective_side() -> None:
    # a long from 60000 now at 50000: the cap stop (about 57500) would fire at once
    deep = BTC.model_copy(update={"mark_px": D(50000)})
    view = _view(stop=None, rules=deep)
    v = evaluate(EnsureStop(market="BTC"), view, S, RiskState(), NOW)
    assert v.approved and v.stop_px is not None and v.stop_px < deep.mark_px


def test_an_expired_lock_is_released_at_now() -> None:
    state = RiskState(locked_until=NOW - timedelta(seconds=1), lock_reason="daily_loss")
    v = evaluate(OpenTrade(market="BTC", side="long", origin="human", stop_px=D(59000), risk_usd=D(10)), FLAT, S,
                 state, NOW)
    assert "locked" not in v.codes and v.approved, v.explain()


def test_an_explicit_ensure_stop_looser_than_the_live_stop_is_refused() -> None:
    v = evaluate(EnsureStop(market="BTC", stop_px=D(55000)), _view(), S, RiskState(), NOW)
    assert not v.approved and v.codes == ["stop_looser"]
    tighter = evaluate(EnsureStop(market="BTC", stop_px=D(59500)), _view(), S, RiskState(), NOW)
    assert tighter.approved
