"""Record a session of an upstream Hyperliquid API's market frames, and play it back as the paper venue's market.

`revagent sim record --upstream URL --minutes N --out FILE` writes JSON lines:

    {"format": "revagent-upstream-recording", "version": 1, "upstream": URL, "started_ms": ..., "coins": [...]}
    {"t": <wall ms>, "info": {"req": {"type": "metaAndAssetCtxs"}, "resp": [...]}}    REST answers
    {"t": <wall ms>, "ws": {"channel": "l2Book", "data": {...}}}                       websocket frames

REST at start: `metaAndAssetCtxs`, `allMids`, `spotMeta` (names only), and per recorded coin its `l2Book` and
the `candleSnapshot`s asked for (`--candles`, 500 bars each); `metaAndAssetCtxs` again every minute (funding,
open interest).
Websocket: `allMids`, and `l2Book` + `trades` per coin. Lines are flushed as they come: an interrupted
recording plays back up to where it stopped.

`[paper] prices = "replay:FILE"` (or `sim serve --prices replay:FILE`) plays such a file back through the same
mirror as live prices (`RecordingFeed` is an `UpstreamFeed`): the recorded universe and contexts, mids,
books (paper orders walk the recorded levels), trades (resting paper orders fill when a recorded print goes
through them), candles (the recorded bars), funding at the recorded rates. Frames replay at their recorded
pace from the venue's start, and the recording loops at its end (the books of its start come back then).
A file that is not such a recording is a plain price replay (`feed.ReplayFeed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from revagent.exchange.sim.feed import FeedUnavailable
from revagent.exchange.sim.upstream import MAINNET_URL, PING_S, UpstreamFeed, specs_from_meta

FORMAT = "revagent-upstream-recording"
VERSION = 1
CANDLE_BARS = 500
INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
               "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000}
WS_CHANNELS = ("allMids", "l2Book", "trades")
LOOP_GAP_S = 1.0  # a pause between the end of a recording and its start again


def is_recording(path: Path) -> bool:
    """The file starts with a recording's header line (a cheap check: the first line only)."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
        doc = json.loads(first)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


@dataclass
class RecordStats:
    frames: int = 0
    infos: int = 0
    ws_frames: int = 0
    by_channel: dict[str, int] | None = None


class _Writer:
    def __init__(self, fh: TextIO, stats: RecordStats) -> None:
        self.fh, self.stats = fh, stats
        self.stats.by_channel = {}

    def line(self, doc: dict[str, Any]) -> None:
        self.fh.write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.fh.flush()

    def info(self, req: dict[str, Any], resp: Any) -> None:
        self.stats.frames += 1
        self.stats.infos += 1
        self.line({"t": int(time.time() * 1000), "info": {"req": req, "resp": resp}})

    def ws(self, doc: dict[str, Any]) -> None:
        self.stats.frames += 1
        self.stats.ws_frames += 1
        assert self.stats.by_channel is not None
        channel = str(doc.get("channel"))
        self.stats.by_channel[channel] = self.stats.by_channel.get(channel, 0) + 1
        self.line({"t": int(time.time() * 1000), "ws": doc})


async def record(upstream: str, out: Path, *, seconds: float, coins: list[str], candles: list[str],
                 ctx_every_s: float = 60.0, timeout_s: float = 10.0,
                 on_progress: Callable[[RecordStats], None] | None = None) -> RecordStats:
    """Record `seconds` of `upstream`'s market (see the module docstring) into `out`. Raises FeedUnavailable
    when the upstream does not answer at start, ValueError for a coin it does not list or an unknown interval."""
    url = (upstream or MAINNET_URL).rstrip("/")
    ws_url = ("wss" + url[5:] if url.startswith("https") else "ws" + url[4:]) + "/ws"
    for interval in candles:
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown candle interval {interval!r}: use one of {', '.join(INTERVAL_MS)}")
    stats = RecordStats()
    timeout = aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_connect=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def post(body: dict[str, Any]) -> Any:
            async with http.post(url + "/info", json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status} for {body['type']}: {text[:200]}")
                return json.loads(text)

        try:
            meta_ctxs = await post({"type": "metaAndAssetCtxs"})
            mids = await post({"type": "allMids"})
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise FeedUnavailable(f"{url} unreachable ({type(exc).__name__}: {exc})") from exc
        names = [str(u.get("name")) for u in meta_ctxs[0].get("universe", [])]
        unknown = [c for c in coins if c not in names]
        if unknown:
            raise ValueError(f"{url} does not list {', '.join(unknown)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        # the recorder is a process of its own (`sim record`): small line writes, flushed as they come
        with open(out, "w", encoding="utf-8") as fh:  # noqa: ASYNC230
            w = _Writer(fh, stats)
            started = int(time.time() * 1000)
            w.line({"format": FORMAT, "version": VERSION, "upstream": url, "started_ms": started, "coins": coins,
                    "candles": candles, "seconds": seconds})
            w.info({"type": "metaAndAssetCtxs"}, meta_ctxs)
            w.info({"type": "allMids"}, mids)
            with contextlib.suppress(OSError, TimeoutError, aiohttp.ClientError, ValueError):
                w.info({"type": "spotMeta"}, await post({"type": "spotMeta"}))
            for coin in coins:
                req: dict[str, Any] = {"type": "l2Book", "coin": coin}
                w.info(req, await post(req))
                for interval in candles:
                    span = INTERVAL_MS[interval] * CANDLE_BARS
                    creq = {"type": "candleSnapshot", "req": {"coin": coin, "interval": interval,
                                                              "startTime": started - span, "endTime": started}}
                    w.info(creq, await post(creq))
            deadline = time.monotonic() + seconds
            next_ctx = time.monotonic() + ctx_every_s
            async with http.ws_connect(ws_url, timeout=aiohttp.ClientWSTimeout(ws_receive=None,
                                                                               ws_close=5.0)) as ws:
                await ws.send_json({"method": "subscribe", "subscription": {"type": "allMids"}})
                for coin in coins:
                    for kind in ("l2Book", "trades"):
                        await ws.send_json({"method": "subscribe", "subscription": {"type": kind, "coin": coin}})
                last_ping = time.monotonic()
                while (left := deadline - time.monotonic()) > 0:
                    now = time.monotonic()
                    if now >= next_ctx:
                        next_ctx = now + ctx_every_s
                        with contextlib.suppress(OSError, TimeoutError, aiohttp.ClientError, ValueError):
                            w.info({"type": "metaAndAssetCtxs"}, await post({"type": "metaAndAssetCtxs"}))
                    if now - last_ping >= PING_S:
                        last_ping = now
                        await ws.send_json({"method": "ping"})
                    try:
                        msg = await ws.receive(timeout=min(left, 1.0, max(0.01, next_ctx - now)))
                    except TimeoutError:
                        continue
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                                    aiohttp.WSMsgType.ERROR):
                        break  # what was recorded stays: the file is complete up to here
                    if msg.type != aiohttp.WSMsgType.TEXT or not msg.data.startswith("{"):
                        continue
                    try:
                        doc = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(doc, dict) and doc.get("channel") in WS_CHANNELS:
                        w.ws(doc)
                        if on_progress is not None:
                            on_progress(stats)
    return stats


class RecordingFeed(UpstreamFeed):
    """The market from a recording (see the module docstring): an UpstreamFeed whose frames come from a file."""

    def __init__(self, path: Path, *, speed: float = 1.0) -> None:
        super().__init__(f"replay:{path}")
        self.path = path
        self.speed = speed
        self.recorded_from = ""
        self._frames: list[dict[str, Any]] = []
        self._books: dict[str, dict[str, Any]] = {}
        self._start_books: dict[str, dict[str, Any]] = {}
        self._candles: dict[tuple[str, str], dict[int, Any]] = {}
        self.loops = 0

    @property
    def host(self) -> str:
        return f"the recording {self.path.name}"

    async def start(self) -> None:
        try:
            lines = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
            docs = [json.loads(line) for line in lines.splitlines() if line.strip()]
            header = docs[0]
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError("not a revagent upstream recording")
        except (OSError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise FeedUnavailable(f"{self.path} unreadable ({type(exc).__name__}: {exc})") from exc
        self.recorded_from = str(header.get("upstream") or "")
        meta_ctxs = mids = None
        for doc in docs[1:]:
            info = doc.get("info") if isinstance(doc, dict) else None
            if isinstance(info, dict) and isinstance(info.get("req"), dict):
                kind = info["req"].get("type")
                if kind == "metaAndAssetCtxs" and meta_ctxs is None:
                    meta_ctxs = info.get("resp")
                elif kind == "allMids" and mids is None:
                    mids = info.get("resp")
                elif kind == "spotMeta" and isinstance(info.get("resp"), dict):
                    self.spot_meta = info["resp"]
            if isinstance(doc, dict) and ("info" in doc or "ws" in doc) and isinstance(doc.get("t"), int):
                self._frames.append(doc)
        if not (isinstance(meta_ctxs, list) and len(meta_ctxs) == 2 and isinstance(meta_ctxs[0], dict)
                and isinstance(mids, dict)):
            raise FeedUnavailable(f"{self.path} unreadable (no metaAndAssetCtxs and allMids at its start)")
        self.mids = {c: float(p) for c, p in mids.items() if isinstance(p, str | int | float)}
        self.meta = meta_ctxs[0]
        self.specs = specs_from_meta(self.meta, self.mids)
        self._set_ctxs(meta_ctxs[1])
        for frame in self._frames:  # the candles asked, and the books at the recording's start
            info = frame.get("info")
            if isinstance(info, dict):
                self._take_info(info, initial=True)
        self._start_books = dict(self._books)
        self.link = "connected"
        self._spawn(self._play(), "sim-replay")

    def _take_info(self, info: dict[str, Any], *, initial: bool = False) -> None:
        req, resp = info.get("req"), info.get("resp")
        kind = req.get("type") if isinstance(req, dict) else None
        if kind == "candleSnapshot" and isinstance(req, dict) and isinstance(req.get("req"), dict) and initial:
            key = (str(req["req"].get("coin")), str(req["req"].get("interval")))
            bars = self._candles.setdefault(key, {})
            for bar in resp if isinstance(resp, list) else []:
                if isinstance(bar, dict) and isinstance(bar.get("t"), int):
                    bars[bar["t"]] = bar
        elif kind == "l2Book" and isinstance(resp, dict) and isinstance(resp.get("coin"), str):
            if initial:
                self._books.setdefault(resp["coin"], resp)
            else:
                self._books[resp["coin"]] = resp
                self._book(resp)
        elif kind == "metaAndAssetCtxs" and isinstance(resp, list) and len(resp) == 2 and not initial:
            self._set_ctxs(resp[1])

    async def _play(self) -> None:
        await asyncio.sleep(0)  # the server sets its callbacks once `start` returns
        while True:
            for doc in self._start_books.values():
                self._books[str(doc["coin"])] = doc
                self._book(doc)
            t0 = self._frames[0]["t"] if self._frames else 0
            began = asyncio.get_running_loop().time()
            for frame in self._frames:
                due = began + (frame["t"] - t0) / 1000 / self.speed
                delay = due - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if "ws" in frame and isinstance(frame["ws"], dict):
                    doc = frame["ws"]
                    if doc.get("channel") == "l2Book" and isinstance(doc.get("data"), dict):
                        data = doc["data"]
                        if isinstance(data.get("coin"), str):
                            self._books[data["coin"]] = data
                    self._on_doc(doc)
                elif isinstance(frame.get("info"), dict):
                    self._take_info(frame["info"])
            self.loops += 1
            await asyncio.sleep(LOOP_GAP_S / self.speed)

    async def candles(self, body: dict[str, Any]) -> Any | None:
        req = body.get("req") if isinstance(body.get("req"), dict) else None
        if req is None:
            return None
        bars = self._candles.get((str(req.get("coin")), str(req.get("interval"))))
        if bars is None:
            return None  # not recorded: the venue's own candles from the replayed prices
        lo, hi = req.get("startTime"), req.get("endTime")
        lo = lo if isinstance(lo, int) else 0
        hi = hi if isinstance(hi, int) else 2**63
        return [bars[t] for t in sorted(bars) if lo <= t <= hi]

    async def ensure_book(self, coin: str) -> None:
        if coin in self.in_use or (coin not in self.mids and coin not in self.ctxs):
            return
        self.in_use.add(coin)
        book = self._books.get(coin)
        if book is not None:
            self._book(book)

    async def refresh_ctxs(self) -> None:
        """The recorded contexts come with the playback."""

    async def post(self, body: dict[str, Any], *, timeout: float = 10.0) -> Any:
        raise FeedUnavailable("a recording answers no requests")
