"""`run_python`: the model computes on market data in the confined worker (`revagent.worker`).

The tool loads the inputs the model named (candles by market, interval and count; funding history;
the ledger's closed trades; the snapshot as a dict) here, in the session, through the same sources
the read tools use, and hands them to a worker that has no network, no key, no Redis and no
gateway. It decides nothing: its effect is `read`; what the model learns it acts on through the
normal tools, so every effect still passes the risk engine and the gateway.

The result for the transcript is compact: the code stays in the tool call's input; the result holds
stdout (at most `STDOUT_CHARS` for the model, cut with a marker), the final expression's value, an
error line, and the figure as an image block. Where no confinement works, the tool refuses (an
error result) and nothing runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from pydantic import Field

from revagent.engine.providers.base import ImageBlock
from revagent.engine.snapshot import build_snapshot
from revagent.engine.tools.base import Args, Tool, ToolContext, ToolResult
from revagent.engine.tools.read import INTERVAL_MS, Interval, _bars, _need_market
from revagent.models import MARKET_PATTERN
from revagent.worker import Limits, SandboxUnavailable, WorkerPool, WorkerResult

log = logging.getLogger(__name__)

STDOUT_CHARS = 6_000
"""What of the worker's stdout goes back to the model (the worker keeps up to `Limits.stdout_chars`)."""
MAX_CODE_CHARS = 8_000


class CandleInput(Args):
    market: str = Field(pattern=MARKET_PATTERN)
    interval: Interval = "1h"
    count: int = Field(default=200, ge=2, le=2000)


class FundingInput(Args):
    market: str = Field(pattern=MARKET_PATTERN)
    hours: int = Field(default=168, ge=1, le=720)


class PythonInputs(Args):
    candles: list[CandleInput] = Field(default_factory=list, max_length=6,
                                       description='each becomes candles["MARKET:INTERVAL"] (the first also `df`)')
    funding: list[FundingInput] = Field(default_factory=list, max_length=4,
                                        description='each becomes funding["MARKET"] (time, funding_rate, premium)')
    closed_trades: int = Field(default=0, ge=0, le=500, description="the last N closed trades as `trades`")
    snapshot: bool = Field(default=False, description="the runtime snapshot as the dict `snapshot`")


class RunPythonArgs(Args):
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS,
                      description="Python 3 to run; the value of a final expression is returned")
    inputs: PythonInputs | None = None


DESCRIPTION = (
    "Run Python on market data in a sandbox (no network, no files, no orders: it computes, you act with the "
    "other tools). Preloaded: np, pd, plt (matplotlib), indicators (ema, rsi, atr, vwap, compute: the same "
    "functions get_candles uses), and what `inputs` asks for: candles[\"BTC:1h\"] DataFrames (time index; "
    "t_ms, open, high, low, close, volume) with the first as `df`, funding[\"BTC\"], trades (closed trades), "
    "snapshot (dict). Returns stdout, the final expression's value and the current matplotlib figure as an "
    "image. Limits: 10 s CPU, 20 s wall, 2 GB memory, bounded output.")


async def _inputs(a: PythonInputs | None, ctx: ToolContext) -> dict[str, Any]:
    if a is None:
        return {}
    doc: dict[str, Any] = {}
    if a.candles:
        doc["candles"] = []
        for c in a.candles:
            bars = await _bars(ctx, c.market, c.interval, c.count)
            doc["candles"].append({"market": c.market, "interval": c.interval,
                                   "columns": ["t_ms", "open", "high", "low", "close", "volume"],
                                   "rows": [[b.t, b.o, b.h, b.low, b.c, b.v] for b in bars]})
    if a.funding:
        market = _need_market(ctx)
        now_ms = int(ctx.services.clock().timestamp() * 1000)
        doc["funding"] = []
        for f in a.funding:
            history = getattr(market, "funding_history", None)
            if history is None:
                raise RuntimeError("this session's market data has no funding history")
            records = await history(f.market, now_ms - f.hours * INTERVAL_MS["1h"], now_ms)
            doc["funding"].append({"market": f.market, "columns": ["t_ms", "funding_rate", "premium"],
                                   "rows": [[r.time, float(r.funding_rate),
                                             None if r.premium is None else float(r.premium)] for r in records]})
    if a.closed_trades:
        doc["trades"] = await _closed_trades(ctx, a.closed_trades)
    if a.snapshot:
        source = ctx.services.snapshot
        if source is None:
            raise RuntimeError("no snapshot source in this session")
        doc["snapshot"] = build_snapshot(await source.inputs()).doc
    return doc


async def _closed_trades(ctx: ToolContext, limit: int) -> list[dict[str, Any]]:
    plans = [p for p in await ctx.services.plans.all() if p.status == "closed"][-limit:]
    orders = await ctx.services.journal.all()
    fills: dict[tuple[str, str], float] = {}
    for o in orders:
        if o.trade_id is not None and o.avg_px is not None and o.role in ("entry", "stop", "take_profit", "close"):
            fills[(o.trade_id, "entry" if o.role == "entry" else "exit")] = float(o.avg_px)
    return [{"trade_id": p.trade_id, "market": p.market, "side": p.side.value, "opened_at": p.opened_at.isoformat(),
             "closed_at": p.closed_at.isoformat() if p.closed_at else None,
             "stop_px": None if p.stop_px is None else float(p.stop_px),
             "target_px": None if p.target_px is None else float(p.target_px), "risk_usd": float(p.risk_usd),
             "conviction": p.conviction, "origin": p.origin, "entry_px": fills.get((p.trade_id, "entry")),
             "exit_px": fills.get((p.trade_id, "exit"))} for p in plans]


def compact(r: WorkerResult) -> dict[str, Any]:
    """The transcript's result: short, with every cut said."""
    doc: dict[str, Any] = {"ok": r.ok}
    stdout, cut = r.stdout, r.stdout_cut
    if len(stdout) > STDOUT_CHARS:
        cut += len(stdout) - STDOUT_CHARS
        stdout = stdout[:STDOUT_CHARS]
    if stdout:
        doc["stdout"] = stdout + (f"\n[… {cut:,} more characters cut]" if cut else "")
    if r.value is not None:
        doc["value"] = r.value + (f"\n[… {r.value_cut:,} more characters cut]" if r.value_cut else "")
    if r.error:
        doc["error"] = r.error
    if r.note:
        doc["note"] = r.note
    if r.figure_png:
        doc["figure"] = f"PNG, {len(r.figure_png):,} bytes (attached)"
    doc["seconds"] = r.wall_s
    return doc


async def run_python(a: RunPythonArgs, ctx: ToolContext) -> ToolResult:
    pool = ctx.services.python
    try:
        inputs = await _inputs(a.inputs, ctx)
        if pool is None:
            pool = WorkerPool(Limits(), warm=False)  # a session without its pool: one cold worker
            try:
                result = await pool.run(a.code, inputs)
            finally:
                await pool.aclose()
        else:
            result = await pool.run(a.code, inputs)
    except SandboxUnavailable as exc:
        return ToolResult.error(f"run_python refused: no sandbox on this machine ({exc}); the code was not run. "
                                "Use the other tools instead.")
    doc = compact(result)
    image = ImageBlock(base64.b64encode(result.figure_png).decode("ascii"), "image/png") if result.figure_png else None
    data = {"code": a.code, **doc, "mechanism": result.mechanism, "warm": result.warm}
    if result.figure_png and pool is not None and pool.figures is not None:
        try:  # for the trader (the TUI's link, `ask --json`); the model has the image itself
            data["figure_path"] = str(await asyncio.to_thread(pool.figures.save, result.figure_png, ctx.tool_call_id))
        except OSError as exc:
            log.warning("run_python: the figure was not saved (%s)", exc)
        if result.figure_sparkline:
            data["figure_sparkline"] = result.figure_sparkline
    content = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))  # text as text: 1 character, not 6
    return ToolResult(content, is_error=not result.ok, image=image, data=data)


PYTHON_TOOLS: tuple[Tool, ...] = (
    Tool("run_python", DESCRIPTION, RunPythonArgs, run_python),
)

__all__ = ["PYTHON_TOOLS", "WorkerPool", "compact", "run_python"]
