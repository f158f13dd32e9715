"""Hyperliquid's lot and tick grid, with exact decimal rounding in a stated direction.

Sizes: at most `sz_decimals` decimals. Prices (perps): at most 5 significant figures and at most
`6 - sz_decimals` decimals; an integer price is always valid, however many digits it has.

Direction rule (so risk never grows by rounding):
- sizes of new exposure round **down** (`round_size_down`); sizes of reduce-only closes round **up**,
  capped at the position (`round_size_up`), so a close never leaves more than asked;
- prices round by the side of the order that carries them (`round_price(..., is_buy=...)`): a buy
  price rounds **down**, a sell price rounds **up**. So a buy limit never pays more than asked and a
  sell limit never sells for less; a long's stop (a sell trigger) moves up, toward the entry, and a
  short's stop (a buy trigger) moves down, toward the entry: a rounded stop never adds risk.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

_ONE = Decimal(1)
_QUANTA = {n: Decimal(1).scaleb(-n) for n in range(13)}


def _quantum(decimals: int) -> Decimal:
    q = _QUANTA.get(decimals)
    return q if q is not None else Decimal(1).scaleb(-decimals)


def _plain(value: Decimal) -> Decimal:
    """The same value without trailing zeros and never in exponent form (`1E+2` -> `100`)."""
    if value == value.to_integral_value():
        return value.quantize(_ONE)
    return value.normalize()


def round_size_down(size: Decimal, sz_decimals: int) -> Decimal:
    """`size` (>= 0) rounded down to the market's lot: at most `sz_decimals` decimals."""
    return _plain(size.quantize(_quantum(sz_decimals), rounding=ROUND_FLOOR))


def round_size_up(size: Decimal, sz_decimals: int) -> Decimal:
    """`size` (>= 0) rounded up to the market's lot. Used only for reduce-only closes."""
    return _plain(size.quantize(_quantum(sz_decimals), rounding=ROUND_CEILING))


def max_price_decimals(sz_decimals: int) -> int:
    """How many decimals a perp price may carry on a market: `6 - sz_decimals` (never below 0)."""
    return max(0, 6 - sz_decimals)


def round_price(px: Decimal, sz_decimals: int, *, is_buy: bool) -> Decimal:
    """`px` (> 0) on the tick grid: <= 5 significant figures, <= `6 - sz_decimals` decimals.

    Buy prices round down, sell prices round up (see the module docstring for why). An integer
    result is always valid, so a price of 123456.7 rounds to 123456 (buy) or 123457 (sell).
    """
    rounding = ROUND_FLOOR if is_buy else ROUND_CEILING
    # exponent of the 5th significant digit, but never finer than the decimals limit, never above 0
    exponent = min(0, max(px.adjusted() - 4, -max_price_decimals(sz_decimals)))
    return _plain(px.quantize(_quantum(-exponent), rounding=rounding))


def is_on_lot(size: Decimal, sz_decimals: int) -> bool:
    """True when `size` has at most `sz_decimals` decimals."""
    return size == size.quantize(_quantum(sz_decimals), rounding=ROUND_FLOOR)


def is_on_tick(px: Decimal, sz_decimals: int) -> bool:
    """True when `px` is a valid perp price on this market (> 0 and on the tick grid)."""
    return px > 0 and round_price(px, sz_decimals, is_buy=True) == px
