"""From what fired to the `AlertEvent` the queue receives: one builder per source, keys built in one place.

Pure: no I/O, no clock. The scheduler calls these with what the trigger index (`Fired`), the time
rules (`DueOccurrence`) or the stop check (`StopCheck`) returned. Context values are JSON-ready
(prices as decimal strings, times as ISO 8601 UTC) so the event goes to Redis as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from revagent.alerts.time_rules import DueOccurrence
from revagent.alerts.trade_alerts import ManagedTrade, StopCheck, TradeLevel
from revagent.alerts.triggers import Fired
from revagent.models import TimeAlert, WatcherPair, format_duration
from revagent.store.alert_events import AlertEvent, AlertKind, Occurrence, level_trigger_key, trigger_key


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def event_for_fired(fired: Fired, *, late: bool = False, extra: Mapping[str, Any] | None = None) -> AlertEvent:
    """The event of a fired price level: a watcher leg (payload `WatcherPair`) or a trade level
    (payload `TradeLevel`). `late` marks a level found crossed at start-up (`RebuiltIndex.fired`).

    Raises TypeError for an entry armed with another payload.
    """
    lv = fired.level
    payload = lv.payload
    common: dict[str, Any] = {
        "book": lv.book,
        "slot": lv.key.slot,
        "level": str(lv.level),
        "direction": lv.direction.value,
        "generation": lv.generation,
        "previous_price": None if fired.previous_price is None else str(fired.previous_price),
        "disarmed": [d.trigger_key for d in fired.disarmed],
    }
    if isinstance(payload, WatcherPair):
        leg = payload.upper if lv.key.slot == "upper" else payload.lower
        context = {
            **common,
            "market": payload.market,
            "thesis": leg.thesis if leg is not None else "",
            "setup": leg.setup.model_dump(mode="json", exclude_none=True) if leg is not None else {},
            "created_by": payload.created_by,
            "expires_at": _iso(payload.expires_at),
        }
        kind = AlertKind.WATCHER
        first_action = None
    elif isinstance(payload, TradeLevel):
        context = {
            **common,
            "market": payload.market,
            "trade_id": payload.trade_id,
            "price_source": payload.source,
            "description": payload.description,
        }
        kind = payload.kind
        first_action = payload.first_action
    else:
        raise TypeError(f"no event for a level armed with a {type(payload).__name__} payload")
    return AlertEvent(
        alert_id=lv.key.alert_id,
        kind=kind,
        trigger_key=fired.trigger_key,
        fired_at=fired.fired_at,
        price=fired.price,
        late=late,
        first_action=first_action,
        context={**context, **(extra or {})},
    )


def event_for_time(due: DueOccurrence, alert: TimeAlert) -> AlertEvent:
    """The event of a due time-alert occurrence (its key carries the scheduled time)."""
    return AlertEvent(
        alert_id=alert.id,
        kind=AlertKind.TIME,
        trigger_key=due.trigger_key,
        fired_at=due.fired_at,
        late=due.late,
        context={
            "prompt": alert.prompt,
            "scheduled_at": _iso(due.scheduled_at),
            "missed": due.missed,
            "every": None if alert.every is None else format_duration(alert.every),
        },
    )


def event_for_stop_check(
    trade: ManagedTrade, check: StopCheck, *, fired_at: datetime, stop_generation: int
) -> AlertEvent | None:
    """The stop-loss verification event when the check failed (None when the stop is fine).

    `stop_generation` is the trade's stop generation (bumped each time a stop is placed or moved),
    so a stop that goes missing again after a repair fires again, and a repeated check of the same
    missing stop does not.
    """
    if check.ok:
        return None
    return AlertEvent(
        alert_id=trade.trade_id,
        kind=AlertKind.STOP_LOSS_VERIFICATION,
        trigger_key=level_trigger_key(trade.trade_id, AlertKind.STOP_LOSS_VERIFICATION.value, stop_generation),
        fired_at=fired_at,
        context={
            "market": trade.market,
            "side": trade.side.value,
            "status": check.status.value,
            "expected_px": str(check.expected_px),
            "expected_size": str(check.expected_size),
            "found_px": None if check.found_px is None else str(check.found_px),
            "found_size": None if check.found_size is None else str(check.found_size),
            "oids": list(check.oids),
            "detail": check.detail,
        },
    )


def system_event(
    kind: AlertKind, alert_id: str, occurrence: Occurrence, *, fired_at: datetime, context: Mapping[str, Any]
) -> AlertEvent:
    """A drift, lockout, health or liquidation event raised outside the price index (sync, risk)."""
    return AlertEvent(
        alert_id=alert_id,
        kind=kind,
        trigger_key=trigger_key(alert_id, occurrence),
        fired_at=fired_at,
        context=dict(context),
    )
