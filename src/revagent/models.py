"""Shared value types and domain models: durations, session identity, notes, watchers, time alerts.

Every part may import this module; it imports nothing of revagent's and does no I/O.
Money, prices and sizes are `Decimal` (serialised as exact decimal strings); times are aware UTC
`datetime`s (serialised as ISO 8601).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

Network = Literal["paper", "testnet", "mainnet"]
NETWORKS: tuple[Network, ...] = ("paper", "testnet", "mainnet")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

MAX_PRICE = Decimal("1e12")
"""The largest price anything accepts (far above any perp's; keeps every rounding within 28 digits)."""
MAX_USD = Decimal("1e12")
"""The largest USD amount anything accepts (risk, notional, balances typed by a person or a model)."""
MAX_DURATION = timedelta(days=36500)
"""The longest duration anything accepts (100 years)."""

BoundedPrice = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False)]
"""A price typed by a person or a model: positive, finite, at most `MAX_PRICE`."""
BoundedUsd = Annotated[Decimal, Field(gt=0, le=MAX_USD, allow_inf_nan=False)]
"""A USD amount typed by a person or a model: positive, finite, at most `MAX_USD`."""


def parse_duration(text: str | float | int | timedelta) -> timedelta:
    """Parse `"24h"`, `"1h30m"`, `"10s"`, `"250ms"` (or a plain number of seconds) into a timedelta.

    Raises ValueError with the accepted forms when the text is not a duration.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30m, 24h or 10s")
    if isinstance(text, int | float):
        if text != text or text in (float("inf"), float("-inf")):
            raise ValueError("a duration must be a finite number of seconds")
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded_duration(float(text), text)
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ValueError("expected a duration such as 30m, 24h or 10s, got an empty string")
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"{text!r} is not a duration (use units ms, s, m, h, d, w: 30m, 24h, 1h30m)")
    return _bounded_duration(total, text)


def _bounded_duration(seconds: float, text: object) -> timedelta:
    if not seconds <= MAX_DURATION.total_seconds():  # also catches inf from a huge digit string
        raise ValueError(f"{str(text)[:40]!r} is too long a duration (at most {MAX_DURATION.days}d)")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The shortest unit string for a duration: 86400s -> '1d', 5400s -> '1h30m'."""
    total = td.total_seconds()
    if total < 0:
        return "-" + format_duration(-td)
    if total != int(total):
        return f"{round(total * 1000)}ms" if total < 1 else f"{total:g}s"
    secs = int(total)
    if secs == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, secs = divmod(secs, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A timedelta written in config, JSON and Redis as a string with units ('24h')."""


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a timezone (UTC)")
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_require_utc)]


def utc_now() -> datetime:
    """The wall clock, in UTC. Pure code never calls this: the caller passes `now` in."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix: `n_3f9a1c2b`."""
    return f"{prefix}_{secrets.token_hex(4)}"


_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


class SessionId(BaseModel):
    """A wallet session's identity: network and master address (lowercase hex).

    Never the wallet's config name, so renaming a wallet loses nothing and testnet never mixes
    with mainnet. `str(sid)` is the form used in Redis keys: `paper:0xabc...`.
    """

    model_config = ConfigDict(frozen=True)

    network: Network
    address: str

    @model_validator(mode="before")
    @classmethod
    def _lower(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("address"), str):
            data = {**data, "address": data["address"].lower()}
        return data

    @model_validator(mode="after")
    def _check(self) -> SessionId:
        if not _ADDRESS.match(self.address):
            raise ValueError(f"{self.address!r} is not a 0x-prefixed 40-hex-digit address")
        return self

    def __str__(self) -> str:
        return f"{self.network}:{self.address}"

    @classmethod
    def parse(cls, text: str) -> SessionId:
        network, _, address = text.partition(":")
        return cls.model_validate({"network": network, "address": address})

    @property
    def short(self) -> str:
        return f"{self.network}:{self.address[:6]}…{self.address[-4:]}"


# --- domain models stored per session -------------------------------------------------------


class Note(BaseModel):
    id: str = Field(default_factory=lambda: new_id("n"))
    text: str = Field(min_length=1, max_length=4000)
    tags: list[str] = Field(default_factory=list)
    created_at: UtcDateTime
    updated_at: UtcDateTime


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class LegDirection(StrEnum):
    """Which way the price must cross the level for the leg to fire."""

    ABOVE = "above"  # armed from below; fires when the mid rises to or through the level
    BELOW = "below"  # armed from above; fires when the mid falls to or through the level


class LegStatus(StrEnum):
    ARMED = "armed"
    FIRED = "fired"
    DISARMED = "disarmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


PositiveDecimal = Annotated[Decimal, Field(gt=0)]


class ProposedSetup(BaseModel):
    """What the thesis would trade if the leg fires; every field optional (a human may sketch)."""

    side: Side | None = None
    entry: PositiveDecimal | None = None
    stop: PositiveDecimal | None = None
    target: PositiveDecimal | None = None
    conviction: Annotated[int, Field(ge=0, le=100)] | None = None
    risk_usd: PositiveDecimal | None = None


class WatcherLeg(BaseModel):
    level: PositiveDecimal
    direction: LegDirection
    thesis: str = ""
    setup: ProposedSetup = Field(default_factory=ProposedSetup)
    status: LegStatus = LegStatus.ARMED
    generation: int = 1
    fired_at: UtcDateTime | None = None
    fired_price: Decimal | None = None


MARKET_PATTERN = r"^[A-Z0-9][A-Z0-9_\-]{0,19}$"


class WatcherPair(BaseModel):
    """One market, an upper and/or a lower leg; when one leg fires the pair is consumed."""

    id: str = Field(default_factory=lambda: new_id("w"))
    market: str = Field(pattern=MARKET_PATTERN)
    upper: WatcherLeg | None = None
    lower: WatcherLeg | None = None
    expires_at: UtcDateTime | None = None
    created_at: UtcDateTime
    created_by: str = "human"

    @model_validator(mode="after")
    def _legs(self) -> WatcherPair:
        if self.upper is None and self.lower is None:
            raise ValueError("a watcher pair needs an upper leg, a lower leg, or both")
        if self.upper is not None and self.upper.direction is not LegDirection.ABOVE:
            raise ValueError("the upper leg must fire above its level")
        if self.lower is not None and self.lower.direction is not LegDirection.BELOW:
            raise ValueError("the lower leg must fire below its level")
        if self.upper is not None and self.lower is not None and self.lower.level >= self.upper.level:
            raise ValueError(
                f"the lower level ({self.lower.level}) must be under the upper level ({self.upper.level})"
            )
        return self

    def legs(self) -> list[WatcherLeg]:
        return [leg for leg in (self.upper, self.lower) if leg is not None]

    @property
    def active(self) -> bool:
        return any(leg.status is LegStatus.ARMED for leg in self.legs())


class TimeAlertStatus(StrEnum):
    SCHEDULED = "scheduled"
    FIRED = "fired"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class TimeAlert(BaseModel):
    id: str = Field(default_factory=lambda: new_id("t"))
    fire_at: UtcDateTime
    every: Duration | None = None
    prompt: str = Field(min_length=1, max_length=4000)
    status: TimeAlertStatus = TimeAlertStatus.SCHEDULED
    created_at: UtcDateTime
    last_fired_at: UtcDateTime | None = None

    @model_validator(mode="after")
    def _every(self) -> TimeAlert:
        if self.every is not None and self.every < timedelta(minutes=1):
            raise ValueError("a repeating alert fires at most once a minute (--every 1m or more)")
        return self


# --- orders and trades (written by the gateway, completed by sync) ----------------------------

OrderRole = Literal["entry", "stop", "take_profit", "close", "modify", "cancel", "leverage", "probe"]
OrderStatus = Literal[
    "pending",  # recorded, not yet sent
    "sent",  # sent, no answer yet
    "unknown",  # sent, the answer was lost: query orderStatus by cloid before anything else
    "resting",
    "waiting",  # a normalTpsl child waiting for its parent's fill
    "filled",
    "cancelled",
    "rejected",
    "triggered",
]
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"filled", "cancelled", "rejected"})


class OrderRecord(BaseModel):
    """One order in the journal, recorded before it is sent (keyed by its client order id)."""

    cloid: str
    action: str  # the user action behind it: tool:<thread>:<call>, cmd:<id>, corr:<trade>:<what>:<gen>
    role: OrderRole
    market: str
    is_buy: bool
    size: Decimal
    price: Decimal | None = None
    trigger_px: Decimal | None = None
    reduce_only: bool = False
    trade_id: str | None = None
    status: OrderStatus = "pending"
    oid: int | None = None
    filled_size: Decimal = Decimal(0)
    avg_px: Decimal | None = None
    error: str | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class TradePlan(BaseModel):
    """What a trade was opened for: minted by the gateway with the entry, kept while it lives."""

    trade_id: str = Field(default_factory=lambda: new_id("tr"))
    market: str
    side: Side
    stop_px: Decimal | None
    target_px: Decimal | None = None
    take_profit_px: Decimal | None = None
    conviction: int | None = None
    risk_usd: Decimal
    origin: Literal["agent", "human", "system"] = "human"
    thread_id: str | None = None
    tool_call_id: str | None = None
    rationale: str = ""
    thesis: str = ""  # why the trade should work (the agent declares it; optional for a human)
    invalidation: str = ""  # what would prove the thesis wrong
    entry_expires_at: UtcDateTime | None = None  # a limit entry still resting then is cancelled
    status: Literal["opening", "open", "closed", "cancelled"] = "opening"
    stop_generation: int = 1
    target_generation: int = 1
    opened_at: UtcDateTime
    closed_at: UtcDateTime | None = None


# ------------------------------------------------- ledger facts (exchange wire shapes the store records)


class WireModel(BaseModel):
    """Base of every exchange wire model (`exchange.types`): camelCase aliases, extra keys ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Fill(WireModel):
    """One fill (`userFills`, `userFillsByTime`, websocket `userFills` and `user.fills`).

    `tid` (trade id) is absent in old records: then (hash, oid, time, px, sz) identifies a fill.
    """

    coin: str
    px: Decimal
    sz: Decimal
    side: Literal["A", "B"]
    time: int
    start_position: Decimal
    dir: str
    closed_pnl: Decimal
    hash: str
    oid: int
    crossed: bool
    fee: Decimal
    fee_token: str | None = None
    tid: int | None = None
    builder_fee: Decimal | None = None
    cloid: str | None = None


class UserFundingDelta(WireModel):
    type: str = "funding"
    coin: str
    usdc: Decimal
    szi: Decimal
    funding_rate: Decimal
    n_samples: int | None = None


class UserFunding(WireModel):
    """One funding payment of `userFunding`; `delta.usdc` is signed (positive = received)."""

    time: int
    hash: str
    delta: UserFundingDelta


class LedgerDelta(WireModel):
    """The variable part of a non-funding ledger update; only `type` is always present."""

    model_config = ConfigDict(extra="allow")

    type: str
    usdc: Decimal | None = None


class LedgerUpdate(WireModel):
    """One entry of `userNonFundingLedgerUpdates` (deposit, withdraw, transfer, liquidation...)."""

    time: int
    hash: str
    delta: LedgerDelta


# --- the shape of a session command (the command channel, the engine's and the sync's commands) -----

Emit = Callable[[str, Any], Awaitable[None]]
"""How a command streams to its sender: `await emit(type, data)` (a reply-stream entry)."""
CommandHandler = Callable[[dict[str, Any], Emit], Awaitable[Any]]
"""A session command: `await handler(args, emit)` with JSON arguments, answering with a JSON-able result."""
