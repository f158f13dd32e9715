"""The grammar of every value a trader (or the model) types into an action, in one place.

Text forms (the shell, slash commands, the command channel's JSON) and their errors: one line,
naming the argument, nothing changed. The annotated types (`Price`, `Usd`, `Fraction`, ...) carry
the same bounds for values that arrive already typed (the LLM tools' JSON, the action models).

Prices: a number (`93250`, `3,040.5`, `1e5`) or a distance in percent from the mark (`2%`): a stop
or a limit entry lies on the losing side of the mark, a target or a take-profit on the winning side.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from revagent.errors import UsageError
from revagent.models import MARKET_PATTERN, MAX_PRICE, MAX_USD, parse_duration

MAX_LEVERAGE = Decimal(1000)
"""The largest leverage an intent carries (`risk.intents.Leverage`)."""

_DECIMAL_SCHEMA = {"type": ["number", "string"], "description": "a decimal number (a string keeps it exact)"}
Price = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False),
                  WithJsonSchema({**_DECIMAL_SCHEMA, "description": "price in USD"})]
"""An absolute price: positive, finite, at most `models.MAX_PRICE`."""
Usd = Annotated[Decimal, Field(gt=0, le=MAX_USD, allow_inf_nan=False),
                WithJsonSchema({**_DECIMAL_SCHEMA, "description": "amount in USD"})]
"""A USD amount: positive, finite, at most `models.MAX_USD`."""
Fraction = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False),
                     WithJsonSchema({**_DECIMAL_SCHEMA, "description": "fraction 0 < f <= 1 (1 = all)"})]
"""A part of a position: 0 < f <= 1."""
Leverage = Annotated[Decimal, Field(gt=0, le=MAX_LEVERAGE, allow_inf_nan=False)]
Conviction = Annotated[int, Field(ge=0, le=100)]
Market = Annotated[str, Field(pattern=MARKET_PATTERN)]
Side = Literal["long", "short"]
Role = Literal["stop", "entry", "target"]
MAX_TEXT = 1000
"""The longest thesis, invalidation or reason a trader (or the model) gives."""
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class Distance(BaseModel):
    """A distance in percent from the mark (`2%` is `Distance(pct=2)`), resolved against an account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pct: Annotated[Decimal, Field(gt=0, lt=100, allow_inf_nan=False)]

    def __str__(self) -> str:
        return f"{self.pct}%"

    def from_mark(self, mark: Decimal, side: Side, role: Role) -> Decimal:
        long = side == "long"
        toward_loss = role in ("stop", "entry")
        sign = -1 if (long == toward_loss) else 1
        return mark * (1 + sign * (self.pct / 100))


PriceSpec = Price | Distance
"""A price as typed: absolute, or a distance from the mark."""


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        return None


def positive_decimal(text: Any, arg: str, *, maximum: Decimal = MAX_PRICE) -> Decimal | None:
    """A positive, finite number at most `maximum` (prices and USD amounts: `models.MAX_PRICE`);
    None for no value (None or empty text)."""
    if text is None or text == "":
        return None
    raw = str(text)
    shown = _shown(raw)
    value = _number(raw)
    if value is None:
        raise UsageError(f"{arg}: {shown!r} is not a number")
    if not value.is_finite() or value <= 0:  # is_finite first: NaN does not compare
        raise UsageError(f"{arg}: must be positive (got {shown})")
    if value > maximum:
        raise UsageError(f"{arg}: must be at most {maximum:f} (got {shown})")
    return value


def required(value: Any, arg: str, why: str = "") -> Any:
    if value is None or value == "":
        raise UsageError(f"{arg} is required{why}")
    return value


def price(text: Any, arg: str) -> PriceSpec | None:
    """A price or a distance from the mark (`2%`); None for no value."""
    if text is None or text == "":
        return None
    if isinstance(text, Distance):
        return text
    raw = str(text)
    t = raw.strip().replace(",", "").replace("_", "")
    if not t.endswith("%"):
        if _number(t) is None:
            raise UsageError(f"{arg}: {_shown(raw)!r} is not a price or a distance like 2%")
        return positive_decimal(t, arg)
    pct = _number(t[:-1])
    if pct is None:
        raise UsageError(f"{arg}: {_shown(raw)!r} is not a price or a distance like 2%")
    if not pct.is_finite() or not 0 < pct < 100:
        raise UsageError(f"{arg}: a distance is between 0% and 100% (got {_shown(raw)})")
    return Distance(pct=pct)


def price_text(spec: PriceSpec | None) -> str | None:
    """The text form of a price as typed (what the command channel carries)."""
    return None if spec is None else str(spec)


def resolve_price(spec: PriceSpec | None, arg: str, *, mark: Decimal | None, side: Side, role: Role) -> Decimal | None:
    """The absolute price: a distance is measured from `mark` (None: no account to measure from)."""
    if spec is None or isinstance(spec, Decimal):
        return spec
    if mark is None:
        raise UsageError(f"{arg}: a distance from the mark ({spec}) needs the market's mark price")
    return spec.from_mark(mark, side, role)


def market(text: Any, arg: str = "MARKET") -> str:
    m = str(required(text, arg)).strip().upper()
    if not re.match(MARKET_PATTERN, m):
        raise UsageError(f"{arg}: {_shown(str(text))!r} is not a market name (like BTC, ETH, SOL)")
    return m


def side(text: Any, arg: str = "SIDE") -> Side:
    s = str(text or "").strip().lower()
    if s == "long":
        return "long"
    if s == "short":
        return "short"
    raise UsageError(f"{arg}: expected long or short (got {text!r})")


def fraction(text: Any, arg: str = "--fraction") -> Decimal:
    value = positive_decimal(text, arg) or Decimal(1)
    if value > 1:
        raise UsageError(f"{arg}: between 0 and 1 (got {value})")
    return value


def leverage(text: Any, arg: str = "--leverage") -> Decimal | None:
    return positive_decimal(text, arg, maximum=MAX_LEVERAGE)


def usd(text: Any, arg: str) -> Decimal | None:
    return positive_decimal(str(text).strip().lstrip("$") if text is not None else None, arg, maximum=MAX_USD)


def conviction(value: Any, arg: str = "--conviction") -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d{1,6}", text):
            raise UsageError(f"{arg}: {_shown(str(value))!r} is not a whole number")
        number = int(text)
    if not 0 <= number <= 100:
        raise UsageError(f"{arg}: conviction is 0-100 (got {number})")
    return number


def text(value: Any, arg: str, *, maximum: int = MAX_TEXT) -> str:
    """Free text (a thesis, an invalidation): stripped, at most `maximum` characters; "" for none."""
    if value is None:
        return ""
    t = str(value).strip()
    if len(t) > maximum:
        raise UsageError(f"{arg}: at most {maximum} characters (got {len(t)})")
    return t


def order_id(value: Any, arg: str = "OID") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or not text.isascii() or len(text) > 20 or int(text) <= 0:
        raise UsageError(f"{arg}: {_shown(text)!r} is not an order id")
    return int(text)


def duration(text: str, arg: str, *, minimum: timedelta = timedelta(0)) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{arg}: {exc}") from None
    if value <= minimum:
        raise UsageError(f"{arg}: must be longer than {minimum} (got {text})")
    return value


MAX_ENTRY_TTL = timedelta(days=30)
EntryTtl = Annotated[timedelta, Field(gt=timedelta(0), le=MAX_ENTRY_TTL)]
"""How long a limit entry may rest before it is cancelled."""


def entry_ttl(text: Any, arg: str = "--expires") -> timedelta:
    value = duration(str(text), arg)
    if value > MAX_ENTRY_TTL:
        raise UsageError(f"{arg}: at most 30d (got {text})")
    return value


def utc_time(text: str, arg: str) -> datetime:
    """ISO 8601; a time without offset is read as UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(s)
    except ValueError:
        raise UsageError(f"{arg}: {text!r} is not an ISO 8601 time (like 2026-11-24T16:00 or ...Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
