"""The `AlertEvent`: what a trigger hands to the durable queue, and the trigger keys that de-duplicate it.

A trigger key is `<alert id>#<occurrence>`; one occurrence of one alert has exactly one key, whatever
restarts, reconnects or double ticks happen, and the next occurrence gets a new one:

- a watcher leg: `w_1a2b3c4d#upper:g2` (pair id, leg, arming generation);
- a trade-management level: `tr_9#early_warning:g3` (trade id, kind, plan generation);
- a time alert: `t_5e6f#2026-11-24T08:00:00Z` (alert id, the *scheduled* time of the occurrence,
  never the time it actually fired, so a late or repeated evaluation yields the same key).

Pure module: no I/O, no clock (callers pass `fired_at`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from revagent.models import UtcDateTime


class AlertKind(StrEnum):
    WATCHER = "watcher"
    TIME = "time"
    EARLY_WARNING = "early_warning"
    PROFIT_TARGET = "profit_target"
    STOP_LOSS_VERIFICATION = "stop_loss_verification"
    LIQUIDATION_WARNING = "liquidation_warning"
    DRIFT = "drift"
    LOCKOUT = "lockout"
    HEALTH = "health"


KIND_PRIORITY: dict[AlertKind, int] = {
    AlertKind.STOP_LOSS_VERIFICATION: 0,
    AlertKind.LIQUIDATION_WARNING: 1,
    AlertKind.EARLY_WARNING: 2,
    AlertKind.LOCKOUT: 3,
    AlertKind.DRIFT: 3,
    AlertKind.HEALTH: 4,
    AlertKind.PROFIT_TARGET: 5,
    AlertKind.WATCHER: 6,
    AlertKind.TIME: 7,
}
"""Queue priority per kind: a lower number is served first. Stop-loss verification, then liquidation
warnings, come before everything else; protective trade management before discretionary alerts."""

TRADE_MANAGEMENT_KINDS: frozenset[AlertKind] = frozenset(
    {
        AlertKind.EARLY_WARNING,
        AlertKind.PROFIT_TARGET,
        AlertKind.STOP_LOSS_VERIFICATION,
        AlertKind.LIQUIDATION_WARNING,
    }
)

FIRST_ACTIONS: dict[AlertKind, str] = {
    AlertKind.STOP_LOSS_VERIFICATION: (
        "Verify the stop on the exchange before anything else: confirm a reduce-only stop exists at the "
        "recorded level for the full position size."
    ),
    AlertKind.LIQUIDATION_WARNING: (
        "Verify the stop on the exchange before anything else, then reduce the position (close_position) or add "
        "margin to an isolated position (adjust_margin): the mark price is close to the liquidation price."
    ),
    AlertKind.EARLY_WARNING: (
        "Re-check the thesis against current price action before anything else: the trade has moved "
        "half-way to its stop. Decide to hold, tighten the stop, or exit; never widen the stop."
    ),
    AlertKind.PROFIT_TARGET: (
        "Verify the position and its stop on the exchange before anything else, then take profit or "
        "move the stop to protect the gain."
    ),
}
"""The mandatory first action of each trade-management kind's alert thread."""


def priority_of(kind: AlertKind) -> int:
    """The queue priority of a kind (lower first)."""
    return KIND_PRIORITY[kind]


def first_action_of(kind: AlertKind) -> str | None:
    """The mandatory first action of a trade-management kind, None for other kinds."""
    return FIRST_ACTIONS.get(kind)


Occurrence = int | str | datetime


def format_occurrence(occurrence: Occurrence) -> str:
    """The text form of an occurrence: a generation as `g<n>`, a time as ISO 8601 UTC with `Z`."""
    if isinstance(occurrence, bool):
        raise TypeError("an occurrence is a generation, a scheduled time or a text, not a bool")
    if isinstance(occurrence, int):
        if occurrence < 1:
            raise ValueError(f"a generation starts at 1, got {occurrence}")
        return f"g{occurrence}"
    if isinstance(occurrence, datetime):
        if occurrence.tzinfo is None:
            raise ValueError("a scheduled time must carry a timezone (UTC)")
        text = occurrence.astimezone(UTC).isoformat()
        return text.replace("+00:00", "Z")
    if not occurrence or "#" in occurrence:
        raise ValueError(f"an occurrence text must be non-empty and contain no '#': {occurrence!r}")
    return occurrence


def trigger_key(alert_id: str, occurrence: Occurrence) -> str:
    """The de-duplication key of one occurrence of one alert: `<alert id>#<occurrence>`.

    Every producer (price index, time rules, trade levels, system alerts) builds its keys here.
    """
    if not alert_id or "#" in alert_id:
        raise ValueError(f"an alert id must be non-empty and contain no '#': {alert_id!r}")
    return f"{alert_id}#{format_occurrence(occurrence)}"


def level_trigger_key(alert_id: str, slot: str, generation: int) -> str:
    """Key of a price level: a watcher leg (`slot` = upper/lower) or a trade level (`slot` = kind)."""
    return trigger_key(alert_id, f"{slot}:{format_occurrence(generation)}")


def split_trigger_key(key: str) -> tuple[str, str]:
    """The (alert id, occurrence text) of a trigger key."""
    alert_id, sep, occurrence = key.partition("#")
    if not sep or not alert_id or not occurrence:
        raise ValueError(f"{key!r} is not a trigger key (<alert id>#<occurrence>)")
    return alert_id, occurrence


class AlertEvent(BaseModel):
    """One firing of one occurrence of one alert, as enqueued (JSON: prices as decimal strings).

    `priority` and `first_action` default from the kind; `late` marks an occurrence that fired after
    its time because the process was down (or, for a price level, was found crossed at start-up).
    """

    model_config = ConfigDict(frozen=True)

    alert_id: str = Field(min_length=1)
    kind: AlertKind
    trigger_key: str = Field(min_length=3)
    fired_at: UtcDateTime
    price: Decimal | None = None
    late: bool = False
    priority: int = Field(default=-1, ge=0)
    first_action: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kind = data.get("kind")
            try:
                kind = AlertKind(kind) if kind is not None else None
            except ValueError:
                return data  # the field validator reports the bad kind
            if kind is not None:
                data = dict(data)
                if data.get("priority") in (None, -1):
                    data["priority"] = priority_of(kind)
                if data.get("first_action") is None:
                    data["first_action"] = first_action_of(kind)
        return data

    @model_validator(mode="after")
    def _check(self) -> AlertEvent:
        alert_id, _ = split_trigger_key(self.trigger_key)
        if alert_id != self.alert_id:
            raise ValueError(f"trigger key {self.trigger_key!r} does not belong to alert {self.alert_id!r}")
        if self.kind in TRADE_MANAGEMENT_KINDS and not self.first_action:
            raise ValueError(f"a {self.kind} alert needs its mandatory first action")
        return self
