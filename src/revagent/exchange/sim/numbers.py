"""Exact decimal arithmetic and Hyperliquid's wire formatting (numbers travel as decimal strings).

Hot-path helpers: no I/O, no allocation beyond the Decimal results.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)
USD_Q = Decimal("0.000001")  # USDC has 6 decimals on Hyperliquid
PX_Q = Decimal("0.00000001")
MAX_PX_DECIMALS = 6  # perps: price decimals <= 6 - szDecimals
SIG_FIGS = 5


def parse_wire(value: object) -> Decimal | None:
    """A wire number (a decimal string, or an int) as a finite Decimal; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        return None
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def fmt(d: Decimal) -> str:
    """Hyperliquid's style: plain notation, trailing zeros stripped, at least one decimal ("0.0", "26951.0")."""
    if d == 0:
        return "0.0"
    s = f"{d.normalize():f}"
    return s if "." in s else s + ".0"


def fmt_usd(d: Decimal) -> str:
    """A USDC amount rounded to 6 decimals."""
    return fmt(d.quantize(USD_Q, rounding=ROUND_HALF_EVEN))


def fmt_px(d: Decimal) -> str:
    """A price (or any ratio) rounded to 8 decimals."""
    return fmt(d.quantize(PX_Q, rounding=ROUND_HALF_EVEN))


def decimals_of(d: Decimal) -> int:
    """Number of digits after the point once trailing zeros are removed."""
    exp = d.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def sig_figs(d: Decimal) -> int:
    return len(d.normalize().as_tuple().digits)


def valid_price(px: Decimal, sz_decimals: int) -> bool:
    """Hyperliquid's tick rule: integers always; otherwise <= 5 significant figures and <= 6-szDecimals decimals."""
    if px <= 0:
        return False
    if px == px.to_integral_value():
        return True
    return sig_figs(px) <= SIG_FIGS and decimals_of(px) <= MAX_PX_DECIMALS - sz_decimals


def valid_size(sz: Decimal, sz_decimals: int) -> bool:
    return sz > 0 and decimals_of(sz) <= sz_decimals


def tick_for(px: Decimal, sz_decimals: int) -> Decimal:
    """The smallest valid price step near `px`: 5 significant figures, bounded by the decimals rule and by 1."""
    if px <= 0:
        return Decimal(1).scaleb(-(MAX_PX_DECIMALS - sz_decimals))
    magnitude = px.adjusted()  # floor(log10(px))
    exp = magnitude - (SIG_FIGS - 1)
    exp = max(exp, -(MAX_PX_DECIMALS - sz_decimals))
    exp = min(exp, 0)  # integer prices are always valid, so the step never exceeds 1
    return Decimal(1).scaleb(exp)


def round_to(value: Decimal, step: Decimal, *, up: bool | None = None) -> Decimal:
    """`value` on the grid of `step`: nearest by default, ceiling when up=True, floor when up=False."""
    mode = ROUND_HALF_EVEN if up is None else (ROUND_CEILING if up else ROUND_FLOOR)
    return ((value / step).to_integral_value(rounding=mode) * step).normalize()


def lot(sz_decimals: int) -> Decimal:
    return Decimal(1).scaleb(-sz_decimals)
