"""The websocket hub at `/ws`: greeting, ping/pong, subscribe/unsubscribe acks, `post` requests, and the
channels the SDK routes on (allMids, l2Book, trades, bbo, candle, orderUpdates, userFills, user,
activeAssetCtx, userFundings, userNonFundingLedgerUpdates).

Each connection has a bounded outbound queue drained by its own writer task; a consumer that falls
`queue_limit` messages behind is disconnected. Messages for many subscribers are serialized once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from revagent.exchange.sim import info as info_mod
from revagent.exchange.sim.venue import Event, Venue

log = logging.getLogger(__name__)
GREETING = "Websocket connection established."
Key = tuple[str, ...]
BOOK_PUSH_INTERVAL_S = 0.5  # book and bbo pushes caused by trades, at most this often per coin
USER_VIEW_PUSH_INTERVAL_S = 1.0  # webData2 / activeAssetData pushes, at most this often per subscription
USER_CHANNELS = ("orderUpdates", "userFills", "userEvents", "userFundings", "userNonFundingLedgerUpdates")
COIN_CHANNELS = ("l2Book", "trades", "bbo", "activeAssetCtx")


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def subscription_key(sub: Any) -> Key | None:
    """The hub's key for a subscription object, or None when it is not one the simulator serves."""
    if not isinstance(sub, dict):
        return None
    kind = sub.get("type")
    if kind == "allMids":
        return ("allMids",)
    if kind in COIN_CHANNELS and isinstance(sub.get("coin"), str):
        return (kind, sub["coin"])
    if kind == "candle" and isinstance(sub.get("coin"), str) and isinstance(sub.get("interval"), str):
        return ("candle", sub["coin"], sub["interval"])
    if kind in USER_CHANNELS and isinstance(sub.get("user"), str):
        return (kind, sub["user"].lower())
    if kind == "webData2" and isinstance(sub.get("user"), str):
        return ("webData2", sub["user"].lower())
    if kind == "activeAssetData" and isinstance(sub.get("user"), str) and isinstance(sub.get("coin"), str):
        return ("activeAssetData", sub["user"].lower(), sub["coin"])
    return None


class Connection:
    def __init__(self, ws: web.WebSocketResponse, limit: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=limit)
        self.keys: set[Key] = set()
        self.overflowed = False

    def send(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("websocket consumer too slow; disconnecting it")
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.get_nowait()
                self.queue.put_nowait(None)


class Hub:
    """Fans venue events and market data out to subscribed connections. Runs on the server's loop only."""

    def __init__(self, venue: Venue, post: Callable[[dict[str, Any]], Awaitable[Any]], *, queue_limit: int,
                 idle_timeout_s: float | None = None) -> None:
        self.venue = venue
        self.idle_timeout_s = idle_timeout_s
        self.post = post  # handles {"type": "info"|"action", "payload": ...}, returns the response payload
        self.queue_limit = queue_limit
        self.subs: dict[Key, set[Connection]] = defaultdict(set)
        self.connections: set[Connection] = set()
        self._last_book_push: dict[Key, float] = {}
        self.on_subscribe: Callable[[Key], Awaitable[None]] | None = None  # e.g. put an upstream market in use

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws, self.queue_limit)
        self.connections.add(conn)
        writer = asyncio.create_task(self._writer(conn), name="sim-ws-writer")
        conn.send(GREETING)
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=self.idle_timeout_s)
                except TimeoutError:
                    log.info("closing a websocket idle for %ss", self.idle_timeout_s)
                    break
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
        finally:
            self._drop(conn)
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(None)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    async def _writer(self, conn: Connection) -> None:
        try:
            while True:
                text = await conn.queue.get()
                if text is None:
                    await conn.ws.close()
                    return
                await conn.ws.send_str(text)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError):
            return
        except Exception:
            log.exception("websocket writer died")

    def _drop(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for key in conn.keys:
            self.subs[key].discard(conn)
        conn.keys.clear()

    async def close_all(self) -> int:
        """Drop every websocket (a fault the tests inject, and shutdown); returns how many were open."""
        conns = list(self.connections)
        for conn in conns:
            self._drop(conn)
            with contextlib.suppress(Exception):
                await conn.ws.close()
        return len(conns)

    async def _on_text(self, conn: Connection, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            conn.send(_dumps({"channel": "error", "data": f"Invalid message: {text[:200]}"}))
            return
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            conn.send('{"channel":"pong"}')
        elif method in ("subscribe", "unsubscribe"):
            sub = msg.get("subscription")
            key = subscription_key(sub)
            if key is None:
                conn.send(_dumps({"channel": "error", "data": f"Invalid subscription {_dumps(sub)}"}))
                return
            if method == "subscribe":
                if self.on_subscribe is not None:
                    await self.on_subscribe(key)
                conn.keys.add(key)
                self.subs[key].add(conn)
                conn.send(_dumps({"channel": "subscriptionResponse", "data": msg}))
                self._snapshot(conn, key)
            else:
                conn.keys.discard(key)
                self.subs[key].discard(conn)
                conn.send(_dumps({"channel": "subscriptionResponse", "data": msg}))
        elif method == "post":
            request = msg.get("request")
            response = await self.post(request if isinstance(request, dict) else {})
            conn.send(_dumps({"channel": "post", "data": {"id": msg.get("id"), "response": response}}))
        else:
            conn.send(_dumps({"channel": "error", "data": f"Unknown method: {text[:200]}"}))

    # what a subscriber gets at once ------------------------------------------------------------------------
    def _snapshot(self, conn: Connection, key: Key) -> None:
        v = self.venue
        kind = key[0]
        if kind == "allMids":
            conn.send(_dumps({"channel": "allMids", "data": {"mids": info_mod.all_mids(v)}}))
        elif kind in ("l2Book", "bbo", "activeAssetCtx") and key[1] in v.markets:
            conn.send(self._coin_message(kind, key[1]))
        elif kind in ("webData2", "activeAssetData"):
            text = self._user_view(key)
            if text is not None:
                conn.send(text)
        elif kind == "candle" and key[1] in v.markets:
            cur = self._candle(key)
            if cur is not None:
                conn.send(cur)
        elif kind == "userFills":
            fills = info_mod.user_fills(v, key[1])
            conn.send(_dumps({"channel": "userFills", "data": {"isSnapshot": True, "user": key[1],
                                                                 "fills": fills}}))
        elif kind == "userFundings":
            funding = [dict(f["delta"], time=f["time"]) for f in v.view_account(key[1]).funding[-500:]]
            conn.send(_dumps({"channel": "userFundings", "data": {"isSnapshot": True, "user": key[1],
                                                                    "fundings": funding}}))
        elif kind == "userNonFundingLedgerUpdates":
            ledger = v.view_account(key[1]).ledger[-500:]
            conn.send(_dumps({"channel": "userNonFundingLedgerUpdates",
                              "data": {"isSnapshot": True, "user": key[1], "nonFundingLedgerUpdates": ledger}}))

    def _coin_message(self, kind: str, coin: str) -> str:
        if kind == "l2Book":
            return _dumps({"channel": "l2Book", "data": info_mod.l2_book(self.venue, coin)})
        if kind == "bbo":
            return _dumps({"channel": "bbo", "data": info_mod.bbo(self.venue, coin)})
        return _dumps({"channel": "activeAssetCtx",
                       "data": {"coin": coin, "ctx": info_mod.asset_ctx(self.venue, coin)}})

    def _user_view(self, key: Key) -> str | None:
        """`webData2` (user) or `activeAssetData` (user, coin): the /info answer of the same name, pushed."""
        if key[0] == "activeAssetData":
            if key[2] not in self.venue.markets:
                return None
            data = info_mod.HANDLERS["activeAssetData"](self.venue, {"user": key[1], "coin": key[2]})
        else:
            data = info_mod.HANDLERS["webData2"](self.venue, {"user": key[1]})
        return _dumps({"channel": key[0], "data": data})

    def _candle(self, key: Key) -> str | None:
        from revagent.exchange.sim.candles import INTERVALS

        if key[2] not in INTERVALS:
            return None
        cur = self.venue.markets[key[1]].candles.current(key[2], self.venue.now_ms)
        return None if cur is None else _dumps({"channel": "candle", "data": cur})

    # events --------------------------------------------------------------------------------------------------
    def publish(self, events: list[Event]) -> None:
        """Fan out the venue's events (and, on a tick, market data); the caller clears the list."""
        if not events:
            return
        orders: dict[str, list[Any]] = defaultdict(list)
        fills: dict[str, list[Any]] = defaultdict(list)
        trades: dict[str, list[Any]] = defaultdict(list)
        tick = False
        for kind, key, payload in events:
            if kind == "order":
                orders[key].append(payload)
            elif kind == "fill":
                fills[key].append(payload)
            elif kind == "trade":
                trades[key].append(payload)
            elif kind == "userEvent":
                self._fan(("userEvents", key), {"channel": "user", "data": payload})
                if "funding" in payload:
                    f = payload["funding"]
                    self._fan(("userFundings", key), {"channel": "userFundings", "data": {
                        "user": key, "fundings": [dict(f, nSamples=None)]}})
            elif kind == "tick":
                tick = True
        for user, items in orders.items():
            self._fan(("orderUpdates", user), {"channel": "orderUpdates", "data": items})
        for user, items in fills.items():
            self._fan(("userFills", user), {"channel": "userFills", "data": {"user": user, "fills": items}})
            self._fan(("userEvents", user), {"channel": "user", "data": {"fills": items}})
        for coin, items in trades.items():
            self._fan(("trades", coin), {"channel": "trades", "data": items})
        if tick:
            self._market_data()
        elif trades:
            now = self.venue.now_ms / 1000  # market time: a manual clock (a replay) pushes per step
            for coin in trades:
                for kind in ("l2Book", "bbo"):
                    if now - self._last_book_push.get((kind, coin), 0.0) >= BOOK_PUSH_INTERVAL_S:
                        self._last_book_push[(kind, coin)] = now
                        self._fan_text((kind, coin), functools.partial(self._coin_message, kind, coin))

    def _market_data(self) -> None:
        """One step's market data; the mids last, so a client has the step's account and books when its
        mids arrive (what a replay's alerts act on: the same view in every run)."""
        v = self.venue
        now = self.venue.now_ms / 1000
        for key, conns in list(self.subs.items()):
            if conns and key[0] in ("webData2", "activeAssetData"):
                if now - self._last_book_push.get(key, 0.0) >= USER_VIEW_PUSH_INTERVAL_S:
                    self._last_book_push[key] = now
                    view = self._user_view(key)
                    if view is not None:
                        for conn in list(conns):
                            conn.send(view)
                continue
            if not conns or key[0] not in ("l2Book", "bbo", "activeAssetCtx", "candle") or key[1] not in v.markets:
                continue
            text = self._candle(key) if key[0] == "candle" else self._coin_message(key[0], key[1])
            if text is not None:
                for conn in list(conns):
                    conn.send(text)
        if self.subs.get(("allMids",)):
            self._fan(("allMids",), {"channel": "allMids", "data": {"mids": info_mod.all_mids(v)}})

    def _fan(self, key: Key, doc: dict[str, Any]) -> None:
        conns = self.subs.get(key)
        if conns:
            text = _dumps(doc)
            for conn in list(conns):
                conn.send(text)

    def _fan_text(self, key: Key, make: Callable[[], str]) -> None:
        conns = self.subs.get(key)
        if conns:
            text = make()
            for conn in list(conns):
                conn.send(text)
