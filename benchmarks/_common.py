"""Shared plumbing for benchmarks: the --quick flag, percentiles, and results as JSON.

Every benchmark writes `benchmarks/results/<name>.json` (or `<name>.quick.json` in --quick mode,
which CI runs so the scripts never rot) with the machine and the commit it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(os.environ.get("REVAGENT_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
BEFORE_ENV = "REVAGENT_BENCH_BEFORE"


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run that proves the script works")
    return parser.parse_args(argv)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of `samples` (pct in 0..100)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_us(samples_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of samples given in seconds, reported in microseconds."""
    return {
        "n": len(samples_s),
        "p50_us": round(percentile(samples_s, 50) * 1e6, 2),
        "p90_us": round(percentile(samples_s, 90) * 1e6, 2),
        "p99_us": round(percentile(samples_s, 99) * 1e6, 2),
        "max_us": round(max(samples_s) * 1e6, 2),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(name: str, figures: dict[str, Any], *, quick: bool) -> Path:
    """Write the figures with machine, commit and time; print them; return the file path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'.quick' if quick else ''}.json"
    doc = {
        "benchmark": name,
        "quick": quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "figures": figures,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    json.dump(figures, sys.stdout, indent=2)
    sys.stdout.write(f"\nwritten to {path}\n")
    return path


def run_before(name: str, *, quick: bool) -> dict[str, Any] | None:
    """Before and after in one run: with REVAGENT_BENCH_BEFORE set to a source tree of revagent (e.g.
    `git archive <commit> src | tar -x -C DIR`, then DIR/src), this benchmark first runs itself against
    that tree (same arguments, same machine, minutes apart) and returns its figures to embed as
    `before`. None without it."""
    src = os.environ.get(BEFORE_ENV)
    if not src:
        return None
    with tempfile.TemporaryDirectory(prefix=f"{name}-before-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != BEFORE_ENV}
        env.update(PYTHONPATH=src, REVAGENT_BENCH_RESULTS=tmp)
        subprocess.run([sys.executable, *sys.argv], env=env, check=True, stdout=subprocess.DEVNULL)
        doc: dict[str, Any] = json.loads((Path(tmp) / f"{name}{'.quick' if quick else ''}.json").read_text())
    return {"source": src, "load_avg_1m": os.getloadavg()[0], "figures": doc["figures"]}
