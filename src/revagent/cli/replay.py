"""`revagent replay`: run the whole agent through a market in market time and write a report (issue 19).

    revagent replay --data synthetic:7 --hours 24 [--seeds FILE] [--model M ...] [--speed max|10x]
                    [--step 1m] [--out DIR] [--json]

- `--data synthetic:SEED` (a seeded walk) or a file of ticks or candles (CSV or JSON: time ms, coin,
  price/close, e.g. Hyperliquid `candleSnapshot` rows with `t`, `s`, `c`); with a file the replay
  starts at its first timestamp and runs to its end unless `--hours` is given.
- no `--model`: the offline policy. `--model A --model B`: one run per model and one with the offline
  policy as the baseline, then `comparison.md` side by side.
- `--out DIR` (default `./replay-out`): per run `report.json`, `report.md`, `equity.png`, `timing.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, command, print_json, say


@command
async def replay(
    data: Annotated[str, typer.Option("--data", help="synthetic:SEED, or a file of ticks or candles.")],
    hours: Annotated[float | None, typer.Option("--hours", min=0.0167, max=24 * 31,
                                                help="Market hours to replay (default 24; a file: to its end).")]
    = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="A model to run (repeat for several; "
                                                                    "none: the offline policy).")] = None,
    seeds: Annotated[Path | None, typer.Option("--seeds", help="Notes, watchers and time alerts to start "
                                                               "with (JSON or TOML).")] = None,
    speed: Annotated[str, typer.Option("--speed", help="max, or Nx market seconds per wall second.")] = "max",
    step: Annotated[str, typer.Option("--step", help="Market time per step (1m).")] = "1m",
    out: Annotated[Path, typer.Option("--out", help="Report directory.")] = Path("replay-out"),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay a market through the whole agent (alerts, turns, risk, gateway) and report the result."""
    from revagent.errors import UsageError
    from revagent.models import parse_duration
    from revagent.replay.driver import Replay, ReplaySpec, parse_data
    from revagent.replay.report import comparison, run_and_report, timing
    from revagent.replay.seeds import Seeds

    parse_data(data)
    if speed == "max":
        rate = None
    else:
        try:
            rate = float(speed.removesuffix("x"))
        except ValueError:
            raise UsageError(f"--speed {speed}: use max or a factor such as 60x") from None
        if rate <= 0:
            raise UsageError("--speed: the factor must be positive")
    try:
        step_td = parse_duration(step)
    except ValueError as exc:
        raise UsageError(f"--step: {exc}") from None
    if step_td.total_seconds() < 1:
        raise UsageError("--step: at least 1s")
    seeded = Seeds.load(seeds) if seeds is not None else None
    models: list[str | None] = [*model, None] if model else [None]
    if data.startswith("synthetic:") and hours is None:
        hours = 24.0
    reports = []
    summary = []
    for m in models:
        name = m or "offline"
        spec = ReplaySpec(data=data, out=out / name if len(models) > 1 else out, hours=hours, model=m,
                          seeds=seeded, speed=rate, step=step_td)
        if not json_out:
            say(f"replaying {data} with {name} ...")
        report, log = await run_and_report(Replay(spec, config_path=config))
        reports.append(report)
        summary.append({"run": name, "out": str(spec.out), **report["summary"], "timing": timing(log)})
        if not json_out:
            s = report["summary"]
            say(f"{name}: {s['trades']} trades, equity {s['start_equity']} -> {s['end_equity']}, max drawdown "
                f"{s['max_drawdown_usd']}; {timing(log)['market_minutes_per_wall_s']} market min/s; "
                f"report in {spec.out / 'report.md'}")
    if len(reports) > 1:
        (out / "comparison.md").write_text(comparison(reports), encoding="utf-8")
        if not json_out:
            say(f"comparison in {out / 'comparison.md'}")
    if json_out:
        print_json({"runs": summary})
