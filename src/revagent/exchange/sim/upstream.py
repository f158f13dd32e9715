"""The market from an upstream Hyperliquid-compatible API (`/info` + `/ws`): the paper venue keeps its own
matching engine and accounts and mirrors the upstream's universe, mids, books, trades, candles and funding.

- Universe: `metaAndAssetCtxs` at start (asset ids are the upstream's indexes; `meta` is served verbatim);
  `spotMeta` is served verbatim too, for the names SDK clients map (spot orders are still refused).
- Mids: websocket `allMids`.
- Books: websocket `l2Book` for the markets in use (a paper order, an `l2Book` request or subscription
  puts a market in use); a REST `l2Book` when a market comes into use and after every reconnect.
- Trades: websocket `trades` for the markets in use (resting paper orders fill when prints go through them).
- Candles: `candleSnapshot` is passed through. Funding, open interest, volumes: `metaAndAssetCtxs`, polled.

When the upstream cannot be reached at start, `start()` raises FeedUnavailable (fast: a short connect
timeout) and the server runs synthetic prices instead, saying so. When it drops later, prices and books
freeze where they were (`link` "disconnected") and the socket reconnects with backoff.

Not modelled: queue position of resting paper orders (a print exactly at the limit does not fill them),
market impact beyond one book snapshot (taken depth comes back with the next snapshot), the upstream's
own reaction to paper orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp

from revagent.exchange.sim.feed import FeedUnavailable
from revagent.exchange.sim.markets import MarketSpec
from revagent.exchange.sim.numbers import parse_wire
from revagent.tasks import cancel_and_wait

log = logging.getLogger(__name__)
MAINNET_URL = "https://api.hyperliquid.xyz"
CTX_POLL_S = 60.0  # metaAndAssetCtxs weighs 20: once a minute is 2% of the IP budget
PING_S = 30.0  # Hyperliquid drops a socket silent for 60 s
MAX_BACKOFF_S = 30.0
Levels = list[tuple[Decimal, Decimal]]


def _levels(side: Any) -> Levels:
    out: Levels = []
    for lvl in side if isinstance(side, list) else []:
        if not isinstance(lvl, dict):
            continue
        px, sz = parse_wire(lvl.get("px")), parse_wire(lvl.get("sz"))
        if px is not None and sz is not None and px > 0 and sz > 0:
            out.append((px, sz))
    return out


def specs_from_meta(meta: dict[str, Any], mids: dict[str, float]) -> list[MarketSpec]:
    specs = []
    for i, u in enumerate(meta.get("universe", [])):
        name = str(u["name"])
        px = mids.get(name) or 1.0
        specs.append(MarketSpec(i, name, int(u["szDecimals"]), int(u["maxLeverage"]), Decimal(repr(px)),
                                0.8, 2.0, 20_000))
    return specs


class UpstreamFeed:
    """A PriceFeed (step/set_price/...) plus the upstream's books, trades, candles and asset contexts."""

    def __init__(self, url: str = "", *, timeout_s: float = 3.0, ctx_poll_s: float = CTX_POLL_S) -> None:
        self.url = (url or MAINNET_URL).rstrip("/")
        self.ws_url = ("wss" + self.url[5:] if self.url.startswith("https") else "ws" + self.url[4:]) + "/ws"
        self.timeout_s = timeout_s
        self.ctx_poll_s = ctx_poll_s
        self.meta: dict[str, Any] = {"universe": []}
        self.spot_meta: dict[str, Any] | None = None  # the upstream's spot universe (names for SDK clients)
        self.specs: list[MarketSpec] = []
        self.ctxs: dict[str, dict[str, Any]] = {}
        self.mids: dict[str, float] = {}
        self.in_use: set[str] = set()
        self.link = "starting"  # connected | disconnected
        self.detail = ""
        self.since_ms = int(time.time() * 1000)
        self.on_mids: Callable[[dict[str, float]], None] | None = None
        self.on_book: Callable[[str, Levels, Levels], None] | None = None
        self.on_trades: Callable[[str, list[dict[str, Any]]], None] | None = None
        self.on_ctxs: Callable[[], None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def host(self) -> str:
        return "Hyperliquid" if self.url == MAINNET_URL else self.url

    # lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Fetch the universe, contexts and mids (short timeout), then follow the websocket."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, connect=self.timeout_s, sock_connect=self.timeout_s))
        try:
            meta_ctxs = await self.post({"type": "metaAndAssetCtxs"}, timeout=self.timeout_s * 2)
            mids = await self.post({"type": "allMids"}, timeout=self.timeout_s * 2)
            meta, ctxs = meta_ctxs[0], meta_ctxs[1]
            if not isinstance(meta, dict) or not isinstance(mids, dict) or not isinstance(ctxs, list):
                raise ValueError("unexpected metaAndAssetCtxs/allMids shape")
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
            await self._session.close()
            self._session = None
            raise FeedUnavailable(f"{self.host} unreachable ({type(exc).__name__}: {exc})".replace(" ()", "")) \
                from exc
        self.mids = {c: float(p) for c, p in mids.items() if parse_wire(p) is not None}
        self.meta = meta
        try:  # optional: the SDK maps spot names (e.g. "PURR/USDC") from it; spot is not traded here
            spot = await self.post({"type": "spotMeta"}, timeout=self.timeout_s * 2)
            self.spot_meta = spot if isinstance(spot, dict) and isinstance(spot.get("universe"), list) else None
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.info("upstream spotMeta unavailable: %s", exc)
        self.specs = specs_from_meta(meta, self.mids)
        self._set_ctxs(ctxs)
        self._spawn(self._ws_loop(), "sim-upstream-ws")
        self._spawn(self._poll_ctxs(), "sim-upstream-ctxs")

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.link:
            self.since_ms = int(time.time() * 1000)
            log.info("upstream %s: %s %s", self.url, state, detail)
        self.link, self.detail = state, detail

    # REST ----------------------------------------------------------------------------------------------------
    async def post(self, body: dict[str, Any], *, timeout: float = 10.0) -> Any:
        assert self._session is not None
        async with self._session.post(self.url + "/info", json=body,
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}: {text[:200]}")
            return json.loads(text)

    async def candles(self, body: dict[str, Any]) -> Any | None:
        """The upstream's answer to a `candleSnapshot`, or None when it cannot give one now."""
        if self._session is None:
            return None
        try:
            return await self.post(body)
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
            return None

    async def ensure_book(self, coin: str) -> None:
        """Put `coin` in use: a REST book now (when new), then websocket books and trades."""
        if coin in self.in_use or self._session is None or (coin not in self.mids and coin not in self.ctxs):
            return
        self.in_use.add(coin)
        await self._subscribe(coin)
        await self._fetch_book(coin)

    async def _fetch_book(self, coin: str) -> None:
        try:
            doc = await self.post({"type": "l2Book", "coin": coin}, timeout=max(self.timeout_s, 5.0))
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("upstream l2Book %s failed: %s", coin, exc)
            return
        self._book(doc)

    async def _subscribe(self, coin: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # the reconnect subscribes every market in use
        with contextlib.suppress(ConnectionError, RuntimeError):
            for kind in ("l2Book", "trades"):
                await ws.send_json({"method": "subscribe", "subscription": {"type": kind, "coin": coin}})

    async def _poll_ctxs(self) -> None:
        while True:
            await asyncio.sleep(self.ctx_poll_s)
            try:
                doc = await self.post({"type": "metaAndAssetCtxs"})
                self._set_ctxs(doc[1])
            except (OSError, TimeoutError, aiohttp.ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
                log.warning("upstream metaAndAssetCtxs failed: %s", exc)

    async def refresh_ctxs(self) -> None:
        """Poll the asset contexts now (tests; the poller does it every `ctx_poll_s`)."""
        doc = await self.post({"type": "metaAndAssetCtxs"})
        self._set_ctxs(doc[1])

    def _set_ctxs(self, ctxs: Any) -> None:
        names = [str(u["name"]) for u in self.meta.get("universe", [])]
        for name, ctx in zip(names, ctxs if isinstance(ctxs, list) else [], strict=False):
            if isinstance(ctx, dict):
                self.ctxs[name] = ctx
        if self.on_ctxs is not None:
            self.on_ctxs()

    # websocket -----------------------------------------------------------------------------------------------
    async def _ws_loop(self) -> None:
        delay = 0.5
        first = True
        while True:
            assert self._session is not None
            try:
                async with self._session.ws_connect(self.ws_url, timeout=aiohttp.ClientWSTimeout(
                        ws_receive=None, ws_close=5.0)) as ws:
                    self._ws = ws
                    await ws.send_json({"method": "subscribe", "subscription": {"type": "allMids"}})
                    for coin in sorted(self.in_use):
                        await self._subscribe(coin)
                    self._set_state("connected")
                    if not first:  # missed frames are not replayed: fresh books over REST
                        await asyncio.gather(*(self._fetch_book(c) for c in sorted(self.in_use)))
                    first = False
                    delay = 0.5
                    await self._read(ws)
                    detail = "the upstream closed the websocket"
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, aiohttp.ClientError, ValueError, RuntimeError) as exc:
                detail = f"{type(exc).__name__}: {exc}"
            self._ws = None
            self._set_state("disconnected", detail)
            await asyncio.sleep(delay)
            delay = min(MAX_BACKOFF_S, delay * 2)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            try:
                msg = await ws.receive(timeout=PING_S)
            except TimeoutError:
                await ws.send_json({"method": "ping"})
                continue
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.ERROR):
                return

    def _on_text(self, text: str) -> None:
        if not text.startswith("{"):
            return
        try:
            doc = json.loads(text)
        except ValueError:
            return
        if isinstance(doc, dict):
            self._on_doc(doc)

    def _on_doc(self, doc: dict[str, Any]) -> None:
        """One websocket frame (allMids, l2Book, trades); a recording's playback calls this too."""
        channel, data = doc.get("channel"), doc.get("data")
        if channel == "allMids" and isinstance(data, dict) and isinstance(data.get("mids"), dict):
            changed: dict[str, float] = {}
            for coin, px in data["mids"].items():
                if parse_wire(px) is None:
                    continue
                value = float(px)
                if self.mids.get(coin) != value:
                    self.mids[coin] = changed[coin] = value
            if changed and self.on_mids is not None:
                self.on_mids(changed)
        elif channel == "l2Book" and isinstance(data, dict):
            self._book(data)
        elif channel == "trades" and isinstance(data, list) and self.on_trades is not None:
            by_coin: dict[str, list[dict[str, Any]]] = {}
            for t in data:
                if isinstance(t, dict) and isinstance(t.get("coin"), str):
                    by_coin.setdefault(t["coin"], []).append(t)
            for coin, trades in by_coin.items():
                self.on_trades(coin, trades)

    def _book(self, doc: Any) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("levels"), list) or len(doc["levels"]) != 2:
            return
        coin = doc.get("coin")
        if isinstance(coin, str) and self.on_book is not None:
            self.on_book(coin, _levels(doc["levels"][0]), _levels(doc["levels"][1]))

    # the PriceFeed protocol ----------------------------------------------------------------------------------
    def step(self, now_ms: int) -> dict[str, float]:
        """The upstream's last mids (frozen while it is disconnected)."""
        return dict(self.mids)

    def set_price(self, coin: str, px: float) -> None:
        self.mids[coin] = px  # until the upstream's next mid for it

    def set_volatility(self, coin: str, annual_vol: float) -> None:
        """The upstream moves the prices: nothing to set."""

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing to restore: the upstream is the truth."""
