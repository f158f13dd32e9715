"""Warm restarts of `revagent daemon`: how long until a restarted daemon is "trading on" (its sync phase
`consistent`, new entries allowed) and until it is fully running (turn engine and alerts too).

Warm means: the embedded Redis already runs, the paper venue runs (the simulator, in a thread of this
process, as in tests/chaos), and the store holds a previous session's state (an open BTC trade with
its stop, its fills in the ledger, the stored snapshot). Each round stops the daemon (SIGTERM, or
SIGKILL every third round), starts a new one and reads its start-up phases from its log: every phase
line says `start-up: <phase> (<s>s since the process started)`.

    .venv/bin/python benchmarks/restart_bench.py [--quick] [--rounds N]

Figures: per phase, the seconds since the process started (p50 / max over the rounds); the wall time
from spawning the process to "trading on" and to "running" as this script saw it; the request weight
the venue received per start; the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.chaos.harness import World  # noqa: E402

from _common import percentile, write_results  # noqa: E402

OPEN_BTC = ("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "20", "--target", "5%", "--yes", "--json")
PHASE = re.compile(r"start-up: (?P<phase>.+?) \((?P<age>[0-9.]+)s since the process started\)")
SEED = 20261204


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def phases_of(w: World, pid: int) -> list[tuple[str, float]]:
    mark = f"[{pid}] "
    out = []
    for line in list(w.logs):
        if not line.startswith(mark):
            continue
        m = PHASE.search(line)
        if m:
            out.append((m["phase"], float(m["age"])))
    return out


def wait_phase(w: World, pid: int, name: str, timeout: float) -> bool:
    """True once the daemon logged phase `name`; False if it said `running` without it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [p for p, _ in phases_of(w, pid)]
        if name in seen:
            return True
        if "running" in seen:
            return False
        assert w.daemon is not None
        if w.daemon.poll() is not None:
            raise AssertionError(f"the daemon exited {w.daemon.returncode}:\n{w.tail()}")
        time.sleep(0.01)
    return False


def weight_total(w: World, reset: bool = False) -> int:
    doc = w.control("weights", reset=reset)
    return int(doc.get("total", 0))


def run(rounds: int) -> dict[str, Any]:
    per_phase: dict[str, list[float]] = {}
    to_trading: list[float] = []
    to_running: list[float] = []
    weights: list[int] = []
    orders: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="restart-bench-") as tmp:
        w = World(Path(tmp) / "home", SEED)
        with w:
            w.start_daemon()
            w.wait_running()
            opened = w.revagent(*OPEN_BTC)
            assert opened.returncode == 0, opened.stdout + opened.stderr
            w.wait_for(lambda: w.stop_oids(), 20, "the BTC stop")
            time.sleep(1.0)
            for i in range(rounds):
                if i % 3 == 2:
                    w.kill_daemon()
                else:
                    w.stop_daemon()
                weight_total(w, reset=True)
                t0 = time.monotonic()
                proc = w.start_daemon()
                if wait_phase(w, proc.pid, "trading on", 90):
                    to_trading.append(time.monotonic() - t0)
                assert wait_phase(w, proc.pid, "running", 90), w.tail()
                to_running.append(time.monotonic() - t0)
                w.wait_running()
                time.sleep(0.5)  # let the start's reads land before counting them
                weights.append(weight_total(w))
                seen = phases_of(w, proc.pid)
                orders.append([p for p, _ in seen])
                for p, age in seen:
                    per_phase.setdefault(p, []).append(age)
                print(f"restart {i + 1}/{rounds}: " + ", ".join(f"{p} {a:.2f}s" for p, a in seen), flush=True)
            assert w.stop_oids(), "the BTC stop is gone after the restarts"
            w.stop_daemon()

    def summary(xs: list[float]) -> dict[str, float] | None:
        return {"n": len(xs), "p50": round(percentile(xs, 50), 3), "max": round(max(xs), 3)} if xs else None

    return {
        "rounds": rounds,
        "phase_order": orders[-1] if orders else [],
        "phases_since_process_start_s": {p: summary(v) for p, v in per_phase.items()},
        "spawn_to_trading_on_s": summary(to_trading),
        "spawn_to_running_s": summary(to_running),
        "weight_per_start": {"p50": percentile([float(x) for x in weights], 50), "max": max(weights)} if weights
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run that proves the script works")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--before", type=Path, default=None,
                        help="an earlier results file (e.g. of the commit before a change) to embed as `before`")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 12)
    load_before = loadavg()
    t0 = time.monotonic()
    figures = run(rounds)
    figures["wall_s"] = round(time.monotonic() - t0, 1)
    figures["loadavg_before"] = load_before
    figures["loadavg_after"] = loadavg()
    if args.before is not None:
        earlier = json.loads(args.before.read_text())
        figures["before"] = {"commit": earlier["commit"], "measured_at": earlier["measured_at"],
                             "figures": earlier["figures"]}
    write_results("restart_bench", figures, quick=args.quick)


if __name__ == "__main__":
    main()
