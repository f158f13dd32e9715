"""Chaos, the long form of tests/chaos: many seeded rounds against a paper venue, an embedded Redis and
a real `revagent daemon`: SIGKILL of the daemon mid-order, the simulator's faults (websocket outage,
REST outage with 429/502, 429/502 on /exchange, a lost order response) with the stop deleted behind
the daemon's back, Redis stalled and killed. After each fault it audits the venue's own truth
against the journal and the ledger and records how long until they agreed again.

    .venv/bin/python benchmarks/chaos_bench.py [--quick] [--seed N]

Figures: runs, faults injected, each count the audit checks (duplicate orders, orders outside the
journal, lost / doubled / unknown fills, position mismatches, owners at once, Redis servers at once),
time to consistent after a fault, time unprotected beyond stop_grace, warm restart to running (as the
harness sees it) and to the `trading on` / `running` phases (seconds after spawn, from the daemon's log).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.chaos.harness import STOP_GRACE_S, Audit, World, redis_servers_for  # noqa: E402
from tests.chaos.test_venue_faults import FAULTS, OPEN_BTC  # noqa: E402

from _common import percentile, write_results  # noqa: E402

COUNTS = ("orders_outside_journal", "duplicate_orders", "lost_fills", "doubled_fills", "unknown_fills",
          "doubled_tool_effects")


def kill_mid_order(w: World, hand: object) -> None:
    sent = w.commands_sent()
    cmd = w.popen("trade", "open", "ETH", "long", "--stop", "2%", "--risk", "10", "--target", "5%", "--yes",
                  "--json")
    # as tests/chaos/test_kill_owner.py: the kill lands in the order's life, and the owner is restarted
    # at once (a supervisor), so a command the killed owner never took is the next owner's
    w.wait_for(lambda: w.commands_sent() > sent or cmd.poll() is not None, 60, "the command to be sent")
    w.pause(0.0, 1.0)
    w.kill_daemon()
    w.start_daemon()
    w.restarts.append(w.wait_running())
    cmd.communicate(timeout=90)


def redis_stall(w: World, hand: object) -> None:
    server = w.redis_pid()
    os.kill(server, signal.SIGSTOP)
    w.faults["redis_stall"] += 1
    try:
        w.pause(2.0, 5.0)
    finally:
        os.kill(server, signal.SIGCONT)


def redis_kill(w: World, hand: object) -> None:
    server = w.redis_pid()
    os.kill(server, signal.SIGKILL)
    w.faults["redis_kill"] += 1
    w.pause(0.2, 1.0)
    w.delete_stop(hand)
    w.wait_for(lambda: [p for p in redis_servers_for(w.data) if p != server], 30, "a new Redis server")
    assert w.daemon is not None
    w.wait_for(lambda: w.lease_holder() == (w.daemon.pid if w.daemon else None), 30, "the daemon to own it again")


SCENARIOS = [*FAULTS, kill_mid_order, redis_stall, redis_kill]


def run(rounds: int, seed: int) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    consistent: list[float] = []
    worst_unprotected = 0.0
    raw_unprotected = 0.0
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chaos-bench-") as tmp:
        w = World(Path(tmp) / "home", seed)
        w.restarts = []  # type: ignore[attr-defined]
        with w:
            w.start_daemon()
            w.wait_running()
            w.start_monitor()
            opened = w.revagent(*OPEN_BTC)
            assert opened.returncode == 0, opened.stdout + opened.stderr
            w.wait_for(lambda: w.stop_oids(), 20, "the BTC stop")
            hand = w.someone_else()
            time.sleep(STOP_GRACE_S + 0.5)
            plan = [SCENARIOS[i % len(SCENARIOS)] for i in range(rounds)]
            w.rng.shuffle(plan)
            report = Audit()
            reported: set[str] = set()
            for fault in plan:
                fault(w, hand)
                took, report = w.settle(timeout=30)
                consistent.append(took)
                new = [p for p in report.problems() if p not in reported]  # the audit's figures are run-wide
                reported.update(new)
                if new:
                    failures.append(f"{fault.__name__}: {new}")
                print(f"{fault.__name__}: consistent after {took:.2f} s", flush=True)
                if not w.stop_oids():
                    w.wait_for(lambda: w.stop_oids(), 20, "the BTC stop back")
            for name in COUNTS:
                totals[name] = len(getattr(report, name))
            totals["position_mismatch"] = len(report.position_mismatch)
            totals["owners_at_once"] = report.owners_at_once
            totals["servers_at_once_max"] = report.servers_at_once
            worst_unprotected = report.unprotected_s
            raw_unprotected = report.unprotected_raw_s
            assert w.monitor is not None
            windows = sorted(w.monitor.unprotected_windows, reverse=True)[:5]
            daemon_alive = w.daemon is not None and w.daemon.poll() is None
            exit_code = w.stop_daemon()
            restarts = list(w.restarts)  # type: ignore[attr-defined]
            phases = {name: values[1:] for name, values in w.startup_phases.items()}  # the first start is cold
            faults = dict(w.faults)
            venue_orders, venue_fills = report.venue_orders, report.venue_fills
    return {
        "seed": seed,
        "runs": rounds,
        "faults": faults,
        "faults_total": sum(faults.values()),
        "venue_orders": venue_orders,
        "venue_fills": venue_fills,
        "counts": dict(totals),
        "problems": failures,
        "time_to_consistent_s": {"p50": round(percentile(consistent, 50), 2), "max": round(max(consistent), 2)},
        "unprotected_beyond_grace_s": {"max": worst_unprotected, "stop_grace_s": STOP_GRACE_S},
        "unprotected_raw_s": raw_unprotected,
        "longest_windows_without_stop_s": [round(x, 2) for x in windows],
        "warm_restart_to_running_s": ({"n": len(restarts), "p50": round(percentile(restarts, 50), 2),
                                       "max": round(max(restarts), 2)} if restarts else None),
        "warm_restart_phase_s": {name: {"n": len(v), "p50": round(percentile(v, 50), 2), "max": round(max(v), 2)}
                                 for name, v in phases.items() if v},
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
        "daemon_alive_at_end": daemon_alive,
        "daemon_exit_code": exit_code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run that proves the script works")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    print(f"chaos seed {seed}", flush=True)
    rounds = args.rounds or (3 if args.quick else 40)
    t0 = time.monotonic()
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    figures = run(rounds, seed)
    figures["loadavg_start"] = load_start
    figures["wall_s"] = round(time.monotonic() - t0, 1)
    write_results("chaos_bench", figures, quick=args.quick)
    if figures["problems"] and not args.quick:  # --quick (CI) records them; tests/chaos is the gate
        sys.exit(1)


if __name__ == "__main__":
    main()
