"""Every bus event of the session, in one module. Producers never know their consumers.

Hot events (`MidsUpdated`) are plain and small; the ones other processes care about are
`mirrored` to the session's Redis channel (see `bus.py` for the wire format).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field

from revagent.bus import Event, register


class MidsUpdated(Event):
    """New mid prices (from the exchange's allMids); `at` is when they were received."""

    type: ClassVar[str] = "prices.mids"
    mids: dict[str, Decimal]
    at: datetime


class ConnectionChanged(Event):
    """A link's health changed: the exchange websocket, REST, the model, Redis. `config_error`: the
    model refused an alert turn as misconfigured (400/401/403/404); it will not heal by itself."""

    type: ClassVar[str] = "health.connection"
    mirrored: ClassVar[bool] = True
    link: Literal["exchange_ws", "exchange_rest", "model", "redis"]
    up: bool
    detail: str = ""
    config_error: bool = False


class SyncPhaseChanged(Event):
    type: ClassVar[str] = "sync.phase"
    mirrored: ClassVar[bool] = True
    phase: Literal["checking", "reconciling", "verifying", "consistent", "failed"]
    reason: str = ""


class AccountChanged(Event):
    """The account view changed; `changed` names what (positions, orders, equity, risk, ...)."""

    type: ClassVar[str] = "account.changed"
    mirrored: ClassVar[bool] = True
    changed: list[str]
    version: int


class OrderUpdated(Event):
    type: ClassVar[str] = "order.updated"
    mirrored: ClassVar[bool] = True
    market: str
    oid: int | None
    cloid: str | None
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


class FillRecorded(Event):
    type: ClassVar[str] = "fill.recorded"
    mirrored: ClassVar[bool] = True
    market: str
    side: str
    px: Decimal
    sz: Decimal
    fee: Decimal
    closed_pnl: Decimal
    trade_id: str | None = None


class RiskStateChanged(Event):
    type: ClassVar[str] = "risk.state"
    mirrored: ClassVar[bool] = True
    state: str
    multiplier: Decimal
    reason: str = ""
    locked_until: datetime | None = None


class AlertSignal(Event):
    """The alert queue's lifecycle signals for the UI: queued, started, finished, failed."""

    type: ClassVar[str] = "alert.signal"
    mirrored: ClassVar[bool] = True
    status: Literal["queued", "started", "finished", "failed", "retrying"]
    trigger_key: str
    kind: str
    thread_id: str | None = None
    detail: str = ""


class TurnEvent(Event):
    """One event of a running turn: text delta, tool call, tool result, proposal, usage, done, error."""

    type: ClassVar[str] = "turn.event"
    mirrored: ClassVar[bool] = True
    thread_id: str
    turn_id: str
    kind: Literal["started", "thinking", "text", "tool_call", "tool_result", "proposal", "usage", "notice", "error",
                  "done"]
    data: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- store, lease, session


class StoreChanged(Event):
    """Something under the session's keys changed (written by this or another process)."""

    type: ClassVar[str] = "store.changed"
    mirrored: ClassVar[bool] = False  # the store publishes it itself, atomically with the write
    what: str
    id: str | None = None
    op: str = "put"


class LeaseChanged(Event):
    type: ClassVar[str] = "lease.changed"
    mirrored: ClassVar[bool] = True
    held: bool
    holder: str
    reason: str = ""


class SessionStopping(Event):
    type: ClassVar[str] = "session.stopping"
    mirrored: ClassVar[bool] = True
    reason: str = ""


# ---------------------------------------------------------------- market data


class MarksUpdated(Event):
    """New mark prices (market -> mark); the scheduler feeds them to the `<market>:mark` books."""

    type: ClassVar[str] = "prices.marks"
    marks: dict[str, Decimal]
    at: datetime


# ---------------------------------------------------------------- sync


DriftKind = Literal[
    "position_appeared",  # the exchange has a position the session did not know
    "position_vanished",  # a position the session knew is gone (closed by hand, liquidated)
    "position_changed",  # a different size than the session's view
    "order_appeared",
    "order_vanished",
    "stop_missing",  # a position without a protective stop on the exchange
    "untracked_position",  # a position no trade plan of the agent covers (opened outside the session)
]


class DriftFound(Event):
    """The exchange differs from what the session believed (the exchange wins). `matters` marks drift
    that becomes a trade-management alert: a position appeared or vanished, a stop is missing."""

    type: ClassVar[str] = "sync.drift"
    mirrored: ClassVar[bool] = True
    kind: DriftKind
    market: str
    detail: str
    matters: bool
    source: Literal["snapshot", "websocket", "reconcile"] = "snapshot"


class SyncCorrection(Event):
    """A post-trade correction sync applied through the gateway (or tried to), with its reason."""

    type: ClassVar[str] = "sync.correction"
    mirrored: ClassVar[bool] = True
    kind: str
    market: str
    reason: str
    status: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


register(MidsUpdated, ConnectionChanged, SyncPhaseChanged, AccountChanged, OrderUpdated, FillRecorded,
         RiskStateChanged, AlertSignal, TurnEvent, StoreChanged, LeaseChanged, SessionStopping, MarksUpdated,
         DriftFound, SyncCorrection)
