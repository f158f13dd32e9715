"""The action grammar: one price rule (a number or a distance from the mark), bounded numbers, and
a one-line UsageError naming the argument for every bad value (nothing is built)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from revagent.actions import Cancel, Close, Distance, Open, SetMode, Stop, Target, grammar
from revagent.errors import NotFoundError, UsageError
from tests.risk.builders import account, entry_order, position, stop_order

D = Decimal
HUGE = "1" * 5000


@pytest.mark.parametrize(("text", "value"), [
    ("93250", D(93250)), ("3,040.5", D("3040.5")), ("1_000", D(1000)), (" 42 ", D(42)), ("1e5", D("1e5")),
    (93250, D(93250)), ("2%", Distance(pct=D(2))), ("0.5%", Distance(pct=D("0.5"))), (D("7.25"), D("7.25")),
])
def test_a_price_is_a_number_or_a_distance_from_the_mark(text: object, value: object) -> None:
    assert grammar.price(text, "--stop") == value
    assert grammar.price(None, "--stop") is None and grammar.price("", "--stop") is None


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "--stop: 'abc' is not a price or a distance like 2%"),
    ("0", "--stop: must be positive"), ("-5", "--stop: must be positive"),
    ("NaN", "--stop: must be positive"), ("sNaN", "--stop: must be positive"),
    ("Infinity", "--stop: must be positive"), ("1e309", "--stop: must be at most 1000000000000"),
    (HUGE, "--stop: must be at most"), ("120%", "a distance is between 0% and 100%"),
    ("0%", "a distance is between 0% and 100%"), ("-2%", "a distance is between 0% and 100%"),
    ("NaN%", "a distance is between 0% and 100%"), (HUGE + "%", "a distance is between 0% and 100%"),
    ("x%", "is not a price or a distance"),
])
def test_bad_prices_are_one_line_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        grammar.price(text, "--stop")
    assert message in info.value.message
    assert "\n" not in info.value.message and len(info.value.message) < 200


@pytest.mark.parametrize(("fn", "text", "message"), [
    (grammar.usd, "1e309", "--risk: must be at most"), (grammar.usd, "-20", "must be positive"),
    (grammar.usd, "NaN", "must be positive"), (grammar.usd, HUGE, "must be at most"),
    (grammar.fraction, "2", "between 0 and 1"), (grammar.fraction, "-0.5", "must be positive"),
    (grammar.leverage, "1001", "must be at most 1000"), (grammar.conviction, "101", "conviction is 0-100"),
    (grammar.conviction, "high", "is not a whole number"), (grammar.order_id, "abc", "is not an order id"),
    (grammar.order_id, "-3", "is not an order id"), (grammar.order_id, HUGE, "is not an order id"),
    (grammar.market, "no such!", "is not a market name"), (grammar.side, "up", "expected long or short"),
])
def test_bad_numbers_and_names_are_usage_errors(fn: object, text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        fn(text, "--risk") if fn is grammar.usd else fn(text)  # type: ignore[operator]
    assert message in info.value.message and "\n" not in info.value.message


def test_usd_takes_a_dollar_sign() -> None:
    assert grammar.usd("$25", "--risk") == D(25)


def test_a_distance_lies_on_the_losing_side_for_stops_and_entries_the_winning_side_for_targets() -> None:
    two = Distance(pct=D(2))
    assert two.from_mark(D(100), "long", "stop") == D(98) and two.from_mark(D(100), "long", "entry") == D(98)
    assert two.from_mark(D(100), "long", "target") == D(102)
    assert two.from_mark(D(100), "short", "stop") == D(102) and two.from_mark(D(100), "short", "target") == D(98)
    # the rule the command channel applied before (`mark * (1 + sign * pct / 100)`), to the digit
    assert two.from_mark(D("60000"), "long", "stop") == D("60000") * (1 - D("2") / 100)


def test_open_resolves_distances_against_the_mark() -> None:
    action = Open.parse(market="btc", side="LONG", stop="2%", risk="$20", target="5%", take_profit="61,000",
                        leverage="3", isolated=True, conviction="70")
    intent = action.resolve(account())
    assert (intent.market, intent.side, intent.origin) == ("BTC", "long", "human")
    assert intent.stop_px == D(58800) and intent.target_px == D(63000) and intent.take_profit_px == D(61000)
    assert intent.risk_usd == D(20) and intent.leverage == D(3) and intent.margin_mode == "isolated"
    assert intent.conviction == 70 and intent.entry_px is None
    assert Open.from_channel(action.channel_args()) == action  # the channel's JSON round-trips


def test_resolve_checks_the_venue_and_the_position() -> None:
    with pytest.raises(UsageError, match="'NOPE' is not traded on this venue"):
        Open.parse(market="NOPE", side="long", stop="2%", risk="20").resolve(account())
    with pytest.raises(NotFoundError, match="no open ETH position"):
        Stop.parse(market="ETH", price="1%").resolve(account())
    short = account(positions=(position("ETH", "-1", "3000"),))
    assert Stop.parse(market="ETH", price="1%").resolve(short).stop_px == D(3030)
    assert Target.parse(market="ETH", price="1%").resolve(short).target_px == D(2970)
    with pytest.raises(UsageError, match="needs the market's mark price"):
        Stop.parse(market="ETH", price="1%").resolve(None)  # no account: only absolute prices resolve
    assert Stop.parse(market="ETH", price="2900").resolve(None).stop_px == D(2900)


def test_cancel_finds_the_market_of_an_order_id() -> None:
    view = account(positions=(position("BTC"),), entries=(entry_order("ETH", "long", "1", "2900", "10", oid=77),),
                   triggers=(stop_order("BTC", "sell", "0.01", "59000", oid=78),))
    assert Cancel.parse(oid="77").resolve(view).market == "ETH"
    assert Cancel.parse(oid=78).resolve(view).market == "BTC"
    with pytest.raises(NotFoundError, match="no open order with oid 79"):
        Cancel.parse(oid="79").resolve(view)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Open.parse(market="BTC", side="long", stop=None, risk="20"), "--stop is required: every trade"),
    (lambda: Open.parse(market="BTC", side="long", stop="2%", risk=None), "--risk is required"),
    (lambda: Open.parse(market="", side="long", stop="2%", risk="20"), "MARKET is required"),
    (lambda: Close.parse(market="BTC", fraction="1.5"), "between 0 and 1"),
    (lambda: Target.parse(market="BTC"), "give a target, a take-profit, or both"),
    (lambda: Stop.parse(market="BTC", price=None), "PX is required"),
    (lambda: SetMode.parse(mode="turbo"), "MODE: one of autonomous, copilot, readonly"),
    (lambda: SetMode.parse(mode="copilot", scope="x"), "scope: chat or alert"),
    (lambda: Open.from_channel({"market": "BTC", "side": "long", "stop": "2%", "risk": "20", "origin": "god"}),
     "origin: agent, human or system"),
])
def test_missing_or_wrong_arguments_name_themselves(build: object, message: str) -> None:
    with pytest.raises(UsageError) as info:
        build()  # type: ignore[operator]
    assert message in info.value.message


@pytest.mark.parametrize("value", ["1e309", HUGE, "Infinity", "NaN", "-1", "0"])
def test_a_model_built_directly_refuses_the_same_numbers(value: str) -> None:
    for field in ("stop_px", "risk_usd", "target_px"):
        args = {"market": "BTC", "side": "long", "stop_px": "59000", "risk_usd": "20", field: value}
        with pytest.raises(ValidationError):
            Open.model_validate(args)


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_price_or_a_usage_error(text: str) -> None:
    message = ""
    value = None
    try:
        value = grammar.price(text, "PX")
    except UsageError as exc:
        message = exc.message
    if message:
        assert message.startswith("PX") and "\n" not in message
        return
    assert value is None or isinstance(value, Distance) or (value.is_finite() and 0 < value <= D("1e12"))
