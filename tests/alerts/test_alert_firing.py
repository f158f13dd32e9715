"""From fired levels, due occurrences and stop checks to queue events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from revagent.alerts.firing import event_for_fired, event_for_stop_check, event_for_time, system_event
from revagent.alerts.levels import UPPER, EntryKey
from revagent.alerts.time_rules import evaluate
from revagent.alerts.trade_alerts import ManagedTrade, StopStatus, TriggerOrder, stop_check, trade_levels
from revagent.alerts.triggers import PriceTriggerIndex, build_index
from revagent.models import LegDirection, ProposedSetup, Side, TimeAlert, WatcherLeg, WatcherPair
from revagent.store.alert_events import AlertEvent, AlertKind

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
D = Decimal


def test_watcher_leg_event_carries_thesis_and_setup_and_round_trips() -> None:
    pair = WatcherPair(
        id="w_1",
        market="BTC",
        upper=WatcherLeg(
            level=D("110"),
            direction=LegDirection.ABOVE,
            thesis="breakout",
            setup=ProposedSetup(side=Side.LONG, entry=D("110"), stop=D("105")),
        ),
        lower=WatcherLeg(level=D("90"), direction=LegDirection.BELOW),
        created_at=T0,
    )
    rebuilt = build_index([pair], [], {"BTC": D("100")}, now=T0)
    (fired,) = rebuilt.index.on_price("BTC", D("111"), T0 + timedelta(seconds=1))
    ev = event_for_fired(fired)
    assert ev.kind is AlertKind.WATCHER
    assert ev.trigger_key == "w_1#upper:g1"
    assert ev.price == D("111")
    assert ev.context["thesis"] == "breakout"
    assert ev.context["setup"] == {"side": "long", "entry": "110", "stop": "105"}
    assert ev.context["disarmed"] == ["w_1#lower:g1"]
    assert ev.context["previous_price"] == "100"
    assert AlertEvent.model_validate_json(ev.model_dump_json()) == ev


def test_trade_level_event_has_its_kind_priority_and_first_action() -> None:
    trade = ManagedTrade("tr_1", "ETH", Side.LONG, entry=D("100"), stop=D("90"), size=D("1"), liquidation_px=D("50"))
    rebuilt = build_index([], trade_levels(trade), {"ETH": D("100")}, marks={"ETH": D("100")}, now=T0)
    (fired,) = rebuilt.index.on_price("ETH:mark", D("54"), T0)
    ev = event_for_fired(fired)
    assert ev.kind is AlertKind.LIQUIDATION_WARNING
    assert ev.priority == 1
    assert ev.first_action is not None
    assert ev.context["price_source"] == "mark"
    assert ev.trigger_key == "tr_1#liquidation_warning:g1"


def test_unknown_payload_is_refused() -> None:
    ix = PriceTriggerIndex()
    ix.arm(EntryKey("x", UPPER), "BTC", LegDirection.ABOVE, D("1"), payload=42)
    (fired,) = ix.on_price("BTC", D("2"), T0)
    with pytest.raises(TypeError, match="int payload"):
        event_for_fired(fired)


def test_time_event_is_late_after_a_missed_occurrence() -> None:
    alert = TimeAlert(id="t_1", fire_at=T0, every=timedelta(hours=1), prompt="review", created_at=T0)
    due = evaluate(alert, T0 + timedelta(hours=2, minutes=5)).fire
    assert due is not None
    ev = event_for_time(due, alert)
    assert ev.late is True
    assert ev.trigger_key == "t_1#2026-11-24T10:00:00Z"
    assert ev.context == {"prompt": "review", "scheduled_at": "2026-11-24T10:00:00+00:00", "missed": 2, "every": "1h"}
    json.loads(ev.model_dump_json())


def test_stop_check_event_only_when_the_stop_is_wrong() -> None:
    trade = ManagedTrade("tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("1"))
    missing = stop_check(D("90"), [], market="BTC", side=Side.LONG, size=D("1"))
    assert missing.status is StopStatus.MISSING
    ev = event_for_stop_check(trade, missing, fired_at=T0, stop_generation=3)
    assert ev is not None
    assert ev.priority == 0
    assert ev.trigger_key == "tr_1#stop_loss_verification:g3"
    assert ev.context["status"] == "missing"
    stop = TriggerOrder(7, "BTC", False, D("90"), D("1"), True, True)
    ok = stop_check(D("90"), [stop], market="BTC", side=Side.LONG, size=D("1"))
    assert ok.ok
    assert event_for_stop_check(trade, ok, fired_at=T0, stop_generation=3) is None


def test_system_event() -> None:
    ev = system_event(AlertKind.DRIFT, "drift_BTC", T0, fired_at=T0, context={"detail": "position size differs"})
    assert ev.trigger_key == "drift_BTC#2026-11-24T08:00:00Z"
    assert ev.first_action is None
