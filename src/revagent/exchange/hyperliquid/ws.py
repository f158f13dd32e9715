"""`HyperliquidStream`: the websocket of one user as an async iterator of typed events.

Subscribes `allMids`, `orderUpdates`, `userFills` and `userEvents` for the user (the master
address), plus `l2Book` / `bbo` for the markets asked for (`watch_book`). Pings every
`ping_interval_s` (the server drops a connection after 60 s without a client message), treats
`idle_timeout_s` of silence as a dead connection, reconnects with exponential backoff and jitter,
resubscribes, and emits `Reconnected` after every reconnect: Hyperliquid does not replay what was
missed, so the consumer fetches a REST snapshot then. A drop emits `Disconnected` first.

One reader task (named `hl-ws:<user>`) is owned by the stream: `start()` creates it, `aclose()`
cancels it; if it dies of an unexpected error it is logged and iteration raises
ExchangeUnavailableError. Malformed messages are logged and skipped (counted in `malformed`).
Events go to an unbounded queue: the consumer must keep reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp

from revagent.errors import ExchangeUnavailableError
from revagent.exchange.protocol import (
    BboEvent,
    BookEvent,
    Disconnected,
    FillsEvent,
    MidsEvent,
    OrderUpdatesEvent,
    Reconnected,
    StreamEvent,
    UserEventsEvent,
)
from revagent.exchange.types import (
    L2_BOOK,
    WS_ALL_MIDS,
    WS_BBO,
    WS_ORDER_UPDATES,
    WS_USER_EVENT,
    WS_USER_FILLS,
    ExchangeResponseError,
    parse_with,
)

log = logging.getLogger(__name__)

_END = object()
_PING = json.dumps({"method": "ping"})


def ws_url_for(base_url: str) -> str:
    """The websocket URL of an API base URL, as the SDK derives it (`http://h:p` -> `ws://h:p/ws`)."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/ws"
    raise ValueError(f"base URL {base_url!r} must start with http:// or https://")


class HyperliquidStream:
    """Typed websocket events for `user` (see module doc). Iterate it from one consumer."""

    def __init__(
        self,
        url: str,
        *,
        user: str,
        session_factory: Callable[[], aiohttp.ClientSession],
        books: Sequence[str] = (),
        bbos: Sequence[str] = (),
        ping_interval_s: float = 30.0,
        idle_timeout_s: float | None = None,
        connect_timeout_s: float = 10.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.user = user.lower()
        self._session_factory = session_factory
        self._books: set[str] = set(books)
        self._bbos: set[str] = set(bbos)
        self._ping_interval_s = ping_interval_s
        self._idle_timeout_s = idle_timeout_s if idle_timeout_s is not None else 2 * ping_interval_s + 5
        self._connect_timeout_s = connect_timeout_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closed = False
        self._failure: BaseException | None = None
        self.connects = 0
        self.malformed = 0
        self.connected = asyncio.Event()

    # ---------------------------------------------------------------------------- lifecycle

    @property
    def closed(self) -> bool:
        """True once `aclose()` was called."""
        return self._closed

    def _is_closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Start the reader task (idempotent). Returns at once; events follow when connected."""
        if self._closed:
            raise RuntimeError("this stream is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"hl-ws:{self.user}")
            self._task.add_done_callback(self._reader_done)

    async def aclose(self) -> None:
        """Stop the reader, close the socket and end the iteration. Idempotent."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})  # its outcome is logged by _reader_done, never raised here
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        self._queue.put_nowait(_END)

    def _reader_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("websocket reader %s died", task.get_name(), exc_info=exc)
            self._failure = exc
        self._queue.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        while True:
            item = await self._queue.get()
            if item is _END:
                self._queue.put_nowait(_END)  # every later iteration ends too
                if self._failure is not None:
                    raise ExchangeUnavailableError(f"websocket reader died: {self._failure!r}") from self._failure
                return
            yield item

    async def next_event(self, timeout: float | None = None) -> StreamEvent:
        """The next event (raises TimeoutError after `timeout` s, StopAsyncIteration once closed)."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _END:
            self._queue.put_nowait(_END)
            if self._failure is not None:
                raise ExchangeUnavailableError(f"websocket reader died: {self._failure!r}") from self._failure
            raise StopAsyncIteration
        event: StreamEvent = item
        return event

    # ------------------------------------------------------------------------- subscriptions

    def _subscriptions(self) -> list[dict[str, str]]:
        subs: list[dict[str, str]] = [
            {"type": "allMids"},
            {"type": "orderUpdates", "user": self.user},
            {"type": "userFills", "user": self.user},
            {"type": "userEvents", "user": self.user},
        ]
        subs += [{"type": "l2Book", "coin": coin} for coin in sorted(self._books)]
        subs += [{"type": "bbo", "coin": coin} for coin in sorted(self._bbos)]
        return subs

    async def watch_book(self, coin: str, *, bbo: bool = False) -> None:
        """Also stream the L2 book (or, with `bbo`, the best bid/offer) of `coin`, now and after reconnects."""
        target = self._bbos if bbo else self._books
        if coin in target:
            return
        target.add(coin)
        await self._send_sub("subscribe", {"type": "bbo" if bbo else "l2Book", "coin": coin})

    async def unwatch_book(self, coin: str, *, bbo: bool = False) -> None:
        target = self._bbos if bbo else self._books
        if coin not in target:
            return
        target.discard(coin)
        await self._send_sub("unsubscribe", {"type": "bbo" if bbo else "l2Book", "coin": coin})

    async def _send_sub(self, method: str, subscription: dict[str, str]) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await ws.send_str(json.dumps({"method": method, "subscription": subscription}))

    # -------------------------------------------------------------------------------- reader

    def _backoff(self, attempt: int) -> float:
        base: float = min(self._backoff_max_s, self._backoff_base_s * 2 ** (attempt - 1))
        return base * self._rng.uniform(0.5, 1.5)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        ever_connected = False
        down_since: float | None = None
        attempt = 0
        while not self._is_closed():
            reason: str
            try:
                connecting = self._session_factory().ws_connect(
                    self.url, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0), autoping=True
                )
                ws = await asyncio.wait_for(connecting, self._connect_timeout_s)
                async with ws:
                    self._ws = ws
                    for sub in self._subscriptions():
                        await ws.send_str(json.dumps({"method": "subscribe", "subscription": sub}))
                    self.connects += 1
                    self.connected.set()
                    if ever_connected:
                        down = loop.time() - down_since if down_since is not None else 0.0
                        self._queue.put_nowait(Reconnected(attempt=attempt, down_for_s=down))
                    ever_connected = True
                    attempt = 0
                    down_since = None
                    reason = await self._read(ws, loop)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                self.connected.clear()
            if self._is_closed():
                return
            if down_since is None:
                down_since = loop.time()
                if ever_connected:
                    log.warning("websocket %s dropped: %s", self.url, reason)
                    self._queue.put_nowait(Disconnected(reason))
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, loop: asyncio.AbstractEventLoop) -> str:
        """Read until the connection ends; return why it ended."""
        next_ping = loop.time() + self._ping_interval_s
        last_rx = loop.time()
        while True:
            msg: aiohttp.WSMessage | None
            try:
                msg = await ws.receive(timeout=max(0.0, next_ping - loop.time()))
            except TimeoutError:
                msg = None
            now = loop.time()
            if now >= next_ping:
                await ws.send_str(_PING)
                next_ping = now + self._ping_interval_s
            if msg is None:
                if now - last_rx > self._idle_timeout_s:
                    await ws.close()
                    return f"no message for {now - last_rx:.0f}s"
                continue
            last_rx = now
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._dispatch(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return f"closed by server (code {ws.close_code})"
            elif msg.type == aiohttp.WSMsgType.ERROR:
                return f"socket error: {ws.exception()!r}"

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return  # "Websocket connection established." and other plain text
        if not isinstance(message, dict):
            return
        channel = message.get("channel")
        data = message.get("data")
        try:
            event = self._event(channel, data)
        except ExchangeResponseError as exc:
            self.malformed += 1
            log.warning("skipping malformed websocket message: %s", exc)
            return
        if event is not None:
            self._queue.put_nowait(event)

    def _event(self, channel: Any, data: Any) -> StreamEvent | None:
        if channel == "allMids":
            return MidsEvent(parse_with(WS_ALL_MIDS, data, endpoint="ws:allMids").mids)
        if channel == "orderUpdates":
            updates = parse_with(WS_ORDER_UPDATES, data, endpoint="ws:orderUpdates")
            return OrderUpdatesEvent(tuple(updates))
        if channel == "userFills":
            fills = parse_with(WS_USER_FILLS, data, endpoint="ws:userFills")
            return FillsEvent(fills.user.lower(), tuple(fills.fills), fills.is_snapshot)
        if channel == "user":
            return UserEventsEvent(parse_with(WS_USER_EVENT, data, endpoint="ws:user"))
        if channel == "l2Book":
            return BookEvent(parse_with(L2_BOOK, data, endpoint="ws:l2Book"))
        if channel == "bbo":
            return BboEvent(parse_with(WS_BBO, data, endpoint="ws:bbo"))
        if channel == "error":
            log.warning("websocket error message: %s", data)
        return None  # pong, subscriptionResponse, post, anything new
