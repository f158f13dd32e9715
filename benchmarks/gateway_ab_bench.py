"""Before and after, interleaved: `gateway_bench.py --quick` run alternately against another source tree
(REVAGENT_BENCH_BEFORE, e.g. `git archive <commit> src | tar -x -C DIR`, then DIR/src) and this one,
`--rounds` times (default 4, the order alternating), so both sides see the same load on a shared machine. Writes
`gateway_ab_bench.json`: per intent, the median over rounds of each run's p50 (total, bookkeeping,
network) and of the Redis round trips, both sides, the after/before ratios, and the load per round.
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

INTENTS = ("open", "modify_stop", "close")
PARTS = ("total", "bookkeeping", "network", "account_read")


def _one(src: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gwab-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != BEFORE_ENV}
        env["REVAGENT_BENCH_RESULTS"] = tmp
        if src is not None:
            env["PYTHONPATH"] = src
        subprocess.run([sys.executable, str(Path(__file__).with_name("gateway_bench.py")), "--quick"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        figures: dict[str, Any] = json.loads((Path(tmp) / "gateway_bench.quick.json").read_text())["figures"]
        return figures


def main() -> None:
    src = os.environ.get(BEFORE_ENV)
    if not src:  # `./dev bench` runs every benchmark: nothing to compare with, nothing to do
        print(f"gateway_ab_bench: skipped ({BEFORE_ENV} names no source tree to compare with)")
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
    figures: dict[str, Any] = {"rounds": rounds, "before_source": src, "load_avg_1m_per_round": loads}
    for kind in INTENTS:
        doc: dict[str, Any] = {}
        for side, side_runs in runs.items():
            doc[side] = {f"{part}_p50_us": round(statistics.median(r[kind][part]["p50_us"] for r in side_runs), 1)
                         for part in PARTS}
            doc[side]["redis_round_trips"] = statistics.median(
                r[kind]["calls_per_intent_p50"].get("redis_round_trips", 0) for r in side_runs)
        doc["after_over_before"] = {k: round(doc["after"][k] / doc["before"][k], 3) for k in doc["before"]
                                    if doc["before"][k]}
        figures[kind] = doc
    write_results("gateway_ab_bench", figures, quick=False)


if __name__ == "__main__":
    main()
