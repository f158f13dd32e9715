"""Moved to `revagent.store.alert_events` (the durable queue's record type lives below the queue).

A thin re-export for one step, so branches written against the old path keep working; import from
`revagent.store.alert_events`, and delete this module once nothing names it.
"""

from revagent.store.alert_events import (
    FIRST_ACTIONS,
    KIND_PRIORITY,
    TRADE_MANAGEMENT_KINDS,
    AlertEvent,
    AlertKind,
    Occurrence,
    first_action_of,
    format_occurrence,
    level_trigger_key,
    priority_of,
    split_trigger_key,
    trigger_key,
)

__all__ = [
    "FIRST_ACTIONS",
    "KIND_PRIORITY",
    "TRADE_MANAGEMENT_KINDS",
    "AlertEvent",
    "AlertKind",
    "Occurrence",
    "first_action_of",
    "format_occurrence",
    "level_trigger_key",
    "priority_of",
    "split_trigger_key",
    "trigger_key",
]
