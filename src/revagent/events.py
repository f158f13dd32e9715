"""The session's bus events, shared by every part. Producers never know their consumers.

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


register(MidsUpdated, ConnectionChanged, SyncPhaseChanged, AccountChanged, OrderUpdated, FillRecorded,
         RiskStateChanged, AlertSignal, TurnEvent)
