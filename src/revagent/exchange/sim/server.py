"""`SimServer`: the aiohttp app (`/info`, `/exchange`, `/ws`, and `/_sim/...` controls when enabled), its
background tasks (price ticker, state writer), and in-process controls for tests.

Embedding (tests):

    async with SimServer(SimConfig(manual_clock=True, seed=7)) as sim:
        url = sim.base_url            # http://127.0.0.1:<free port>
        sim.set_price("BTC", "60000") # or advance(ms), set_path(...), deposit(...), faults
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from revagent.exchange.sim.actions import ExchangeHandler
from revagent.exchange.sim.candles import Bar
from revagent.exchange.sim.clock import MarketClock, wall_ms
from revagent.exchange.sim.config import SimConfig
from revagent.exchange.sim.control_routes import add_control_routes, is_loopback
from revagent.exchange.sim.faults import Faults, HttpFault
from revagent.exchange.sim.feed import FeedUnavailable, PriceFeed, ReplayFeed, SyntheticFeed
from revagent.exchange.sim.info import handle_info
from revagent.exchange.sim.markets import MARKETS
from revagent.exchange.sim.nonces import NonceBook
from revagent.exchange.sim.numbers import parse_wire
from revagent.exchange.sim.persistence import StateFile, dump_state, load_state
from revagent.exchange.sim.ratelimit import IpBudget, request_weight
from revagent.exchange.sim.recording import RecordingFeed, is_recording
from revagent.exchange.sim.upstream import UpstreamFeed
from revagent.exchange.sim.venue import Venue, VenueOptions
from revagent.exchange.sim.ws import Hub
from revagent.tasks import cancel_and_wait

log = logging.getLogger(__name__)
MAX_STEPS_PER_ADVANCE = 240
SAVE_AT_LEAST_EVERY_S = 10.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_feed(prices: str, *, seed: int, start_ms: int, upstream: str = "",
              timeout_s: float = 3.0) -> PriceFeed | UpstreamFeed:
    if prices == "synthetic":
        return SyntheticFeed(MARKETS, seed=seed, start_ms=start_ms)
    if prices.startswith("replay:"):
        path = Path(prices.removeprefix("replay:"))
        if is_recording(path):  # a `sim record` session: books, trades, candles, funding, not only prices
            return RecordingFeed(path)
        return ReplayFeed(path, MARKETS, seed=seed, start_ms=start_ms)
    if prices == "live":
        return UpstreamFeed(upstream, timeout_s=timeout_s)
    raise ValueError(f"unknown price source {prices!r}: use synthetic, replay:FILE or live")


class SimServer:
    """One simulated venue served over HTTP and websocket. All methods run on the server's event loop."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.clock = MarketClock(manual=cfg.manual_clock, start_ms=cfg.start_ms)
        start = self.clock.now_ms()
        self.venue = Venue(VenueOptions(balance=cfg.balance, seed=cfg.seed, price_band=cfg.price_band,
                                        max_open_orders=cfg.max_open_orders, asset_suffix=cfg.asset_suffix,
                                        schedule_cancel_volume=cfg.schedule_cancel_volume), start)
        self.nonces = NonceBook()
        self.feed = make_feed(cfg.prices, seed=cfg.seed, start_ms=start, upstream=cfg.upstream,
                              timeout_s=cfg.upstream_timeout_s)
        self._fallback: str | None = None  # why live prices fell back to synthetic
        self.faults = Faults()
        self.weight_served: dict[str, int] = {}  # request weight received, by /info type or exchange action
        self.exchange = ExchangeHandler(self.venue, self.nonces, auto_fund=cfg.auto_fund, is_mainnet=cfg.is_mainnet)
        self.hub = Hub(self.venue, self._post, queue_limit=cfg.ws_queue_limit, idle_timeout_s=cfg.ws_idle_timeout_s)
        self.state_file = StateFile(cfg.state_file) if cfg.state_file is not None else None
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_save = 0.0
        self._last_dump_s = 0.0
        self._ip_budget = IpBudget(cfg.ip_weight_per_minute) if cfg.ip_weight_per_minute else None
        if self.state_file is not None:
            doc = self.state_file.load()
            if doc is not None:
                self.feed.restore(load_state(self.venue, self.nonces, doc))
                self.clock.restore(self.venue.now_ms)
        self.venue.on_prices(self.feed.step(self.clock.now_ms()), self.clock.now_ms())
        self.venue.events.clear()
        if isinstance(self.feed, SyntheticFeed) and cfg.history_minutes > 0:
            self._backfill_candles(self.feed, cfg.history_minutes)

    def _backfill_candles(self, feed: SyntheticFeed, minutes: int) -> None:
        """Give charts a past: `minutes` of 1-minute candles ending at the start prices (built on first read)."""
        for coin, market in self.venue.markets.items():
            market.candles.pending_history = functools.partial(
                _history_bars, feed.history(coin, self.venue.now_ms, minutes), market.tick,
                market.spec.sz_decimals, market.spec.level_usd, f"volume:{self.config.seed}:{coin}")

    # lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> str:
        """Bind (port 0 = a free one), start the background tasks; returns the base URL for the SDK."""
        if isinstance(self.feed, UpstreamFeed):
            await self._start_upstream(self.feed)
        app = web.Application(middlewares=[self._fault_middleware], client_max_size=4 << 20)
        app.router.add_post("/info", self._info)
        app.router.add_post("/exchange", self._exchange)
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/_paper/fund", self._fund)
        if self.config.controls:
            add_control_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        port = int(self._runner.addresses[0][1])
        self.base_url = f"http://{self.config.host}:{port}"
        if not self.config.manual_clock:
            self._spawn(self._ticker(), "sim-ticker")
        if self.state_file is not None:
            self._spawn(self._writer(), "sim-state-writer")
        log.info("simulator listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop the tasks, close websockets, write the state a last time, and unbind."""
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.hub.close_all()
        if isinstance(self.feed, UpstreamFeed):
            await self.feed.stop()
        await self.flush()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _start_upstream(self, feed: UpstreamFeed) -> None:
        """Mirror the upstream's market; when it cannot be reached, run synthetic prices and say so."""
        try:
            await feed.start()
        except FeedUnavailable as exc:
            log.warning("live prices unavailable, running synthetic prices: %s", exc)
            self._fallback = str(exc)
            now = self.clock.now_ms()
            synthetic = SyntheticFeed(MARKETS, seed=self.config.seed, start_ms=now)
            self.feed = synthetic
            self.venue.on_prices(synthetic.step(now), now)
            self.venue.events.clear()
            if self.config.history_minutes > 0:
                self._backfill_candles(synthetic, self.config.history_minutes)
            return
        self.venue.set_universe(feed.specs, feed.meta)
        self.venue.upstream_spot_meta = feed.spot_meta
        feed.on_mids = self._upstream_mids
        feed.on_book = self._upstream_book
        feed.on_trades = self._upstream_trades
        feed.on_ctxs = self._upstream_ctxs
        self._upstream_ctxs()
        now = self.clock.now_ms()
        self.venue.on_prices(feed.step(now), now)
        self.venue.events.clear()
        self.hub.on_subscribe = self._on_subscribe

    def _upstream_mids(self, mids: dict[str, float]) -> None:
        self.venue.on_prices(mids, self.clock.now_ms())
        self._publish()

    def _upstream_book(self, coin: str, bids: list[tuple[Decimal, Decimal]],
                       asks: list[tuple[Decimal, Decimal]]) -> None:
        market = self.venue.markets.get(coin)
        if market is None:
            return
        market.set_upstream_book(bids, asks)
        self.venue.on_prices({}, self.clock.now_ms())  # time moves
        self.venue.fill_crossed(market)  # resting paper orders the new book went through
        self._publish()

    def _upstream_trades(self, coin: str, trades: list[dict[str, Any]]) -> None:
        self.venue.on_upstream_trades(coin, trades)
        self._publish()

    def _upstream_ctxs(self) -> None:
        feed = self.feed
        if not isinstance(feed, UpstreamFeed):
            return
        for coin, ctx in feed.ctxs.items():
            market = self.venue.markets.get(coin)
            if market is None:
                continue
            market.upstream_ctx = ctx
            rate = parse_wire(ctx.get("funding"))
            market.upstream_funding = rate
            premium = parse_wire(ctx.get("premium"))
            if premium is not None:
                market.premium = premium

    async def _on_subscribe(self, key: tuple[str, ...]) -> None:
        if key[0] in ("l2Book", "trades", "bbo") and isinstance(self.feed, UpstreamFeed):
            await self.feed.ensure_book(key[1])

    async def _ensure_books(self, body: Any) -> None:
        """Before an order: the real book of every market it trades (REST once, then the websocket)."""
        feed = self.feed
        if not isinstance(feed, UpstreamFeed) or not isinstance(body, dict):
            return
        action = body.get("action")
        if not isinstance(action, dict):
            return
        wires = action.get("orders") or [m.get("order") for m in action.get("modifies") or [] if isinstance(m, dict)]
        coins = set()
        for w in wires if isinstance(wires, list) else []:
            asset = w.get("a") if isinstance(w, dict) else None
            spec = self.venue.by_asset.get(asset) if isinstance(asset, int) else None
            if spec is not None and spec.name not in feed.in_use:
                coins.add(spec.name)
        if coins:
            await asyncio.gather(*(feed.ensure_book(c) for c in coins))

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(_log_death)
        self._tasks.append(task)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval_s)
            now = self.clock.now_ms()
            self.venue.on_prices(self.feed.step(now), now)
            self._publish()

    async def _writer(self) -> None:
        """Write the state when it changed (and every 10 s for prices and the clock). Serializing a big state
        takes loop time, so the pause between writes is at least 20x the last serialization (<= 5% of the loop)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self.config.persist_interval_s, 20 * self._last_dump_s))
            if self.venue.dirty or loop.time() - self._last_save > SAVE_AT_LEAST_EVERY_S:
                await self.flush()

    async def flush(self) -> None:
        """Write the state file now (no-op without one). Serializes on the loop, writes in a thread."""
        if self.state_file is None:
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        text = json.dumps(dump_state(self.venue, self.nonces, self.feed.state()), separators=(",", ":"))
        self.venue.dirty = False
        self._last_save = loop.time()
        self._last_dump_s = self._last_save - t0
        await asyncio.to_thread(self.state_file.save_text, text)

    def _sync_time(self) -> None:
        """Requests are stamped with the market clock (it runs between ticks unless it is manual)."""
        now = self.clock.now_ms()
        if now > self.venue.now_ms:
            self.venue.now_ms = now

    def _publish(self) -> None:
        if self.venue.events:
            events = self.venue.events
            self.venue.events = []
            self.hub.publish(events)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refuse_websockets:
            return web.Response(status=503, text="simulated websocket outage")
        return await self.hub.handle(request)

    # HTTP ----------------------------------------------------------------------------------------------------
    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ("/info", "/exchange"):
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            body = await _json_body(request)
            kind = _request_kind(request.path, body)
            self.weight_served[kind] = self.weight_served.get(kind, 0) + request_weight(request.path, body)
            status = self.faults.take_http(request.path)
            if status is not None:
                return web.Response(status=status, text=f"simulated HTTP {status}")
            if self._ip_budget is not None:
                weight = request_weight(request.path, body)
                if not self._ip_budget.take(request.remote or "", weight, asyncio.get_running_loop().time()):
                    return web.Response(status=429, text="Too many requests")
        return await handler(request)

    async def _info(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body is _BAD:
            return web.Response(status=422, text="Failed to deserialize the JSON body into the target type")
        self._sync_time()
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == PRICE_SOURCE_INFO:
            return _respond(200, self.price_source())
        feed = self.feed
        if isinstance(feed, UpstreamFeed) and isinstance(body, dict):
            if kind == "candleSnapshot":
                upstream = await feed.candles(body)
                if upstream is not None:
                    return _respond(200, upstream)
            elif kind == "l2Book" and isinstance(body.get("coin"), str):
                await feed.ensure_book(body["coin"])
        return _respond(*handle_info(self.venue, body))

    async def _exchange(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body is _BAD:
            return web.Response(status=422, text="Failed to deserialize the JSON body into the target type")
        await self._ensure_books(body)
        self._sync_time()
        status, doc = self.exchange.handle(body, wall_ms())
        self._publish()
        if (isinstance(doc, dict) and doc.get("status") == "ok" and body["action"].get("type") == "order"
                and self.faults.take_lost_response()):
            transport = request.transport
            if transport is not None:
                transport.close()  # accepted, but the client never hears about it
            return web.Response(status=500, text="response lost")
        return _respond(status, doc)

    async def _fund(self, request: web.Request) -> web.Response:
        """The paper wallet's set-up: fund a new paper account once with the venue's starting balance.

        `{"user": "0x..."}` from loopback only; an account that exists is left as it is (`funded: false`).
        This is the only way (besides the test controls) an account comes to exist when `auto_fund` is off."""
        if not is_loopback(request.remote):
            return web.Response(status=403, text="paper funding answers on loopback only")
        body = await _json_body(request)
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or len(user) != 42 or not user.startswith("0x"):
            return web.Response(status=422, text="Failed to deserialize the JSON body into the target type: `user`")
        user = user.lower()
        if user in self.venue.agents:
            return _respond(200, {"status": "err", "response": "An API wallet cannot hold a paper account."})
        funded = user not in self.venue.accounts
        if funded:
            self.venue.account(user)
            self._publish()
        return _respond(200, {"status": "ok", "funded": funded,
                              "balance": str(self.venue.accounts[user].balance)})

    async def _post(self, request: dict[str, Any]) -> Any:
        """A websocket `post`: {"type": "info"|"action", "payload": ...} as Hyperliquid answers it."""
        kind, payload = request.get("type"), request.get("payload")
        self._sync_time()
        if kind == "info":
            status, doc = handle_info(self.venue, payload)
            if status != 200:
                return {"type": "error", "payload": doc}
            return {"type": "info", "payload": {"type": (payload or {}).get("type"), "data": doc}}
        if kind == "action":
            status, doc = self.exchange.handle(payload, wall_ms())
            self._publish()
            return {"type": "action" if status == 200 else "error", "payload": doc}
        return {"type": "error", "payload": f"unknown post type {kind!r}"}

    def price_source(self) -> dict[str, Any]:
        """Where this venue's prices come from, for status lines: `prices` (live, synthetic, replay:FILE),
        `state` (live: connected/disconnected/unreachable), `summary` (one line a trader can read)."""
        feed = self.feed
        if self._fallback is not None:
            return {"prices": "synthetic", "requested": self.config.prices, "state": "unreachable",
                    "detail": self._fallback,
                    "summary": f"synthetic prices: {self._fallback.split(' (')[0]}"}
        if isinstance(feed, RecordingFeed):
            return {"prices": self.config.prices, "state": feed.link, "recorded_from": feed.recorded_from,
                    "loops": feed.loops, "summary": f"replayed prices from {feed.path.name} (recorded from "
                                                   f"{feed.recorded_from or 'an unknown upstream'})"}
        if isinstance(feed, UpstreamFeed):
            doc: dict[str, Any] = {"prices": "live", "upstream": feed.url, "state": feed.link,
                                   "detail": feed.detail, "since_ms": feed.since_ms,
                                   "markets_in_use": sorted(feed.in_use)}
            doc["summary"] = (f"live prices from {feed.host}" if feed.link != "disconnected" else
                              f"prices frozen: {feed.host} disconnected, reconnecting")
            return doc
        return {"prices": self.config.prices, "state": "ok", "summary": f"{self.config.prices} prices"}

    # in-process controls (the /_sim routes call these) -----------------------------------------------------
    def _step(self, overrides: dict[str, Decimal] | None = None) -> None:
        now = self.clock.now_ms()
        prices = self.feed.step(now)
        for coin, px in (overrides or {}).items():
            self.feed.set_price(coin, float(px))
            prices[coin] = float(px)
        self.venue.on_prices(prices, now)
        self._publish()

    def set_price(self, coin: str, px: Decimal | str | float) -> None:
        """Move `coin` to `px` now (oracle; mid/mark snap to the tick grid), then match, trigger, liquidate."""
        self._require_market(coin)
        self._step({coin: Decimal(str(px))})

    def set_path(self, coin: str, prices: Iterable[Decimal | str | float], step_ms: int = 1000) -> None:
        """Walk `coin` through `prices`, advancing market time by `step_ms` before each one."""
        self._require_market(coin)
        for px in prices:
            self.clock.advance(step_ms)
            self._step({coin: Decimal(str(px))})

    def advance(self, ms: int, steps: int | None = None) -> int:
        """Advance market time by `ms` in `steps` feed steps (default: one per tick interval, at most 240);
        every step moves prices and runs resting fills, triggers, funding and liquidations. Returns the time."""
        if steps is None:
            steps = ms // max(1, int(self.config.tick_interval_s * 1000))
        steps = max(1, min(MAX_STEPS_PER_ADVANCE, steps))
        done = 0
        for i in range(steps):
            chunk = ms * (i + 1) // steps - done
            done += chunk
            self.clock.advance(chunk)
            self._step()
        return self.clock.now_ms()

    def deposit(self, user: str, usd: Decimal | str | float) -> None:
        self.venue.deposit(user.lower(), Decimal(str(usd)))
        self._publish()

    def withdraw(self, user: str, usd: Decimal | str | float) -> str | None:
        """Withdraw `usd` (fee 1 USDC); an error text when it exceeds the withdrawable amount."""
        return self.venue.withdraw(user.lower(), Decimal(str(usd)))

    def set_volatility(self, coin: str | None, annual_vol: float) -> None:
        """Volatility of the synthetic walk for `coin` (None: every market); 0 holds prices still."""
        for name in [coin] if coin is not None else list(self.venue.markets):
            self._require_market(name)
            self.feed.set_volatility(name, annual_vol)

    def set_funding_premium(self, coin: str, premium: Decimal | str | float) -> None:
        self._require_market(coin)
        self.venue.set_funding_premium(coin, Decimal(str(premium)))

    def set_liquidity(self, coin: str, scale: Decimal | str | float, spread_ticks: int | None = None) -> None:
        """Scale the synthetic depth of `coin` (0 empties it); optionally fix the half-spread in ticks."""
        market = self._require_market(coin)
        market.liquidity = Decimal(str(scale))
        market.spread_override_ticks = spread_ticks
        market.set_oracle(market.oracle)
        self.venue.dirty = True

    def inject_http_fault(self, status: int, count: int = 1, path: str | None = None) -> None:
        self.faults.http.append(HttpFault(status, count, path))

    async def drop_websockets(self) -> int:
        return await self.hub.close_all()

    def _require_market(self, coin: str) -> Any:
        market = self.venue.markets.get(coin)
        if market is None:
            raise KeyError(f"unknown market {coin!r}")
        return market


def _history_bars(walk: list[tuple[int, float, float, float, float]], tick_d: Decimal, sz_decimals: int,
                  level_usd: float, seed: str) -> list[Bar]:
    import random

    rng = random.Random(seed)
    tick = float(tick_d)
    places = max(0, -int(tick_d.as_tuple().exponent))

    def px(x: float) -> Decimal:
        return Decimal(f"{round(x / tick) * tick:.{places}f}")

    bars: list[Bar] = []
    for t, o, h, low, c in walk:
        trades = rng.randint(5, 60)
        volume = Decimal(f"{level_usd * trades / 40 / c:.{sz_decimals}f}")
        bars.append((t, px(o), px(h), px(low), px(c), volume, trades))
    return bars


PRICE_SOURCE_INFO = "revagentPriceSource"  # an /info extension: where this venue's prices come from
_BAD = object()
_BODY = web.RequestKey("json_body", object)


def _request_kind(path: str, body: Any) -> str:
    """`/info` requests by their type, `/exchange` ones as `exchange:<action type>`."""
    if not isinstance(body, dict):
        return path
    if path == "/exchange":
        action = body.get("action")
        return f"exchange:{action.get('type') if isinstance(action, dict) else '?'}"
    return str(body.get("type"))


async def _json_body(request: web.Request) -> Any:
    """`json.loads` of the raw body: key order and int/str types exactly as sent (the signature covers them).
    Parsed once per request (the fault middleware and the handler share it)."""
    if _BODY in request:
        return request[_BODY]
    try:
        body = json.loads(await request.read())
    except ValueError:
        body = _BAD
    request[_BODY] = body
    return body


def _respond(status: int, doc: Any) -> web.Response:
    if isinstance(doc, str) and status != 200:
        return web.Response(status=status, text=doc)
    return web.Response(status=status, text=json.dumps(doc, separators=(",", ":")), content_type="application/json")


def _log_death(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("simulator task %s died", task.get_name(), exc_info=exc)


