"""`revagent replay` (issue 19): how fast the whole agent replays a market.

1. A day of 1-minute synthetic data (seed 7) with 20 watcher pairs on 10 markets and the offline
   policy: market minutes replayed per wall second (goal: a day in under 20 s on a 2-core machine).
2. The same day with a scripted model answering at once (the fake Anthropic server, the real SDK):
   the wall time per agent turn while market time is paused (the driver sees the turn running until
   the session is quiet again), i.e. the overhead per turn outside the model: the alert brief, the
   snapshot, the SDK's request and stream, the transcript written, the queue's bookkeeping.

Redis: the replay's own embedded server under a temporary directory. `--quick`: 2 market hours.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes: the fake Anthropic server
from _common import parse_args, write_results
from revagent.replay.driver import Replay, ReplaySpec
from revagent.replay.report import run_and_report, timing
from revagent.replay.seeds import Seeds

MARKETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "AVAX", "LINK", "ARB", "SUI", "HYPE")
SEEDS = {"watchers": [
    {"id": f"w-{m.lower()}-{pct}", "market": m, "upper": f"+{pct}%", "lower": f"-{pct}%", "thesis": "range break"}
    for m in MARKETS for pct in ("0.8", "1.6")]}


def environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAGENT_")}
    env.update({"REVAGENT_CONFIG": str(home / "absent.toml"), "REVAGENT_DATA_DIR": str(home / "data")})
    return env


async def one(home: Path, hours: float, model: str | None, env: dict[str, str]) -> dict[str, Any]:
    spec = ReplaySpec(data="synthetic:7", out=home / (model or "offline"), hours=hours, model=model,
                      seeds=Seeds(SEEDS))
    report, log = await run_and_report(Replay(spec, environ=env))
    t = timing(log)
    turns = sum(sum(v.values()) for v in report["alert_turns"].values())
    return {**t, "alert_turns": turns, "turn_wall_ms_each": round(1000 * log.turn_wall_s / log.turns, 1)
            if log.turns else None, "trades": report["summary"]["trades"]}


async def main(quick: bool) -> dict[str, Any]:
    from tests.fakes.anthropic_server import FakeAnthropic, reply, text

    hours = 2.0 if quick else 24.0
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        home = Path(tmp)
        env = environ(home)
        offline = await one(home, hours, None, env)
        async with FakeAnthropic() as fake:
            fake.script(*[lambda body: reply(text("Holding: the range is intact."))] * 5000)
            env_model = {**env, "REVAGENT_LLM__BASE_URL": fake.base_url, "REVAGENT_LLM__FALLBACK": "",
                         "ANTHROPIC_API_KEY": "bench-key"}
            scripted = await one(home, hours, "claude-sonnet-4-6", env_model)
    load = os.getloadavg()
    return {"market_hours": hours, "watcher_pairs": len(SEEDS["watchers"]),
            "offline": offline, "scripted_instant_model": scripted,
            "day_wall_s_offline": round(offline["wall_s"] * 24 / hours, 1),
            "load_average_1m_at_end": round(load[0], 2)}


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    logging.basicConfig(level=logging.ERROR)
    write_results("replay_bench", asyncio.run(main(args.quick)), quick=args.quick)
