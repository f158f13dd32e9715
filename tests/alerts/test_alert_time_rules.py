"""Time alerts: once at their time, repeats, missed while down (late / beyond the horizon), due queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.alerts.time_rules import DueQueue, apply, evaluate
from revagent.models import TimeAlert, TimeAlertStatus

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


def alert(fire_at: datetime = T0, every: timedelta | None = None, **kw: object) -> TimeAlert:
    return TimeAlert(id="t_1", fire_at=fire_at, every=every, prompt="check BTC", created_at=T0 - H, **kw)


def test_not_due_before_its_time() -> None:
    ev = evaluate(alert(), T0 - timedelta(seconds=1))
    assert ev.fire is None
    assert ev.skipped is None
    assert ev.next_fire_at == T0
    assert apply(alert(), ev) == alert()


def test_fires_once_at_its_time_and_then_is_done() -> None:
    a = alert()
    ev = evaluate(a, T0 + timedelta(seconds=2))
    assert ev.fire is not None
    assert ev.fire.scheduled_at == T0
    assert ev.fire.late is False
    assert ev.fire.trigger_key == "t_1#2026-11-24T08:00:00Z"
    assert ev.status is TimeAlertStatus.FIRED
    after = apply(a, ev)
    assert after.status is TimeAlertStatus.FIRED
    assert after.last_fired_at == T0 + timedelta(seconds=2)
    again = evaluate(after, T0 + H)
    assert again.fire is None
    assert again.next_fire_at is None


def test_evaluating_the_same_state_twice_gives_the_same_key() -> None:
    """A crash after enqueueing but before saving: the retry carries the same trigger key."""
    a = alert(every=H)
    first = evaluate(a, T0 + timedelta(seconds=1))
    second = evaluate(a, T0 + timedelta(minutes=5))
    assert first.fire is not None
    assert second.fire is not None
    assert first.fire.trigger_key == second.fire.trigger_key


def test_missed_while_down_fires_late_at_start_up() -> None:
    ev = evaluate(alert(), T0 + 3 * H, horizon=timedelta(hours=24))
    assert ev.fire is not None
    assert ev.fire.late is True
    assert ev.fire.lateness == 3 * H
    assert ev.status is TimeAlertStatus.FIRED


def test_missed_beyond_the_horizon_is_skipped_and_reported() -> None:
    ev = evaluate(alert(), T0 + 25 * H, horizon=timedelta(hours=24))
    assert ev.fire is None
    assert ev.skipped is not None
    assert ev.skipped.scheduled_at == T0
    assert "horizon" in ev.skipped.reason
    assert apply(alert(), ev).status is TimeAlertStatus.SKIPPED


def test_repeat_moves_to_the_next_occurrence() -> None:
    a = alert(every=H)
    ev = evaluate(a, T0)
    assert ev.fire is not None
    assert ev.fire.missed == 0
    assert ev.next_fire_at == T0 + H
    a2 = apply(a, ev)
    assert a2.fire_at == T0 + H
    assert a2.status is TimeAlertStatus.SCHEDULED
    ev2 = evaluate(a2, T0 + H + timedelta(seconds=1))
    assert ev2.fire is not None
    assert ev2.fire.trigger_key == "t_1#2026-11-24T09:00:00Z"
    assert ev2.fire.trigger_key != ev.fire.trigger_key


def test_repeat_that_missed_several_fires_once_late_and_moves_to_the_future() -> None:
    a = alert(every=H)
    now = T0 + 5 * H + timedelta(minutes=10)
    ev = evaluate(a, now)
    assert ev.fire is not None
    assert ev.fire.scheduled_at == T0 + 5 * H  # the most recent missed occurrence
    assert ev.fire.missed == 5
    assert ev.fire.late is True
    assert ev.next_fire_at == T0 + 6 * H
    assert evaluate(apply(a, ev), now).fire is None  # nothing more until 14:00


def test_repeat_beyond_the_horizon_skips_but_keeps_repeating() -> None:
    a = alert(every=timedelta(days=7))
    ev = evaluate(a, T0 + timedelta(days=3), horizon=timedelta(hours=24))
    assert ev.fire is None
    assert ev.skipped is not None
    assert ev.next_fire_at == T0 + timedelta(days=7)
    assert apply(a, ev).status is TimeAlertStatus.SCHEDULED


def test_cancelled_alerts_never_fire_and_bad_arguments_are_refused() -> None:
    assert evaluate(alert(status=TimeAlertStatus.CANCELLED), T0 + H).fire is None
    with pytest.raises(ValueError, match="timezone"):
        evaluate(alert(), datetime(2026, 11, 24, 9))
    with pytest.raises(ValueError, match="horizon"):
        evaluate(alert(), T0, horizon=timedelta(seconds=1), late_after=timedelta(seconds=30))


@settings(max_examples=200, deadline=None)
@given(
    every_min=st.integers(1, 24 * 60),
    elapsed_s=st.integers(0, 30 * 24 * 3600),
    horizon_h=st.integers(1, 48),
)
def test_repeat_invariants(every_min: int, elapsed_s: int, horizon_h: int) -> None:
    every = timedelta(minutes=every_min)
    now = T0 + timedelta(seconds=elapsed_s)
    ev = evaluate(alert(every=every), now, horizon=timedelta(hours=horizon_h))
    assert ev.next_fire_at is not None
    assert now < ev.next_fire_at <= now + every  # always the first occurrence after now
    assert (ev.next_fire_at - T0) % every == timedelta(0)
    occurrence = ev.fire or ev.skipped
    assert occurrence is not None  # exactly one of them
    assert (ev.fire is None) != (ev.skipped is None)
    assert occurrence.scheduled_at == ev.next_fire_at - every


# --- the due queue -----------------------------------------------------------------------------


def test_due_queue_orders_reschedules_and_cancels() -> None:
    q = DueQueue()
    assert q.next_due() is None
    q.schedule("b", T0 + 2 * H)
    q.schedule("a", T0 + H)
    q.schedule("c", T0 + 3 * H)
    assert q.next_due() == T0 + H
    q.schedule("a", T0 + 4 * H)  # re-scheduled later
    assert q.next_due() == T0 + 2 * H
    assert q.cancel("b") is True
    assert q.cancel("b") is False
    assert q.next_due() == T0 + 3 * H
    assert q.pop_due(T0 + 3 * H) == ["c"]
    assert q.when("a") == T0 + 4 * H
    assert len(q) == 1
    assert q.pop_due(T0 + 10 * H) == ["a"]
    assert q.next_due() is None


def test_due_queue_follows_stored_alert_status_and_stays_bounded() -> None:
    q = DueQueue()
    q.schedule_alert(alert())
    assert "t_1" in q
    q.schedule_alert(alert(status=TimeAlertStatus.FIRED))
    assert "t_1" not in q
    for i in range(5000):
        q.schedule("x", T0 + timedelta(seconds=i))
    assert len(q._heap) <= 2 * len(q) + 64 + 1
    assert q.pop_due(T0 + timedelta(hours=5)) == ["x"]
