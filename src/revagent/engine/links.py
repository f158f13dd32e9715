"""The state of the session's links (exchange websocket and REST, the model, Redis) for the snapshot's
HEALTH section, from the bus's `ConnectionChanged` events.

No task of its own: the subscription's queue is drained when a state is read (each turn's snapshot),
so nothing runs between turns and nothing needs cancelling. A link never reported is unknown (None).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from revagent.bus import Bus, Subscription
from revagent.events import ConnectionChanged
from revagent.models import utc_now


@dataclass(frozen=True, slots=True)
class LinkState:
    up: bool
    since: datetime  # when this process saw the change
    detail: str = ""


class LinkHealth:
    """The last reported state of each link (see the module docstring)."""

    def __init__(self, bus: Bus, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self._sub: Subscription | None = bus.subscribe(ConnectionChanged, maxsize=10_000)
        self._states: dict[str, LinkState] = {}

    def _drain(self) -> None:
        if self._sub is None:
            return
        while True:
            try:
                event = self._sub.queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if isinstance(event, ConnectionChanged):
                last = self._states.get(event.link)
                if last is None or last.up != event.up:
                    self._states[event.link] = LinkState(event.up, self.clock(), event.detail)

    def state(self, link: str) -> LinkState | None:
        self._drain()
        return self._states.get(link)

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
