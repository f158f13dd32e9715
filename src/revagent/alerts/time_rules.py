"""When time alerts fire: due occurrences, lateness, the missed-while-down horizon, and a due queue.

Pure: no I/O, no clock (`now` is passed in). A `TimeAlert`'s `fire_at` is its *next scheduled
occurrence*; after an occurrence is handled the store saves `apply(alert, evaluation)`, which moves
`fire_at` on (repeating) or closes the alert (one-shot).

Rules (`evaluate`):
- Not yet due (`now < fire_at`) or not SCHEDULED: nothing fires.
- Due: the occurrence fires once. It is `late` when it fires more than `late_after` after its
  scheduled time (the process was down, or the loop was stalled).
- A one-shot alert older than `horizon` is skipped (reported, status SKIPPED), not fired.
- A repeating alert that missed several occurrences fires **once**, for the most recent missed
  occurrence (late if it is older than `late_after`), and moves to the first occurrence after `now`;
  the others are counted in `missed`. If even the most recent missed occurrence is older than
  `horizon`, nothing fires (reported as skipped) and it still moves on.
- The trigger key of an occurrence is built from its *scheduled* time, so evaluating the same state
  twice (a crash before the store saved `apply`'s result) yields the same key and the queue's
  de-duplication absorbs it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta

from revagent.models import TimeAlert, TimeAlertStatus
from revagent.store.alert_events import trigger_key

DEFAULT_LATE_AFTER = timedelta(seconds=30)
DEFAULT_HORIZON = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class DueOccurrence:
    """One occurrence to enqueue now."""

    alert_id: str
    scheduled_at: datetime
    fired_at: datetime
    late: bool
    missed: int
    """Older occurrences of a repeating alert collapsed into this one (0 normally)."""

    @property
    def trigger_key(self) -> str:
        return trigger_key(self.alert_id, self.scheduled_at)

    @property
    def lateness(self) -> timedelta:
        return self.fired_at - self.scheduled_at


@dataclass(frozen=True, slots=True)
class SkippedOccurrence:
    """An occurrence not fired because it was older than the horizon when the process saw it."""

    alert_id: str
    scheduled_at: datetime
    missed: int
    reason: str


@dataclass(frozen=True, slots=True)
class TimeEvaluation:
    """What to do with one time alert at `now`.

    `next_fire_at` is when the alert is next due (None: it is finished); `status` its status after
    this evaluation.
    """

    fire: DueOccurrence | None
    skipped: SkippedOccurrence | None
    next_fire_at: datetime | None
    status: TimeAlertStatus

    @property
    def changed(self) -> bool:
        return self.fire is not None or self.skipped is not None


def evaluate(
    alert: TimeAlert,
    now: datetime,
    *,
    late_after: timedelta = DEFAULT_LATE_AFTER,
    horizon: timedelta = DEFAULT_HORIZON,
) -> TimeEvaluation:
    """Evaluate one time alert at `now` (aware UTC) under the module's rules."""
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone (UTC)")
    if horizon < late_after:
        raise ValueError(f"the horizon ({horizon}) cannot be shorter than late_after ({late_after})")
    if alert.status is not TimeAlertStatus.SCHEDULED:
        return TimeEvaluation(None, None, None, alert.status)
    if now < alert.fire_at:
        return TimeEvaluation(None, None, alert.fire_at, alert.status)
    if alert.every is None:
        lateness = now - alert.fire_at
        if lateness > horizon:
            skipped = SkippedOccurrence(
                alert.id, alert.fire_at, 0, f"missed by {lateness}, more than the horizon {horizon}"
            )
            return TimeEvaluation(None, skipped, None, TimeAlertStatus.SKIPPED)
        due = DueOccurrence(alert.id, alert.fire_at, now, lateness > late_after, 0)
        return TimeEvaluation(due, None, None, TimeAlertStatus.FIRED)
    periods = (now - alert.fire_at) // alert.every  # occurrences strictly after the first that are due
    latest = alert.fire_at + periods * alert.every
    following = latest + alert.every
    lateness = now - latest
    if lateness > horizon:
        skipped = SkippedOccurrence(
            alert.id, latest, periods + 1, f"missed by {lateness}, more than the horizon {horizon}"
        )
        return TimeEvaluation(None, skipped, following, TimeAlertStatus.SCHEDULED)
    due = DueOccurrence(alert.id, latest, now, lateness > late_after, periods)
    return TimeEvaluation(due, None, following, TimeAlertStatus.SCHEDULED)


def apply(alert: TimeAlert, evaluation: TimeEvaluation) -> TimeAlert:
    """The alert as the store should save it after `evaluation` was handled (a new object)."""
    if not evaluation.changed:
        return alert
    update: dict[str, object] = {"status": evaluation.status}
    if evaluation.next_fire_at is not None:
        update["fire_at"] = evaluation.next_fire_at
    if evaluation.fire is not None:
        update["last_fired_at"] = evaluation.fire.fired_at
    return alert.model_copy(update=update)


class DueQueue:
    """Time alerts by next fire time, for one timer: `next_due()` is when to wake up.

    A heap with lazy deletion: re-scheduling or cancelling leaves a stale heap item that is skipped
    when it surfaces; the heap is rebuilt when more than half of it is stale, so it stays O(live).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str]] = []
        self._live: dict[str, tuple[datetime, int]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._live

    def schedule(self, alert_id: str, fire_at: datetime) -> None:
        """Schedule (or re-schedule) one alert at `fire_at`."""
        self._seq += 1
        self._live[alert_id] = (fire_at, self._seq)
        heapq.heappush(self._heap, (fire_at, self._seq, alert_id))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [(at, seq, aid) for aid, (at, seq) in self._live.items()]
            heapq.heapify(self._heap)

    def schedule_alert(self, alert: TimeAlert) -> None:
        """Schedule a stored alert at its `fire_at`, or cancel it if it is no longer SCHEDULED."""
        if alert.status is TimeAlertStatus.SCHEDULED:
            self.schedule(alert.id, alert.fire_at)
        else:
            self.cancel(alert.id)

    def cancel(self, alert_id: str) -> bool:
        return self._live.pop(alert_id, None) is not None

    def when(self, alert_id: str) -> datetime | None:
        item = self._live.get(alert_id)
        return item[0] if item is not None else None

    def next_due(self) -> datetime | None:
        """The earliest scheduled fire time, None when nothing is scheduled."""
        heap = self._heap
        while heap:
            at, seq, alert_id = heap[0]
            if self._live.get(alert_id) == (at, seq):
                return at
            heapq.heappop(heap)
        return None

    def pop_due(self, now: datetime) -> list[str]:
        """Remove and return the ids of every alert due at or before `now`, earliest first.

        The caller evaluates each (with `evaluate`) and schedules the repeating ones again.
        """
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, seq, alert_id = heapq.heappop(heap)
            if self._live.get(alert_id) == (at, seq):
                del self._live[alert_id]
                out.append(alert_id)
        return out
