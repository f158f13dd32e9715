"""Pure text formatting for the panel: money, prices, gauges, sparklines, countdowns (no Textual).

Money is shown with two decimals and thousands separators; prices keep the precision they were
given (never rounded into a lie) but gain separators; a `None` shows as an em dash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

DASH = "—"
_SPARKS = "▁▂▃▄▅▆▇█"
_CENT = Decimal("0.01")


def money(value: Decimal | None, *, signed: bool = False) -> str:
    """`$10,243.18`; with `signed`, `+$7.00` / `-$3.10`."""
    if value is None:
        return DASH
    q = value.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    text = f"${abs(q):,.2f}"
    if q < 0:
        return "-" + text
    return ("+" + text) if signed else text


def price(value: Decimal | None) -> str:
    """A price with thousands separators and its own precision (at most 6 decimals shown)."""
    if value is None:
        return DASH
    v = value.normalize()
    exponent = v.as_tuple().exponent
    places = min(6, max(0, -exponent)) if isinstance(exponent, int) else 0
    if abs(v) >= 1000:
        places = min(places, 2)
    return f"{v:,.{places}f}"


def size(value: Decimal) -> str:
    """A signed size: `+0.412`, `-1.5`."""
    v = value.normalize()
    text = f"{v:f}"
    return text if v < 0 else "+" + text


def pct(value: Decimal | None, *, signed: bool = False, places: int = 1) -> str:
    """A fraction shown in percent: 0.012 -> `1.2%`."""
    if value is None:
        return DASH
    v = value * 100
    return f"{v:+.{places}f}%" if signed else f"{v:.{places}f}%"


def gauge(used: Decimal, cap: Decimal, width: int = 10) -> str:
    """`████░░░░░░`: the share of `cap` used, clamped to the width (a cap of zero shows full)."""
    if width <= 0:
        return ""
    share = Decimal(1) if cap <= 0 else max(Decimal(0), min(Decimal(1), used / cap))
    filled = int((share * width).to_integral_value(rounding=ROUND_HALF_EVEN))
    return "█" * filled + "░" * (width - filled)


def sparkline(values: Sequence[Decimal | float], width: int = 12) -> str:
    """The last `width` values as block characters scaled between their min and max."""
    tail = [float(v) for v in values[-width:]]
    if not tail:
        return ""
    lo, hi = min(tail), max(tail)
    if hi == lo:
        return _SPARKS[3] * len(tail)
    scale = (len(_SPARKS) - 1) / (hi - lo)
    return "".join(_SPARKS[round((v - lo) * scale)] for v in tail)


def countdown(until: datetime, now: datetime) -> str:
    """Time left, compact: `1h58m`, `4m05s`, `12s`, `due` when past."""
    left = until - now
    if left <= timedelta(0):
        return "due"
    secs = int(left.total_seconds())
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def distance(level: Decimal, mid: Decimal | None) -> str:
    """How far the level is from the mid, in percent of the mid: `+1.2%`."""
    if mid is None or mid == 0:
        return DASH
    return pct((level - mid) / mid, signed=True)


def short_address(address: str) -> str:
    """`0x3f2a…9c1d`."""
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def ratio(value: Decimal | None) -> str:
    """A ratio to two decimals: `1.00`, `0.62`."""
    if value is None:
        return DASH
    return f"{value.quantize(_CENT, rounding=ROUND_HALF_EVEN)}"


def age(then: datetime, now: datetime) -> str:
    """How long ago, compact: `0s`, `42s`, `3m`, `2h`, `4d`."""
    secs = max(0, int((now - then).total_seconds()))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"
