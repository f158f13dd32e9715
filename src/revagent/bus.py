"""The session's in-process event bus, and the JSON wire format of its Redis mirror.

Producers publish typed events; consumers subscribe with a bounded queue of their own and never
block a producer. A consumer that falls behind loses its oldest events and is told how many it
missed (the TUI then refreshes from a snapshot), so one slow reader cannot stall trading.

Selected events are mirrored to the session's Redis pub/sub channel as
`{"type": ..., "v": WIRE_VERSION, "payload": {...}}` so other processes can invalidate what
they show. Store writes publish `store.changed` events in the same format.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

WIRE_VERSION = 1


class Event(BaseModel):
    """Base of every bus event. `type` is the stable wire name; `mirrored` events go to Redis."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    type: ClassVar[str] = "event"
    mirrored: ClassVar[bool] = False


_EVENT_TYPES: dict[str, type[Event]] = {}


def register(*types: type[Event]) -> None:
    """Make event classes decodable from the wire (`revagent.events` registers every bus event)."""
    for t in types:
        _EVENT_TYPES[t.type] = t



def encode(event: Event) -> str:
    return json.dumps(
        {"type": event.type, "v": WIRE_VERSION, "payload": event.model_dump(mode="json")},
        separators=(",", ":"),
    )


def encode_raw(type_: str, payload: dict[str, Any]) -> str:
    return json.dumps({"type": type_, "v": WIRE_VERSION, "payload": payload}, separators=(",", ":"))


@dataclass(frozen=True)
class WireMessage:
    type: str
    version: int
    payload: dict[str, Any]

    def to_event(self) -> Event | None:
        cls = _EVENT_TYPES.get(self.type)
        if cls is None:
            return None
        return cls.model_validate(self.payload)


def decode(raw: str | bytes) -> WireMessage:
    """Parse a wire message; raises ValueError on anything that is not one."""
    try:
        doc = json.loads(raw)
        return WireMessage(str(doc["type"]), int(doc["v"]), dict(doc["payload"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a revagent wire message: {exc}") from None


@dataclass
class Subscription:
    """One consumer's queue. Iterate it, or `get()`; `missed` counts events dropped for it."""

    queue: asyncio.Queue[Event]
    accepts: Callable[[Event], bool]
    missed: int = 0
    _bus: Bus | None = field(default=None, repr=False)

    async def get(self) -> Event:
        return await self.queue.get()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        if self._bus is not None:
            self._bus.unsubscribe(self)
            self._bus = None


class Bus:
    """Typed in-process publish/subscribe. `publish` never blocks and never raises."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._mirror: Callable[[Event], None] | None = None

    def subscribe(self, *types: type[Event], maxsize: int = 1000) -> Subscription:
        wanted = tuple(types)

        def accepts(ev: Event) -> bool:
            return not wanted or isinstance(ev, wanted)

        sub = Subscription(asyncio.Queue(maxsize), accepts, _bus=self)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def backlog(self, *types: type[Event]) -> int:
        """Events (of `types`; any when none is given) published and not yet taken by their consumers:
        a replay waits for 0 before it moves market time on. Some consumers read only now and then (a
        link tracker): ask for the types that drive work."""
        pending: list[Event] = [ev for sub in self._subs for ev in sub.queue._queue]  # type: ignore[attr-defined]
        return sum(1 for ev in pending if not types or isinstance(ev, types))

    def set_mirror(self, mirror: Callable[[Event], None] | None) -> None:
        """A callable given every `mirrored` event (the session forwards them to Redis)."""
        self._mirror = mirror

    def publish(self, event: Event) -> None:
        for sub in self._subs:
            if not sub.accepts(event):
                continue
            q = sub.queue
            if q.full():
                try:
                    q.get_nowait()
                except asyncio.QueueEmpty:
                    pass
                sub.missed += 1
            q.put_nowait(event)
        if event.mirrored and self._mirror is not None:
            try:
                self._mirror(event)
            except Exception:
                log.exception("bus mirror failed for %s", event.type)
