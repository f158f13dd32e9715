"""Price feeds: a seeded geometric random walk, a replay of a CSV/JSON file, or Hyperliquid's live mids.

A feed is stepped by the venue with the market time; it returns the oracle price of every market.
Prices set by test controls override the feed and the walk continues from them.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import json
import logging
import math
import random
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from revagent.exchange.sim.markets import MarketSpec

log = logging.getLogger(__name__)
MS_PER_YEAR = 365 * 24 * 3600 * 1000
LIVE_WS_URL = "wss://api.hyperliquid.xyz/ws"


class FeedUnavailable(RuntimeError):
    """The feed cannot start (a missing file, no network for live prices); the message says why."""


class PriceFeed(Protocol):
    def step(self, now_ms: int) -> dict[str, float]:
        """Advance to market time `now_ms` and return the oracle price per coin."""

    def set_price(self, coin: str, px: float) -> None:
        """Override the current price of `coin`; the feed continues from it."""

    def set_volatility(self, coin: str, annual_vol: float) -> None:
        """Annualized volatility of the synthetic walk of `coin` from now on (0 holds it still)."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


def _to_float(d: Decimal) -> float:
    return float(d)


class SyntheticFeed:
    """A per-market geometric random walk, deterministic for a seed and a sequence of step times."""

    def __init__(self, markets: Iterable[MarketSpec], *, seed: int, start_ms: int) -> None:
        self._specs = {m.name: m for m in markets}
        self._px = {name: _to_float(m.start_px) for name, m in self._specs.items()}
        self._rng = {name: random.Random(f"{seed}:{name}") for name in self._specs}
        self._seed = seed
        self._last_ms = start_ms
        self.vol_override: dict[str, float] = {}

    def step(self, now_ms: int) -> dict[str, float]:
        dt = now_ms - self._last_ms
        if dt > 0:
            years = dt / MS_PER_YEAR
            for name, spec in self._specs.items():
                sigma = self.vol_override.get(name, spec.annual_vol)
                shock = self._rng[name].gauss(0.0, 1.0)
                self._px[name] *= math.exp(sigma * math.sqrt(years) * shock - 0.5 * sigma * sigma * years)
            self._last_ms = now_ms
        return dict(self._px)

    def set_price(self, coin: str, px: float) -> None:
        self._px[coin] = px

    def set_volatility(self, coin: str, annual_vol: float) -> None:
        self.vol_override[coin] = annual_vol

    def history(self, coin: str, end_ms: int, minutes: int) -> list[tuple[int, float, float, float, float]]:
        """A plausible past for `coin`: 1-minute (start, open, high, low, close) bars ending at its current
        price, walked backwards with the market's volatility (deterministic for the seed)."""
        rng = random.Random(f"history:{self._seed}:{coin}")
        sigma = self.vol_override.get(coin, self._specs[coin].annual_vol) * math.sqrt(60_000 / MS_PER_YEAR)
        close = self._px[coin]
        end = end_ms - end_ms % 60_000
        bars = []
        for i in range(1, minutes + 1):
            open_ = close / math.exp(sigma * rng.gauss(0.0, 1.0))
            wiggle = abs(rng.gauss(0.0, sigma / 2))
            bars.append((end - i * 60_000, open_, max(open_, close) * (1 + wiggle), min(open_, close) * (1 - wiggle),
                         close))
            close = open_
        return bars

    def state(self) -> dict[str, Any]:
        return {"px": self._px, "last_ms": self._last_ms}

    def restore(self, state: dict[str, Any]) -> None:
        for coin, px in state.get("px", {}).items():
            if coin in self._px:
                self._px[coin] = float(px)
        self._last_ms = int(state.get("last_ms", self._last_ms))


class ReplayFeed:
    """Prices from a file of ticks or candles, replayed from its first timestamp as market time passes.

    CSV with a header, or a JSON list of objects; columns: time (`time`/`t`, ms), coin (`coin`/`s`),
    price (`px`/`price`/`c`/`close`). Markets absent from the file follow the synthetic walk.
    """

    def __init__(self, path: Path, markets: Iterable[MarketSpec], *, seed: int, start_ms: int) -> None:
        specs = list(markets)
        self._fallback = SyntheticFeed(specs, seed=seed, start_ms=start_ms)
        self._series: dict[str, tuple[list[int], list[float]]] = {}
        rows = _read_rows(path)
        known = {m.name for m in specs}
        per_coin: dict[str, list[tuple[int, float]]] = {}
        for row in rows:
            t, coin, px = _field(row, "time", "t"), _field(row, "coin", "s"), _field(row, "px", "price", "c", "close")
            if t is None or coin is None or px is None or str(coin) not in known:
                continue
            per_coin.setdefault(str(coin), []).append((int(float(t)), float(px)))
        if not per_coin:
            raise FeedUnavailable(f"replay file {path} has no rows with time, coin and price for a known market")
        for coin, series in per_coin.items():
            series.sort()
            self._series[coin] = ([t for t, _ in series], [p for _, p in series])
        self._file_start = min(ts[0] for ts, _ in self._series.values())
        self._start_ms = start_ms
        self._overrides: dict[str, float] = {}

    @property
    def file_start_ms(self) -> int:
        """The file's first timestamp (a replay starts its market clock there)."""
        return self._file_start

    @property
    def file_end_ms(self) -> int:
        return max(ts[-1] for ts, _ in self._series.values())

    def step(self, now_ms: int) -> dict[str, float]:
        out = self._fallback.step(now_ms)
        replay_t = self._file_start + (now_ms - self._start_ms)
        for coin, (times, prices) in self._series.items():
            i = bisect.bisect_right(times, replay_t) - 1
            out[coin] = prices[max(i, 0)]
        out.update(self._overrides)
        return out

    def set_price(self, coin: str, px: float) -> None:
        if coin in self._series:
            self._overrides[coin] = px
        else:
            self._fallback.set_price(coin, px)

    def set_volatility(self, coin: str, annual_vol: float) -> None:
        self._fallback.set_volatility(coin, annual_vol)

    def state(self) -> dict[str, Any]:
        return {"fallback": self._fallback.state(), "start_ms": self._start_ms}

    def restore(self, state: dict[str, Any]) -> None:
        self._fallback.restore(state.get("fallback", {}))
        self._start_ms = int(state.get("start_ms", self._start_ms))


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise FeedUnavailable(f"replay file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise FeedUnavailable(f"replay file {path} must hold a JSON list of ticks or candles")
        return [r for r in data if isinstance(r, dict)]
    return list(csv.DictReader(text.splitlines()))


def _field(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in row and row[name] not in (None, ""):
            return row[name]
    return None


class LiveFeed:
    """Hyperliquid's public mids over its websocket; markets it does not list follow the synthetic walk.

    `await start()` connects (or raises FeedUnavailable with the reason); `await stop()` ends the reader.
    """

    def __init__(self, markets: Iterable[MarketSpec], *, seed: int, start_ms: int, url: str = LIVE_WS_URL) -> None:
        self._fallback = SyntheticFeed(list(markets), seed=seed, start_ms=start_ms)
        self._live: dict[str, float] = {}
        self._url = url
        self._task: asyncio.Task[None] | None = None
        self._session: Any = None

    async def start(self, timeout: float = 10.0) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession()
        try:
            ws = await asyncio.wait_for(self._session.ws_connect(self._url, heartbeat=30), timeout)
            await ws.send_json({"method": "subscribe", "subscription": {"type": "allMids"}})
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            await self._session.close()
            raise FeedUnavailable(
                f"live prices need Hyperliquid's websocket at {self._url}, which is unreachable from here "
                f"({type(exc).__name__}: {exc}); use --prices synthetic or --prices replay:FILE"
            ) from exc
        self._task = asyncio.create_task(self._read(ws), name="sim-live-feed")

    async def _read(self, ws: Any) -> None:
        try:
            async for msg in ws:
                data = json.loads(msg.data) if isinstance(msg.data, str) and msg.data.startswith("{") else None
                if data and data.get("channel") == "allMids":
                    for coin, px in data["data"]["mids"].items():
                        self._live[coin] = float(px)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live price feed died; markets keep their last price")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def step(self, now_ms: int) -> dict[str, float]:
        out = self._fallback.step(now_ms)
        out.update({c: p for c, p in self._live.items() if c in out})
        return out

    def set_price(self, coin: str, px: float) -> None:
        self._fallback.set_price(coin, px)
        self._live.pop(coin, None)

    def set_volatility(self, coin: str, annual_vol: float) -> None:
        self._fallback.set_volatility(coin, annual_vol)

    def state(self) -> dict[str, Any]:
        return {"fallback": self._fallback.state()}

    def restore(self, state: dict[str, Any]) -> None:
        self._fallback.restore(state.get("fallback", {}))
