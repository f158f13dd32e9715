"""Read tools: the snapshot, a market's conditions, its order book, candles with indicators, a
chart as an image, and the ledger of trades linked to the decisions that opened them."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from revagent.engine.chart import Bar, Level, render_chart
from revagent.engine.indicators import compute
from revagent.engine.providers.base import ImageBlock
from revagent.engine.snapshot import (
    OPTIONAL,
    MarketConditions,
    build_snapshot,
    funding_pct_per_hour,
    iso_ms,
    pct_2,
)
from revagent.engine.tools.base import Args, Tool, ToolContext, ToolResult
from revagent.models import MARKET_PATTERN

Interval = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
INTERVAL_MS: dict[str, int] = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
                               "4h": 14_400_000, "1d": 86_400_000}
SECTIONS = ("account", "risk", "trades", "orders", "health", *OPTIONAL)


class SnapshotArgs(Args):
    section: Literal["account", "risk", "trades", "orders", "health", "markets", "closed", "watchers",
                     "time_alerts", "notes"] | None = Field(default=None, description="one section in full")


class MarketArgs(Args):
    market: str = Field(pattern=MARKET_PATTERN, description="market name, e.g. BTC")


class BookArgs(MarketArgs):
    depth: int = Field(default=10, ge=1, le=50, description="levels per side")


class CandleArgs(MarketArgs):
    interval: Interval = "1h"
    count: int = Field(default=100, ge=2, le=500, description="candles to load (indicators use them all)")
    rows: int = Field(default=24, ge=1, le=200, description="latest candles to return as rows")


class ChartArgs(MarketArgs):
    interval: Interval = "1h"
    count: int = Field(default=120, ge=10, le=500)


class LedgerArgs(Args):
    limit: int = Field(default=20, ge=1, le=200)
    market: str | None = Field(default=None, pattern=MARKET_PATTERN)


def market_conditions(meta: Any, ctxs: list[Any], mids: dict[str, Decimal], wanted: list[str] | None = None
                      ) -> dict[str, MarketConditions]:
    """Conditions per market from `metaAndAssetCtxs` and `allMids` (24h change from `prev_day_px`)."""
    out: dict[str, MarketConditions] = {}
    for info, ctx in zip(meta.universe, ctxs, strict=False):
        if wanted is not None and info.name not in wanted:
            continue
        change = ((ctx.mark_px / ctx.prev_day_px - 1) * 100) if ctx.prev_day_px else None
        out[info.name] = MarketConditions(info.name, ctx.mark_px, mids.get(info.name, ctx.mid_px), change,
                                          ctx.funding, ctx.open_interest)
    return out


class MarketConditionsSource:
    """`SnapshotSource(markets=...)` over public market data: `metaAndAssetCtxs` and `allMids`, fetched
    at most every `max_age_s` (two info requests shared by every turn in that window)."""

    def __init__(self, market: Any, *, max_age_s: float = 5.0) -> None:
        self.market = market
        self.max_age_s = max_age_s
        self._at = -1e9
        self._all: dict[str, MarketConditions] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, markets: Sequence[str]) -> dict[str, MarketConditions]:
        async with self._lock:
            if time.monotonic() - self._at > self.max_age_s:
                (meta, ctxs), mids = await asyncio.gather(self.market.meta_and_asset_ctxs(), self.market.all_mids())
                self._all, self._at = market_conditions(meta, ctxs, mids), time.monotonic()
        return {m: self._all[m] for m in markets if m in self._all}


def _need_market(ctx: ToolContext) -> Any:
    if ctx.services.market is None:
        raise RuntimeError("no market data source in this session")
    return ctx.services.market


async def get_snapshot(a: SnapshotArgs, ctx: ToolContext) -> ToolResult:
    source = ctx.services.snapshot
    if source is None:
        return ToolResult.error("no snapshot source in this session")
    snap = build_snapshot(await source.inputs())
    if a.section is not None:
        return ToolResult(snap.section(a.section), data={"section": a.section})
    return ToolResult(snap.text(budget_chars=60_000), data={})


async def get_market(a: MarketArgs, ctx: ToolContext) -> ToolResult:
    md = _need_market(ctx)
    (meta, ctxs), mids = await asyncio.gather(md.meta_and_asset_ctxs(), md.all_mids())
    found = market_conditions(meta, ctxs, mids, [a.market])
    if a.market not in found:
        return ToolResult.error(f"unknown market {a.market!r}")
    c = found[a.market]
    info = next(i for i in meta.universe if i.name == a.market)
    now = ctx.services.clock()
    doc = {"market": a.market, "mark_px": c.mark_px, "mid_px": c.mid_px, "change_24h_pct": pct_2(c.change_24h_pct),
           "funding_pct_per_hour": funding_pct_per_hour(c.funding_rate), "open_interest": c.open_interest,
           "max_leverage": info.max_leverage, "sz_decimals": info.sz_decimals,
           "as_of": iso_ms(int(now.timestamp() * 1000))}
    return ToolResult.ok(doc)


async def get_orderbook(a: BookArgs, ctx: ToolContext) -> ToolResult:
    book = await _need_market(ctx).l2_book(a.market)
    bids, asks = book.levels
    doc = {"market": a.market, "time": iso_ms(book.time),
           "bids": [[lv.px, lv.sz, lv.n] for lv in bids[:a.depth]],
           "asks": [[lv.px, lv.sz, lv.n] for lv in asks[:a.depth]],
           "columns": ["px", "sz", "orders"]}
    if bids and asks:
        doc["spread"] = asks[0].px - bids[0].px
    return ToolResult.ok(doc)


async def _bars(ctx: ToolContext, market: str, interval: str, count: int) -> list[Bar]:
    now_ms = int(ctx.services.clock().timestamp() * 1000)
    start = now_ms - INTERVAL_MS[interval] * count
    candles = await _need_market(ctx).candles(market, interval, start, now_ms)
    return [Bar(c.open_time, float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume))
            for c in candles][-count:]


def _r(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


async def get_candles(a: CandleArgs, ctx: ToolContext) -> ToolResult:
    bars = await _bars(ctx, a.market, a.interval, a.count)
    if not bars:
        return ToolResult.error(f"no {a.interval} candles for {a.market}")
    s = compute([b.h for b in bars], [b.low for b in bars], [b.c for b in bars], [b.v for b in bars])
    first = len(bars) - min(a.rows, len(bars))
    rows = [[iso_ms(b.t), b.o, b.h, b.low, b.c, b.v, _r(s.ema20[i]), _r(s.ema50[i]), _r(s.rsi14[i]), _r(s.atr14[i]),
             _r(s.vwap[i])] for i, b in enumerate(bars) if i >= first]
    latest = s.latest()
    doc = {"market": a.market, "interval": a.interval, "candles": len(bars),
           "latest": {"close": bars[-1].c, "ema20": _r(latest.ema20), "ema50": _r(latest.ema50),
                      "rsi14": _r(latest.rsi14), "atr14": _r(latest.atr14), "vwap": _r(latest.vwap)},
           "columns": ["time", "open", "high", "low", "close", "volume", "ema20", "ema50", "rsi14", "atr14", "vwap"],
           "rows": rows}
    return ToolResult.ok(doc)


async def chart_levels(ctx: ToolContext, market: str) -> list[Level]:
    levels: list[Level] = []
    plan = await ctx.services.plans.open_for(market)
    if plan is not None:
        if plan.stop_px is not None:
            levels.append(Level("stop", float(plan.stop_px), "stop"))
        if plan.target_px is not None:
            levels.append(Level("target", float(plan.target_px), "target"))
        if plan.take_profit_px is not None:
            levels.append(Level("take_profit", float(plan.take_profit_px), "TP"))
        orders = await ctx.services.journal.for_action(f"tool:{plan.thread_id}:{plan.tool_call_id}") \
            if plan.thread_id and plan.tool_call_id else []
        entry = next((o for o in orders if o.role == "entry" and o.avg_px is not None), None)
        if entry is not None and entry.avg_px is not None:
            levels.append(Level("entry", float(entry.avg_px), "entry"))
    for w in await ctx.services.store.watchers.all():
        if w.market != market or not w.active:
            continue
        for name, leg in (("upper", w.upper), ("lower", w.lower)):
            if leg is not None and leg.status.value == "armed":
                levels.append(Level("watcher", float(leg.level), f"watch {name}"))
    return levels


async def get_chart(a: ChartArgs, ctx: ToolContext) -> ToolResult:
    bars = await _bars(ctx, a.market, a.interval, a.count)
    if not bars:
        return ToolResult.error(f"no {a.interval} candles for {a.market}")
    levels = await chart_levels(ctx, a.market)
    png = await asyncio.to_thread(render_chart, f"{a.market} {a.interval}", bars, levels)
    image = ImageBlock(base64.b64encode(png).decode("ascii"), "image/png")
    text = (f"{a.market} {a.interval} chart, {len(bars)} candles, EMA20/EMA50/VWAP drawn; levels: "
            + (", ".join(f"{lv.label} {lv.price:g}" for lv in levels) or "none"))
    return ToolResult(text, image=image, data={"market": a.market, "interval": a.interval, "bytes": len(png)})


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


async def get_ledger(a: LedgerArgs, ctx: ToolContext) -> ToolResult:
    """Every trade's plan (thesis, invalidation, levels, the decision that opened it) with what it
    did, from the recorded fills and funding (`sync.trades`, as `revagent ledger`): entry and exit
    prices, realized PnL net of fees and funding, fees, funding and R, in USD rounded to cents."""
    from revagent.store.ledger import LedgerStore
    from revagent.sync.trades import build_trades

    store = ctx.services.store
    ledger = LedgerStore(store.redis, store.keys)
    all_plans = await ctx.services.plans.all()
    plans = [p for p in all_plans if a.market is None or p.market == a.market][-a.limit:]
    orders = await ctx.services.journal.all()
    fills, funding = await asyncio.gather(ledger.fills(), ledger.funding())
    trades = {t.trade_id: t for t in build_trades(fills, funding, all_plans, orders).trades()}
    by_trade: dict[str, list[Any]] = {}
    for o in orders:
        if o.trade_id is not None:
            by_trade.setdefault(o.trade_id, []).append(o)
    rows = []
    for p in plans:
        t = trades.get(p.trade_id)
        row: dict[str, Any] = {
            "trade_id": p.trade_id, "market": p.market, "side": p.side.value, "status": p.status,
            "opened_at": p.opened_at, "closed_at": p.closed_at, "stop_px": p.stop_px, "target_px": p.target_px,
            "risk_usd": _cents(p.risk_usd), "conviction": p.conviction, "origin": p.origin,
            "thesis": p.thesis, "invalidation": p.invalidation,
            "decision": {"thread_id": p.thread_id, "tool_call_id": p.tool_call_id},
            "rationale": p.rationale[:300]}
        if t is not None:
            row.update({"status": t.status if p.status not in ("closed", "cancelled") else p.status,
                        "closed_at": t.closed_at or p.closed_at, "entry_px": t.entry_vwap, "exit_px": t.exit_vwap,
                        "size": t.size, "realized_pnl_usd": _cents(t.net_pnl), "gross_pnl_usd": _cents(t.gross_pnl),
                        "fees_usd": _cents(t.fees), "funding_usd": _cents(t.funding),
                        "r": None if t.r_multiple is None else t.r_multiple.quantize(Decimal("0.01")),
                        "held_h": None if t.holding_s is None else round(t.holding_s / 3600, 2)})
            if not t.complete:
                row["incomplete"] = t.incomplete_reason
        row["orders"] = [{"role": o.role, "status": o.status, "size": o.size, "avg_px": o.avg_px,
                          "filled": o.filled_size, "cloid": o.cloid} for o in by_trade.get(p.trade_id, [])]
        rows.append(row)
    return ToolResult.ok({"trades": rows, "units": "USD, times UTC ISO 8601; realized_pnl_usd is net of fees "
                                                   "and funding; r = realized_pnl_usd / risk_usd"})


READ_TOOLS: tuple[Tool, ...] = (
    Tool("get_snapshot", "The live runtime snapshot (account, risk, trades, orders, watchers, alerts, notes), or "
         "one section of it in full.", SnapshotArgs, get_snapshot),
    Tool("get_market", "A market's mark and mid price, 24h change (%), funding (%/h), open interest, max leverage.",
         MarketArgs, get_market),
    Tool("get_orderbook", "A market's L2 order book (bids and asks, best first).", BookArgs, get_orderbook),
    Tool("get_candles", "Candles (open times in ISO 8601 UTC) with EMA 20/50, RSI 14, ATR 14 and VWAP computed for "
         "you.", CandleArgs,
         get_candles),
    Tool("get_chart", "A candle chart image with EMA 20/50, VWAP, the trade's entry, stop and target, and watcher "
         "levels.", ChartArgs, get_chart),
    Tool("get_ledger", "Recent trades with their plan (thesis, invalidation, levels), the decision (thread, tool "
         "call) that opened them, their orders, and how they did: realized PnL, fees, funding and R.", LedgerArgs,
         get_ledger),
)
