"""AlertEvent and trigger keys: one key per occurrence, priorities, mandatory first actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from revagent.store.alert_events import (
    KIND_PRIORITY,
    TRADE_MANAGEMENT_KINDS,
    AlertEvent,
    AlertKind,
    level_trigger_key,
    split_trigger_key,
    trigger_key,
)

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_trigger_key_forms() -> None:
    assert trigger_key("t_1", NOW) == "t_1#2026-11-24T08:00:00Z"
    assert trigger_key("t_1", NOW.astimezone(timezone(timedelta(hours=2)))) == "t_1#2026-11-24T08:00:00Z"
    assert trigger_key("w_1", 3) == "w_1#g3"
    assert level_trigger_key("w_1", "upper", 2) == "w_1#upper:g2"
    assert split_trigger_key("w_1#upper:g2") == ("w_1", "upper:g2")


@pytest.mark.parametrize(
    ("alert_id", "occurrence"),
    [("", 1), ("a#b", 1), ("w", 0), ("w", True), ("w", ""), ("w", "x#y"), ("w", datetime(2026, 1, 1))],
)
def test_trigger_key_refuses_ambiguous_parts(alert_id: str, occurrence: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        trigger_key(alert_id, occurrence)  # type: ignore[arg-type]


def test_priorities_put_protection_first() -> None:
    assert set(KIND_PRIORITY) == set(AlertKind)
    others = [
        p
        for k, p in KIND_PRIORITY.items()
        if k not in {AlertKind.STOP_LOSS_VERIFICATION, AlertKind.LIQUIDATION_WARNING}
    ]
    assert KIND_PRIORITY[AlertKind.STOP_LOSS_VERIFICATION] < KIND_PRIORITY[AlertKind.LIQUIDATION_WARNING]
    assert KIND_PRIORITY[AlertKind.LIQUIDATION_WARNING] < min(others)


def test_event_defaults_from_kind_and_json_round_trip() -> None:
    ev = AlertEvent(
        alert_id="tr_1",
        kind=AlertKind.STOP_LOSS_VERIFICATION,
        trigger_key=level_trigger_key("tr_1", "stop_loss_verification", 4),
        fired_at=NOW,
        price=Decimal("101.25"),
        context={"market": "BTC"},
    )
    assert ev.priority == 0
    assert ev.first_action is not None
    assert "verify the stop" in ev.first_action.lower()
    doc = ev.model_dump(mode="json")
    assert doc["price"] == "101.25"
    assert doc["fired_at"].startswith("2026-11-24T08:00:00")
    assert AlertEvent.model_validate_json(ev.model_dump_json()) == ev


def test_every_trade_management_kind_carries_a_first_action() -> None:
    for kind in TRADE_MANAGEMENT_KINDS:
        ev = AlertEvent(alert_id="tr_1", kind=kind, trigger_key=f"tr_1#{kind}:g1", fired_at=NOW)
        assert ev.first_action
    watcher = AlertEvent(alert_id="w_1", kind="watcher", trigger_key="w_1#upper:g1", fired_at=NOW)
    assert watcher.first_action is None
    assert watcher.priority == KIND_PRIORITY[AlertKind.WATCHER]


def test_event_refuses_a_key_of_another_alert_and_naive_times() -> None:
    with pytest.raises(ValidationError, match="does not belong"):
        AlertEvent(alert_id="w_1", kind="watcher", trigger_key="w_2#upper:g1", fired_at=NOW)
    with pytest.raises(ValidationError):
        AlertEvent(alert_id="w_1", kind="watcher", trigger_key="w_1#upper:g1", fired_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        AlertEvent(alert_id="w_1", kind="nope", trigger_key="w_1#upper:g1", fired_at=NOW)
