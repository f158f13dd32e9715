"""Following `store.changed` invalidations on a session's Redis channel, from the owner's process.

A write from the shell (`revagent watchers add`, `revagent alerts rm`) publishes `store.changed` on
the session channel in the same transaction as the write (see `store/repos.py`). The scheduler
follows that channel with a dedicated pub/sub connection so the change is picked up at once.

The client is the store's own (`SessionStore.redis`); this module only calls its `pubsub()` and
never imports redis (layering: only `store/` does). After a dropped connection it resubscribes with
backoff and yields a `StoreChanged(what="*")`: something may have been missed, reload everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from revagent.bus import Event, decode
from revagent.events import StoreChanged

log = logging.getLogger(__name__)

RELOAD_ALL = "*"


E = TypeVar("E", bound=Event)


class _ChannelFeed(Generic[E]):
    """An async iterator of decoded events of one session channel, resubscribing after a drop (and
    then yielding a reload-everything `StoreChanged`, since pub/sub does not replay). One consumer;
    `aclose()` ends it. `subscribe()` must be awaited before the caller loads its state, so nothing
    written between the load and the subscription is missed."""

    def __init__(self, redis: Any, channel: str, *, backoff_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        self._redis = redis
        self.channel = channel
        self._pubsub: Any = None
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def subscribe(self) -> None:
        """Open the dedicated connection and subscribe (idempotent)."""
        if self._pubsub is None:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(self.channel)
            self._pubsub = pubsub

    async def aclose(self) -> None:
        self._closed = True
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception as exc:  # closing a broken connection: nothing left to do
                log.debug("closing the invalidation subscription: %r", exc)

    def _parse(self, raw: Any) -> E | None:
        raise NotImplementedError

    async def __aiter__(self) -> AsyncIterator[E | StoreChanged]:
        delay = self._backoff_s
        while not self._closed:
            try:
                await self.subscribe()
                assert self._pubsub is not None
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                _check_cancelled()
                delay = self._backoff_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _check_cancelled()
                if self.closed:
                    return
                log.warning("invalidation channel lost (%r); resubscribing in %.1fs", exc, delay)
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
                try:
                    await self.subscribe()
                except asyncio.CancelledError:
                    raise
                except Exception as again:
                    log.warning("resubscribing failed: %r", again)
                    continue
                yield StoreChanged(what=RELOAD_ALL, id=None, op="reload")
                continue
            if message is None or message.get("type") != "message":
                continue
            event = self._parse(message.get("data"))
            if event is not None:
                yield event

    async def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception as exc:
                log.debug("dropping a broken subscription: %r", exc)


class StoreInvalidations(_ChannelFeed[StoreChanged]):
    """An async iterator of `StoreChanged` for one session channel. One consumer; `aclose()` ends it.

    `subscribe()` must be awaited before the caller loads its state, so nothing written between the
    load and the subscription is missed.
    """

    def _parse(self, raw: Any) -> StoreChanged | None:
        return parse_store_changed(raw)


class SessionEventFeed(_ChannelFeed[Event]):
    """Every mirrored bus event of a session (a viewer's live feed), less the `exclude`d types."""

    def __init__(self, redis: Any, channel: str, *, exclude: frozenset[str] = frozenset()) -> None:
        super().__init__(redis, channel)
        self.exclude = exclude

    def _parse(self, raw: Any) -> Event | None:
        if not isinstance(raw, str | bytes):
            return None
        try:
            wire = decode(raw)
            return None if wire.type in self.exclude else wire.to_event()
        except ValueError:
            return None


def _check_cancelled() -> None:
    """redis-py 8 can swallow a cancel that lands while a blocking read finishes (see `runner.check_cancelled`)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def parse_store_changed(raw: Any) -> StoreChanged | None:
    """The `StoreChanged` of one channel message, None for anything else (other events, garbage)."""
    if not isinstance(raw, str | bytes):
        return None
    try:
        wire = decode(raw)
    except ValueError:
        return None
    if wire.type != StoreChanged.type:
        return None
    try:
        return StoreChanged.model_validate(wire.payload)
    except ValueError:
        return None
