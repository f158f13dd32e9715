"""Market data into the bus: mids from the websocket's `allMids`, marks from `metaAndAssetCtxs`.

`MarketFeed` publishes:
- `MidsUpdated` for every `allMids` message of the bridge's websocket (and a REST `allMids` snapshot
  after every reconnect, since Hyperliquid does not replay what was missed);
- `MarksUpdated` from `metaAndAssetCtxs`, polled every
  `marks_interval` (weight 20 per request on Hyperliquid: every 5 s costs 240 of the 1200/min budget,
  so the default is 10 s);
- `ConnectionChanged(link="exchange_ws")` on websocket drops and reconnects, and
  `ConnectionChanged(link="exchange_rest")` when mark polling starts or stops failing.

Either it owns a stream (`run_stream()`, which opens `bridge.stream()`), or another single consumer
of the stream (the sync loop) forwards each event to `on_stream_event()`. Both are owned tasks of the
session; nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from revagent.bus import Bus
from revagent.events import ConnectionChanged, MarksUpdated, MidsUpdated
from revagent.exchange.protocol import Disconnected, EventStream, MidsEvent, Reconnected
from revagent.exchange.types import AssetCtx, Meta
from revagent.models import utc_now

log = logging.getLogger(__name__)




class MarketSource(Protocol):
    """What the feed reads of the venue (the Hyperliquid bridge implements it)."""

    async def all_mids(self) -> dict[str, Decimal]: ...
    async def meta_and_asset_ctxs(self) -> tuple[Meta, list[AssetCtx]]: ...
    def stream(self) -> EventStream: ...


def marks_from_contexts(meta: Meta, ctxs: list[AssetCtx]) -> dict[str, Decimal]:
    """market -> mark price from a `metaAndAssetCtxs` answer (contexts in universe order)."""
    return {asset.name: ctx.mark_px for asset, ctx in zip(meta.universe, ctxs, strict=False) if ctx.mark_px > 0}


class MarketFeed:
    """Publishes prices and websocket health for one session (see the module docstring)."""

    def __init__(
        self,
        bridge: MarketSource,
        bus: Bus,
        *,
        marks_interval: timedelta = timedelta(seconds=10),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.bridge = bridge
        self.bus = bus
        self.marks_interval = marks_interval
        self.clock = clock
        self.mids_messages = 0
        self.marks_polls = 0
        self._rest_up: bool | None = None

    def on_stream_event(self, event: object) -> None:
        """Handle one websocket event: mids -> `MidsUpdated`, drops and reconnects -> health."""
        if isinstance(event, MidsEvent):
            self.mids_messages += 1
            self.bus.publish(MidsUpdated(mids=event.mids, at=self.clock()))
        elif isinstance(event, Disconnected):
            self.bus.publish(ConnectionChanged(link="exchange_ws", up=False, detail=event.reason))
        elif isinstance(event, Reconnected):
            self.bus.publish(ConnectionChanged(link="exchange_ws", up=True,
                                               detail=f"reconnected after {event.down_for_s:.1f}s"))

    async def snapshot_mids(self) -> None:
        """Publish a REST `allMids` snapshot (after a reconnect: ticks missed while down)."""
        mids = await self.bridge.all_mids()
        self.bus.publish(MidsUpdated(mids=mids, at=self.clock()))

    async def run_stream(self) -> None:
        """Own a websocket stream and publish from it until cancelled (owned task)."""
        stream = self.bridge.stream()
        await stream.start()
        try:
            async for event in stream:
                self.on_stream_event(event)
                if isinstance(event, Reconnected):
                    try:
                        await self.snapshot_mids()
                    except Exception as exc:
                        log.warning("no mids snapshot after the reconnect: %r", exc)
        finally:
            await stream.aclose()

    async def poll_marks_once(self) -> dict[str, Decimal]:
        meta, ctxs = await self.bridge.meta_and_asset_ctxs()
        marks = marks_from_contexts(meta, ctxs)
        self.marks_polls += 1
        self.bus.publish(MarksUpdated(marks=marks, at=self.clock()))
        return marks

    async def run_marks(self) -> None:
        """Poll marks every `marks_interval` (owned task); failures flip `exchange_rest` health."""
        while True:
            try:
                await self.poll_marks_once()
                if self._rest_up is False:
                    self.bus.publish(ConnectionChanged(link="exchange_rest", up=True))
                self._rest_up = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("mark prices unavailable: %r", exc)
                if self._rest_up is not False:
                    self.bus.publish(ConnectionChanged(link="exchange_rest", up=False, detail=repr(exc)[:200]))
                self._rest_up = False
            await asyncio.sleep(self.marks_interval.total_seconds())
