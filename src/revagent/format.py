"""How a number reads to a person, in one place for the shell and the TUI (pure, standard library only).

- money: cents, thousands separators, `$` (`$10,243.18`; `-$3.10`; signed `+$7.00`);
- prices: on the market's tick (5 significant figures, at most `6 - sz_decimals` decimals; an
  integer is always on the grid), with separators: `100,806`, `3,312.5`, `0.12345`;
- sizes: on the market's lot (`sz_decimals` decimals at most), trailing zeros dropped;
- ratios (R:R, multipliers, leverage): 2 decimals; percentages of a fraction: `pct`;
- durations as typed: `1h`, `1h30m`, `5m` (never `1:00:00`);
- text clipped at a word with an ellipsis.

`--json` output never goes through these: it keeps the exact decimals. A `None` shows as an em
dash. Values may be given as `Decimal`, `str`, `int` or `float` (a float is read through its
shortest repr).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from revagent.models import format_duration

__all__ = ["DASH", "clip", "duration", "money", "pct", "price", "ratio", "size", "to_decimal"]

DASH = "—"
_CENT = Decimal("0.01")
Number = Decimal | str | int | float


def to_decimal(value: Number | None) -> Decimal | None:
    """The value as a finite Decimal, or None (None, "", or not a finite number)."""
    if value is None or value == "":
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _plain(d: Decimal, places: int | None = None, *, separators: bool = True) -> str:
    """Fixed-point text; with `places` None, trailing zeros (and a bare point) are dropped."""
    if places is None:
        text = f"{d:,f}" if separators else f"{d:f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return f"{d:,.{places}f}" if separators else f"{d:.{places}f}"


def money(value: Number | None, *, signed: bool = False) -> str:
    """`$10,243.18`; negative `-$3.10`; with `signed`, `+$7.00`."""
    d = to_decimal(value)
    if d is None:
        return DASH
    q = d.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    text = f"${abs(q):,.2f}"
    if q < 0:
        return "-" + text
    return ("+" + text) if signed else text


def price(value: Number | None, sz_decimals: int | None = None) -> str:
    """A price on the market's tick: at most 5 significant figures (an integer part is never cut)
    and at most `6 - sz_decimals` decimals (6 when the market is not known), half-even."""
    d = to_decimal(value)
    if d is None:
        return DASH
    if d == 0:
        return "0"
    max_decimals = 6 if sz_decimals is None else max(0, 6 - sz_decimals)
    exponent = min(0, max(d.adjusted() - 4, -max_decimals))
    q = d.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)
    return _plain(q)


def size(value: Number | None, sz_decimals: int | None = None, *, signed: bool = False) -> str:
    """A size on the market's lot (`sz_decimals` decimals at most), trailing zeros dropped;
    with `signed`, `+0.412` / `-1.5`."""
    d = to_decimal(value)
    if d is None:
        return DASH
    if sz_decimals is not None:
        d = d.quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_HALF_EVEN)
    text = _plain(d, separators=False)
    return ("+" + text) if signed and d > 0 else text


def ratio(value: Number | None) -> str:
    """A ratio (reward:risk, a multiplier, leverage) to 2 decimals: `0.88`."""
    d = to_decimal(value)
    return DASH if d is None else f"{d.quantize(_CENT, rounding=ROUND_HALF_EVEN):,.2f}"


def pct(value: Number | None, *, signed: bool = False, places: int = 2) -> str:
    """A fraction in percent: 0.012 -> `1.20%`."""
    d = to_decimal(value)
    if d is None:
        return DASH
    v = d * 100
    return f"{v:+.{places}f}%" if signed else f"{v:.{places}f}%"


def duration(value: timedelta | str | None) -> str:
    """A duration as a person types it: `1h`, `1h30m`, `90s` -> `1m30s`; a string passes through."""
    if value is None:
        return DASH
    if isinstance(value, str):
        return value
    return format_duration(value)


def clip(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters: cut at the last word that fits, then `…`."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: max(1, limit - 1)]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(" ,;:") + "…"
