"""Sync's own bus events (registered on import, so the Redis mirror can decode them)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from revagent.bus import Event, register

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


register(DriftFound, SyncCorrection)
