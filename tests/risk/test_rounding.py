"""Lot and tick grid: sizes by szDecimals, prices by 5 significant figures and 6 - szDecimals decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.risk import (
    is_on_lot,
    is_on_tick,
    max_price_decimals,
    round_price,
    round_size_down,
    round_size_up,
)

D = Decimal


@pytest.mark.parametrize(
    ("px", "szd", "buy", "sell"),
    [
        # BTC (szd 5): at most 1 decimal, 5 significant figures -> whole dollars at 60k
        ("60123.45", 5, "60123", "60124"),
        # integers are always valid, even with more than 5 digits
        ("123456.7", 5, "123456", "123457"),
        ("123456", 5, "123456", "123456"),
        # ETH (szd 4): at most 2 decimals; 5 sig figs at 3000.x -> 1 decimal
        ("3000.456", 4, "3000.4", "3000.5"),
        # DOGE (szd 0): at most 6 decimals; 5 sig figs at 0.2x -> 5 decimals
        ("0.2123456", 0, "0.21234", "0.21235"),
        # a cheap coin on a 5-decimal lot may only carry 1 price decimal
        ("0.123456", 5, "0.1", "0.2"),
        # rounding up across a power of ten stays valid
        ("99999.5", 2, "99999", "100000"),
        ("9.999951", 0, "9.9999", "10"),
    ],
)
def test_round_price_by_side(px: str, szd: int, buy: str, sell: str) -> None:
    assert round_price(D(px), szd, is_buy=True) == D(buy)
    assert round_price(D(px), szd, is_buy=False) == D(sell)
    assert str(round_price(D(px), szd, is_buy=True)) == buy
    assert str(round_price(D(px), szd, is_buy=False)) == sell


def test_sizes_round_toward_less_exposure() -> None:
    # 25 / 1053.55 = 0.0237293... -> 0.02372 down (new exposure), 0.02373 up (closes only)
    assert round_size_down(D("0.0237293"), 5) == D("0.02372")
    assert round_size_up(D("0.0237293"), 5) == D("0.02373")
    assert round_size_down(D("1.5"), 0) == D(1)
    assert round_size_up(D("1.5"), 0) == D(2)
    assert round_size_down(D("2.000"), 3) == D(2)


def test_grid_predicates() -> None:
    assert is_on_tick(D("60000"), 5)
    assert not is_on_tick(D("60000.5"), 5)  # 6 significant figures
    assert is_on_tick(D("3000.5"), 4)
    assert not is_on_tick(D("3000.55"), 4)  # 6 significant figures
    assert not is_on_tick(D("0.1234567"), 0)  # 7 decimals > 6
    assert is_on_tick(D("1234567"), 3)  # an integer
    assert not is_on_tick(D(0), 3)
    assert is_on_lot(D("0.02372"), 5)
    assert not is_on_lot(D("0.023721"), 5)
    assert max_price_decimals(5) == 1
    assert max_price_decimals(0) == 6


prices = st.decimals(min_value=D("0.000001"), max_value=D("2000000"), places=8, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(px=prices, szd=st.integers(min_value=0, max_value=6), is_buy=st.booleans())
def test_rounded_prices_are_on_the_grid_and_on_the_safe_side(px: Decimal, szd: int, is_buy: bool) -> None:
    rounded = round_price(px, szd, is_buy=is_buy)
    if rounded == 0:  # a price below the finest tick cannot be bought: nothing else to check
        assert is_buy
        return
    assert is_on_tick(rounded, szd)
    assert (rounded <= px) if is_buy else (rounded >= px)
    assert round_price(rounded, szd, is_buy=not is_buy) == rounded  # idempotent either way
    exponent = min(0, max(px.adjusted() - 4, -max_price_decimals(szd)))
    assert abs(rounded - px) < D(1).scaleb(exponent)  # never more than one tick away


@settings(max_examples=200, deadline=None)
@given(
    size=st.decimals(min_value=0, max_value=D(100000), places=10), szd=st.integers(min_value=0, max_value=6)
)
def test_rounded_sizes_are_on_the_lot(size: Decimal, szd: int) -> None:
    down, up = round_size_down(size, szd), round_size_up(size, szd)
    assert is_on_lot(down, szd)
    assert is_on_lot(up, szd)
    assert down <= size <= up
    assert up - down <= D(1).scaleb(-szd)
