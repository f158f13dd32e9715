"""Parsing of command-line values with one-line errors naming the argument."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from revagent.errors import UsageError
from revagent.models import MAX_PRICE, parse_duration

_MARKET = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{0,19}$")


def market(text: str, arg: str = "MARKET") -> str:
    m = text.strip().upper()
    if not _MARKET.match(m):
        raise UsageError(f"{arg}: {text!r} is not a market name (like BTC, ETH, SOL)")
    return m


def positive_decimal(text: str | None, arg: str, *, maximum: Decimal = MAX_PRICE) -> Decimal | None:
    """A positive, finite number at most `maximum` (prices and USD amounts: `models.MAX_PRICE`)."""
    if text is None:
        return None
    shown = text if len(text) <= 40 else text[:37] + "..."
    try:
        value = Decimal(text.strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise UsageError(f"{arg}: {shown!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"{arg}: must be a positive number (got {shown})")
    if value > maximum:
        raise UsageError(f"{arg}: must be at most {maximum:f} (got {shown})")
    return value


def duration(text: str, arg: str, *, minimum: timedelta = timedelta(0)) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{arg}: {exc}") from None
    if value <= minimum:
        raise UsageError(f"{arg}: must be longer than {minimum} (got {text})")
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


def conviction(value: int | None, arg: str) -> int | None:
    if value is not None and not 0 <= value <= 100:
        raise UsageError(f"{arg}: conviction is 0-100 (got {value})")
    return value
