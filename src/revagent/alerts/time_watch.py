"""The time alerts job of the alert scheduler: stored time alerts in a `DueQueue`, fired when due.

The scheduler's one timer (`AlertScheduler.run_timer`) wakes for the next due occurrence; a change of
a stored time alert (from this process or another) reschedules it (`reload`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from revagent.alerts.firing import event_for_time
from revagent.alerts.scheduling import SchedulerCore
from revagent.alerts.time_rules import DueQueue, apply, evaluate
from revagent.models import TimeAlert

log = logging.getLogger(__name__)


class TimeWatch:
    """Time alerts: when each is next due, and what fires then."""

    def __init__(self, core: SchedulerCore) -> None:
        self.core = core
        self.due = DueQueue()

    async def load(self) -> None:
        """Schedule every stored time alert. Lock held."""
        for alert in await self.core.store.time_alerts.all():
            self.due.schedule_alert(alert)

    async def reload(self, alert_id: str | None = None) -> None:
        """Reschedule the stored time alert (or all of them when `alert_id` is None)."""
        core = self.core
        async with core.lock:
            if alert_id is not None:
                alert = await core.store.time_alerts.get(alert_id)
                if alert is None:
                    self.due.cancel(alert_id)
                else:
                    self.due.schedule_alert(alert)
            else:
                due = DueQueue()
                for alert in await core.store.time_alerts.all():
                    due.schedule_alert(alert)
                self.due = due
        core.wake.set()

    async def fire_due(self, now: datetime) -> None:
        """Fire every time alert due at `now`. Lock held."""
        for alert_id in self.due.pop_due(now):
            await self._fire_time_alert(alert_id, now)

    async def _fire_time_alert(self, alert_id: str, now: datetime) -> None:
        core = self.core
        alert: TimeAlert | None = await core.store.time_alerts.get(alert_id)
        if alert is None:
            return
        evaluation = evaluate(alert, now, late_after=core.timings.late_after, horizon=core.settings.missed_horizon)
        if evaluation.fire is not None and not await core.enqueue_or_keep(event_for_time(evaluation.fire, alert)):
            self.due.schedule(alert.id, now + timedelta(seconds=1))
            return
        if evaluation.skipped is not None:
            log.warning("time alert %s skipped: %s", alert.id, evaluation.skipped.reason)
        updated = apply(alert, evaluation)
        if evaluation.changed:
            await core.store.time_alerts.put(updated)
        self.due.schedule_alert(updated)
