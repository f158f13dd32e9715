"""Candle charts as PNG for the model to read (matplotlib, imported lazily, Agg backend).

`render_chart(...)` is CPU work (~50-150 ms): call it through `asyncio.to_thread` from async code.
It draws candles, EMA 20/50 and VWAP, and horizontal lines for the position's entry, stop and
target and for the watcher levels, each labelled with its price.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from revagent.engine.indicators import compute

LevelKind = Literal["entry", "stop", "target", "take_profit", "watcher", "liquidation"]
_COLORS: dict[str, str] = {"entry": "#1f77b4", "stop": "#d62728", "target": "#2ca02c", "take_profit": "#17becf",
                           "watcher": "#9467bd", "liquidation": "#8c564b"}


@dataclass(frozen=True, slots=True)
class Bar:
    """One candle: open time in ms, OHLCV as floats."""

    t: int
    o: float
    h: float
    low: float
    c: float
    v: float


@dataclass(frozen=True, slots=True)
class Level:
    kind: LevelKind
    price: float
    label: str = ""


def render_chart(title: str, bars: Sequence[Bar], levels: Sequence[Level] = (), *, width_px: int = 1000,
                 height_px: int = 600) -> bytes:
    """The chart as PNG bytes. Blocking (CPU): run it in a thread from async code."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(bars)))
    for i, b in enumerate(bars):
        color = "#26a69a" if b.c >= b.o else "#ef5350"
        ax.vlines(i, b.low, b.h, color=color, linewidth=1)
        ax.vlines(i, min(b.o, b.c), max(b.o, b.c), color=color, linewidth=4)
    if bars:
        series = compute([b.h for b in bars], [b.low for b in bars], [b.c for b in bars], [b.v for b in bars])
        for name, values, style in (("EMA20", series.ema20, "-"), ("EMA50", series.ema50, "-"),
                                    ("VWAP", series.vwap, "--")):
            pts = [(x, y) for x, y in zip(xs, values, strict=True) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, linewidth=1, label=name)
    for lv in sorted(levels, key=lambda lv: (lv.kind, lv.price)):
        color = _COLORS.get(lv.kind, "#7f7f7f")
        ax.axhline(lv.price, color=color, linestyle=":" if lv.kind == "watcher" else "-", linewidth=1.2)
        ax.annotate(f"{lv.label or lv.kind} {lv.price:g}", xy=(1.0, lv.price), xycoords=("axes fraction", "data"),
                    xytext=(-4, 2), textcoords="offset points", ha="right", fontsize=8, color=color)
    ax.set_title(title)
    ax.grid(True, alpha=0.2)
    if bars:
        ax.legend(loc="upper left", fontsize=8)
        step = max(1, len(bars) // 8)
        ticks = xs[::step]
        from datetime import UTC, datetime

        ax.set_xticks(ticks)
        ax.set_xticklabels([datetime.fromtimestamp(bars[i].t / 1000, UTC).strftime("%m-%d %H:%M") for i in ticks],
                           fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
