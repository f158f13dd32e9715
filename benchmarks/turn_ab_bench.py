"""Before and after, interleaved: turn_bench's turn figures (200 text and 200 tool turns, live caches and
re-checked every turn) run alternately against another source tree (REVAGENT_BENCH_BEFORE, e.g.
`git archive <commit> src | tar -x -C DIR`, then DIR/src) and this one, `--rounds` times (default 4,
the order alternating), so both sides see the same load on a shared machine (a sequential before/after
on the 2-core machine measures the load more than the code). Writes `turn_ab_bench.json`: per turn
kind, the median over rounds of each run's p50 / p99 (wall) and CPU p50 / p99 (the loop's thread),
both sides, the after/before ratios, and the load per round.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BEFORE_ENV, write_results

KINDS = ("turn_text_live", "turn_tool_live", "turn_text_cold", "turn_tool_cold")
QUANTILES = ("p50_us", "p99_us", "cpu_p50_us", "cpu_p99_us")


def _one(src: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="turnab-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != BEFORE_ENV}
        env.update(REVAGENT_BENCH_RESULTS=tmp, REVAGENT_TURN_BENCH_TURNS_ONLY="1")
        if src is not None:
            env["PYTHONPATH"] = src
        subprocess.run([sys.executable, str(Path(__file__).with_name("turn_bench.py"))], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        figures: dict[str, Any] = json.loads((Path(tmp) / "turn_bench.quick.json").read_text())["figures"]
        return figures


def main() -> None:
    src = os.environ.get(BEFORE_ENV)
    if not src:  # `./dev bench` runs every benchmark: nothing to compare with, nothing to do
        print(f"turn_ab_bench: skipped ({BEFORE_ENV} names no source tree to compare with)")
        return
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 4
    if "--quick" in sys.argv:
        rounds = 1
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    loads: list[float] = []
    for i in range(rounds):  # the order alternates (BA, AB, ...): a bias of the second run cancels out
        loads.append(round(os.getloadavg()[0], 2))
        for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
            runs[side].append(_one(src if side == "before" else None))
    figures: dict[str, Any] = {"rounds": rounds, "before_source": src, "load_avg_1m_per_round": loads,
                               "turns_per_run": 200}
    for kind in KINDS:
        doc: dict[str, Any] = {side: {q: round(statistics.median(r[kind][q] for r in side_runs), 1)
                                      for q in QUANTILES} for side, side_runs in runs.items()}
        doc["after_over_before"] = {q: round(doc["after"][q] / doc["before"][q], 3) for q in QUANTILES
                                    if doc["before"][q]}
        figures[kind] = doc
    write_results("turn_ab_bench", figures, quick=False)


if __name__ == "__main__":
    main()
