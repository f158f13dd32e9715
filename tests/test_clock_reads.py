"""Issue 19.1: no part of src/ reads the wall clock except `revagent/clock.py`.

A wall-clock read is a call of `utc_now()`, `datetime.now()` / `datetime.utcnow()`, `time.time()`,
`time.monotonic()` (and their `_ns` forms), or `asyncio.sleep(x)` with x other than 0 (a timer on
wall time). Each part should take time from the `Clock` its Session provides (`revagent.clock`:
`WallClock` live, `MarketClock` in a replay). `perf_counter` is not counted: it measures how long
something took on this computer, which is wall time in a replay too.

`NOT_YET_CONVERTED` lists, per file, the reads that are still direct. It may only SHRINK: the test
fails when a file has more reads than listed (a new direct read: take the clock instead), and also
when it has fewer (a converted read: lower the number, or drop the file, in the same change). The
issue wants this list empty eventually.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "revagent"
CLOCK_MODULE = "clock.py"
WALL_ATTRS = {("datetime", "now"), ("datetime", "utcnow"), ("time", "time"), ("time", "monotonic"),
              ("time", "time_ns"), ("time", "monotonic_ns"), ("models", "utc_now")}
WALL_NAMES = {"utc_now", "monotonic"}

NOT_YET_CONVERTED: dict[str, int] = {
    "alerts/notify.py": 2,
    "alerts/runner.py": 2,
    "alerts/service.py": 1,
    "alerts/trade_watch.py": 1,
    "cli/alerts.py": 2,
    "cli/ledger.py": 1,
    "cli/main.py": 1,
    "cli/notes.py": 2,
    "cli/reads.py": 2,
    "cli/server.py": 4,
    "cli/watchers.py": 1,
    "engine/market_atr.py": 1,
    "engine/tools/read.py": 2,
    "exchange/feed.py": 1,
    "exchange/hyperliquid/bridge.py": 1,
    "exchange/hyperliquid/http.py": 1,
    "exchange/hyperliquid/nonces.py": 1,
    "exchange/hyperliquid/ws.py": 1,
    "exchange/onboarding.py": 3,
    "exchange/sim/clock.py": 4,
    "exchange/sim/recording.py": 10,
    "exchange/sim/server.py": 3,
    "exchange/sim/service.py": 5,
    "exchange/sim/upstream.py": 4,
    "gateway.py": 4,
    "models.py": 1,
    "runtime/commands.py": 11,
    "runtime/daemon.py": 1,
    "runtime/owner_status.py": 1,
    "runtime/session.py": 5,
    "runtime/supervisor.py": 2,
    "store/account_views.py": 1,
    "store/alert_queue.py": 6,
    "store/cluster.py": 3,
    "store/commands.py": 9,
    "store/invalidations.py": 1,
    "store/lease.py": 7,
    "store/orders.py": 3,
    "store/rate_budget.py": 7,
    "store/server.py": 6,
    "store/threads.py": 2,
    "sync/service.py": 10,
    "tui/app.py": 2,
    "tui/viewer_port.py": 2,
    "tui/wallets.py": 1,
    "worker/_runner.py": 2,
    "worker/figures.py": 1,
    "worker/sandbox.py": 3,
}


def wall_reads(path: Path) -> list[tuple[int, str]]:
    """(line, what) for every direct wall-clock read in one file."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in WALL_NAMES:
            out.append((node.lineno, f.id))
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            pair = (f.value.id, f.attr)
            if pair in WALL_ATTRS:
                out.append((node.lineno, ".".join(pair)))
            elif pair == ("asyncio", "sleep"):
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Constant) and arg.value == 0):
                    out.append((node.lineno, "asyncio.sleep"))
    return out


def all_reads() -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == CLOCK_MODULE:
            continue
        reads = wall_reads(path)
        if reads:
            found[rel] = reads
    return found


def test_no_new_wall_clock_reads_outside_the_clock_module() -> None:
    grown = {rel: reads for rel, reads in all_reads().items() if len(reads) > NOT_YET_CONVERTED.get(rel, 0)}
    assert grown == {}, ("direct wall-clock reads beyond the allowlist (take the session's Clock instead): "
                         f"{grown}")


def test_the_allowlist_only_shrinks() -> None:
    found = all_reads()
    stale = {rel: (n, len(found.get(rel, []))) for rel, n in NOT_YET_CONVERTED.items()
             if len(found.get(rel, [])) < n}
    assert stale == {}, f"converted reads: lower NOT_YET_CONVERTED to the counts found (listed, found): {stale}"


def test_the_checker_sees_each_kind_of_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio, time\nfrom datetime import datetime\nfrom revagent.models import utc_now\n"
                      "async def f():\n    utc_now(); datetime.now(); time.time(); time.monotonic()\n"
                      "    await asyncio.sleep(1.0); await asyncio.sleep(0)\n")
    assert [what for _, what in wall_reads(sample)] == [
        "utc_now", "datetime.now", "time.time", "time.monotonic", "asyncio.sleep"]
