"""The worker's runner: the one program inside the sandbox (run by the confined interpreter).

It imports numpy, pandas and matplotlib (Agg) first, so a warm worker is ready before a job
arrives, then reads one job (JSON) from stdin until EOF, runs the model's code once and writes one
result (JSON) to the pipe that was its stdout, then exits: a worker never runs two jobs, so nothing
of one run survives into the next.

The code sees: `np`, `pd`, `plt`, `indicators` (the project's indicator functions: ema, rsi, atr,
vwap, compute), `candles` (a dict "MARKET:INTERVAL" -> DataFrame indexed by time, columns t_ms,
open, high, low, close, volume), `df` (the first of them), `funding` (market -> DataFrame), `trades`
(a DataFrame of closed trades) and `snapshot` (a dict). Its `print` goes to a bounded buffer (the
file descriptors 1 and 2 are /dev/null: writing to them directly reaches nothing). The value of a
final expression is returned as text, and the current matplotlib figure, if any, as a PNG.
"""

import ast
import base64
import io
import json
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `-I` leaves the runner's dir off the path
sys.path.extend(sys.argv[1:])  # the package dirs (numpy, pandas, matplotlib), without their .pth hooks
RESULT_FD = os.dup(1)
_null = os.open("/dev/null", os.O_WRONLY)
os.dup2(_null, 1)
os.dup2(_null, 2)
os.close(_null)
sys.stdout = sys.stderr = io.StringIO()  # the runner's own prints, until the job's capture replaces them

_import_error = ""
try:
    import matplotlib

    matplotlib.use("Agg")
    import indicators  # type: ignore[import-not-found]  # the copy beside this file (engine/indicators.py)
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]
except Exception as exc:  # a broken install is the job's error, reported, never a hang
    _import_error = f"{type(exc).__name__}: {exc}"


class CpuTimeout(BaseException):
    """Raised by SIGXCPU (the CPU soft limit): a BaseException, so `except Exception` in the
    model's code cannot swallow it."""


class Bounded(io.TextIOBase):
    """A text sink that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit, self.kept, self.dropped = limit, 0, 0
        self.parts: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            piece = s[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        return "".join(self.parts)


def cut(text: str, limit: int) -> tuple[str, int]:
    """`text` shortened to `limit` characters (a str: never mid-character) and how many were cut."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def frame(rows: list[list[Any]], columns: list[str]) -> Any:
    data = pd.DataFrame(rows, columns=columns)
    if "t_ms" in data.columns:
        data.index = pd.to_datetime(data["t_ms"], unit="ms", utc=True)
        data.index.name = "time"
    return data


def namespace(inputs: dict[str, Any]) -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": "__worker__", "np": np, "pd": pd, "plt": plt, "indicators": indicators}
    candles = {f"{c['market']}:{c['interval']}": frame(c["rows"], c["columns"]) for c in inputs.get("candles", [])}
    ns["candles"] = candles
    ns["df"] = next(iter(candles.values()), None)
    ns["funding"] = {f["market"]: frame(f["rows"], f["columns"]) for f in inputs.get("funding", [])}
    trades = inputs.get("trades")
    ns["trades"] = pd.DataFrame(trades) if trades is not None else None
    ns["snapshot"] = inputs.get("snapshot")
    return ns


def render(value: Any) -> str:
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return str(value.to_string(max_rows=60, max_cols=20))
    return repr(value)


BARS = "▁▂▃▄▅▆▇█"


def sparkline(fig: Any, width: int = 48) -> str | None:
    """The figure's first line (its first axes) as text-art for the TUI: at most `width` bars, each
    the mean of its stretch of points; None when it has no plotted line with finite values."""
    for ax in fig.axes:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float).ravel()
            y = y[np.isfinite(y)]
            if y.size < 2:
                continue
            if y.size > width:
                y = np.array([chunk.mean() for chunk in np.array_split(y, width)])
            lo, hi = float(y.min()), float(y.max())
            if hi == lo:
                return BARS[3] * len(y)
            return "".join(BARS[min(7, int((v - lo) / (hi - lo) * 8))] for v in y)
    return None


def figure_png(max_bytes: int) -> tuple[str | None, str | None, str | None]:
    if not plt.get_fignums():
        return None, None, None
    fig = plt.gcf()
    try:
        spark = sparkline(fig)
    except Exception:  # text-art is a nicety: an odd figure still renders
        spark = None
    w, h = fig.get_size_inches()
    fig.set_size_inches(min(w, 12), min(h, 8))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close("all")
    png = buf.getvalue()
    if len(png) > max_bytes:
        return None, f"figure dropped: {len(png):,} bytes over the {max_bytes:,}-byte limit", None
    return base64.b64encode(png).decode("ascii"), None, spark


def run(job: dict[str, Any]) -> dict[str, Any]:
    lim = job["limits"]
    out = Bounded(lim["stdout_chars"])
    result: dict[str, Any] = {"ok": False, "stdout": "", "stdout_cut": 0, "value": None, "value_cut": 0,
                              "error": None, "figure_png": None, "figure_sparkline": None, "note": None}
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_used = used.ru_utime + used.ru_stime
    soft = int(cpu_used + lim["cpu_s"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))  # lowering the hard limit is for good

    def on_xcpu(signum: int, frame: Any) -> None:
        raise CpuTimeout()

    signal.signal(signal.SIGXCPU, on_xcpu)
    started = time.monotonic()
    try:
        tree = ast.parse(job["code"], "<code>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        ns = namespace(job.get("inputs") or {})
        sys.stdout = sys.stderr = out
        exec(compile(tree, "<code>", "exec"), ns)
        if last is not None:
            value = eval(compile(last, "<code>", "eval"), ns)
            if value is not None:
                result["value"], result["value_cut"] = cut(render(value), lim["value_chars"])
        result["ok"] = True
    except CpuTimeout:
        result["error"] = f"CPU time limit ({lim['cpu_s']} s) reached"
    except MemoryError:
        result["error"] = "MemoryError: the memory limit was reached"
    except BaseException as exc:  # the model's code may raise anything, SystemExit included
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if f.filename == "<code>"]
        where = f" (line {frames[-1].lineno})" if frames else ""
        result["error"], _ = cut(f"{type(exc).__name__}{where}: {exc}", lim["value_chars"])
    finally:
        sys.stdout = sys.stderr = io.StringIO()
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    result["stdout"], result["stdout_cut"] = out.text(), out.dropped
    try:
        result["figure_png"], result["note"], result["figure_sparkline"] = figure_png(lim["figure_bytes"])
    except BaseException as exc:
        result["note"] = f"figure not rendered: {type(exc).__name__}: {exc}"
    result["elapsed_s"] = round(time.monotonic() - started, 4)
    return result


def main() -> None:
    os.write(RESULT_FD, b"R")  # ready: the libraries are imported (the parent's `Worker.ready`)
    raw = sys.stdin.buffer.read()
    if _import_error:
        doc: dict[str, Any] = {"ok": False, "error": f"the worker could not import its libraries: {_import_error}"}
    else:
        try:
            doc = run(json.loads(raw))
        except BaseException as exc:
            doc = {"ok": False, "error": f"worker error: {type(exc).__name__}: {exc}"}
    data = json.dumps(doc, default=str).encode()
    view = memoryview(data)
    while view:
        n = os.write(RESULT_FD, view)
        view = view[n:]
    os._exit(0)


main()
