"""The replay's report (issue 19.3), from the run's own ledger: the fills, funding, plans and journal
folded by `sync.trades.build_trades` (the code behind `revagent ledger`), the equity the venue held at
each step, the alert queue's history, and the model usage the turns published.

`report.json` is deterministic for the same data, seed, seeds file and model answers (issue 19.4):
only market times, no wall times; ids the run generated at random (trade ids, tool-call ids) are
replaced by aliases in the order the trades opened (`T1`, `T2`, ...; `C1`, ...); keys sorted.
`report.md` adds the equity and drawdown chart (`equity.png`, matplotlib, Agg) and the trades table.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from revagent.replay.driver import Replay, RunLog
from revagent.sync.trades import Trade

ZERO = Decimal(0)
CENT = Decimal("0.01")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _money(x: Decimal | None) -> str | None:
    return None if x is None else str(x.quantize(CENT))


def _r(x: Decimal | None) -> str | None:
    return None if x is None else str(x.quantize(Decimal("0.001")))


async def ledger_trades(replay: Replay) -> list[Trade]:
    """The run's trades as `revagent ledger` shows them (the same store reads and the same fold)."""
    from revagent.store.ledger import LedgerStore
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.sync.trades import build_trades

    assert replay.session is not None
    store = replay.session.store
    ledger = LedgerStore(store.redis, store.keys)
    fills, funding = await ledger.fills(), await ledger.funding()
    plans = await TradePlans(store.redis, store.keys).all()
    journal = await OrderJournal(store.redis, store.keys).all()
    trades = build_trades(fills, funding, plans, journal).trades()
    return sorted(trades, key=lambda t: (t.opened_at, t.market, t.trade_id))


def drawdowns(equity: Sequence[tuple[int, Decimal]]) -> list[tuple[int, Decimal, Decimal]]:
    """(ms, drawdown USD, drawdown fraction of the peak) at each point."""
    out = []
    peak = ZERO
    for ms, value in equity:
        peak = max(peak, value)
        dd = peak - value
        out.append((ms, dd, dd / peak if peak > 0 else ZERO))
    return out


def statistics(trades: Sequence[Trade], equity: Sequence[tuple[int, Decimal]]) -> dict[str, Any]:
    closed = [t for t in trades if t.status == "closed"]
    wins = [t for t in closed if t.net_pnl > 0]
    losses = [t for t in closed if t.net_pnl <= 0]
    rs = [t.r_multiple for t in closed if t.r_multiple is not None]
    gross_win = sum((t.net_pnl for t in wins), ZERO)
    gross_loss = -sum((t.net_pnl for t in losses), ZERO)
    dd = drawdowns(equity)
    worst = max(dd, key=lambda d: (d[1], -d[0])) if dd else (0, ZERO, ZERO)
    start, end = (equity[0][1], equity[-1][1]) if equity else (ZERO, ZERO)
    return {
        "start_equity": _money(start), "end_equity": _money(end),
        "return_pct": str(((end - start) / start * 100).quantize(Decimal("0.001"))) if start else None,
        "trades": len(trades), "closed": len(closed), "open": len(trades) - len(closed),
        "wins": len(wins), "losses": len(losses),
        "win_rate": str((Decimal(len(wins)) / len(closed)).quantize(Decimal("0.001"))) if closed else None,
        "average_r": _r(sum(rs, ZERO) / len(rs)) if rs else None,
        "expectancy_usd": _money(sum((t.net_pnl for t in closed), ZERO) / len(closed)) if closed else None,
        "profit_factor": (str((gross_win / gross_loss).quantize(Decimal("0.001"))) if gross_loss > 0
                          else None),
        "net_pnl": _money(sum((t.net_pnl for t in trades), ZERO)),
        "fees": _money(sum((t.fees for t in trades), ZERO)),
        "funding": _money(sum((t.funding for t in trades), ZERO)),
        "max_drawdown_usd": _money(worst[1]),
        "max_drawdown_pct": str((worst[2] * 100).quantize(Decimal("0.001"))),
        "max_drawdown_at": iso(worst[0]) if dd else None,
    }


def _trade_row(t: Trade, alias: str, calls: dict[str, str]) -> dict[str, Any]:
    call = t.tool_call_id
    if call is not None:
        call = calls.setdefault(call, f"C{len(calls) + 1}")
    return {
        "id": alias, "market": t.market, "side": t.side, "status": t.status, "complete": t.complete,
        "opened_at": t.opened_at.isoformat().replace("+00:00", "Z"),
        "closed_at": t.closed_at.isoformat().replace("+00:00", "Z") if t.closed_at else None,
        "entry_vwap": str(t.entry_vwap) if t.entry_vwap is not None else None,
        "exit_vwap": str(t.exit_vwap) if t.exit_vwap is not None else None,
        "size": str(t.size), "fees": str(t.fees), "funding": str(t.funding),
        "gross_pnl": str(t.gross_pnl), "net_pnl": str(t.net_pnl),
        "risk_usd": str(t.risk_usd) if t.risk_usd is not None else None,
        "r_multiple": str(t.r_multiple) if t.r_multiple is not None else None,
        "holding_s": t.holding_s, "fills": t.fills,
        "thread_id": t.thread_id, "tool_call": call,
        "plan": None if t.plan is None else {
            "stop_px": str(t.plan.stop_px) if t.plan.stop_px is not None else None,
            "target_px": str(t.plan.target_px) if t.plan.target_px is not None else None,
            "conviction": t.plan.conviction, "origin": t.plan.origin, "rationale": t.plan.rationale},
    }


def tokens_by_model(usage: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "input_tokens": 0, "output_tokens": 0,
                                                          "cache_read_input_tokens": 0,
                                                          "cache_creation_input_tokens": 0, "cost_usd": "0"})
    for u in usage:
        row = out[str(u.get("model") or "?")]
        row["calls"] += 1
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            row[key] += int(u.get(key) or 0)
        cost = u.get("cost_usd")
        if cost not in (None, "?"):
            row["cost_usd"] = str(Decimal(row["cost_usd"]) + Decimal(str(cost)))
    return dict(sorted(out.items()))


async def alert_turns(replay: Replay) -> dict[str, dict[str, int]]:
    """Alert turns by kind and outcome, from the run's alert queue history."""
    assert replay.session is not None and replay.session.alerts is not None
    history = await replay.session.alerts.queue.history(count=100_000)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for h in history:
        counts[h["event"]["kind"]][h["status"]] += 1
    return {kind: dict(sorted(c.items())) for kind, c in sorted(counts.items())}


async def build_report(replay: Replay) -> dict[str, Any]:
    log: RunLog = replay.log
    spec = replay.spec
    trades = await ledger_trades(replay)
    aliases = {t.trade_id: f"T{i}" for i, t in enumerate(trades, 1)}
    calls: dict[str, str] = {}
    rows = [_trade_row(t, aliases[t.trade_id], calls) for t in trades]
    report: dict[str, Any] = {
        "run": {"name": spec.name, "data": spec.data if spec.data.startswith("synthetic:") else Path(spec.data).name,
                "model": spec.model or "offline", "start": iso(log.start_ms), "end": iso(log.end_ms),
                "step_s": spec.step.total_seconds(), "ticks_per_step": spec.ticks_per_step, "steps": log.steps,
                "seeded": spec.seeds is not None},
        "summary": statistics(trades, log.equity),
        "trades": rows,
        "equity": [[iso(ms), str(v)] for ms, v in log.equity],
        "alert_turns": await alert_turns(replay),
        "risk_states": [{**r, "at": iso(r["at"])} for r in log.risk_states],
        "tokens": tokens_by_model(log.usage),
    }
    text = json.dumps(report, sort_keys=True, indent=1)
    for raw, alias in sorted(aliases.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(raw, alias)  # thread ids and alert ids name the trade too
    result: dict[str, Any] = json.loads(text)
    return result


def timing(log: RunLog) -> dict[str, Any]:
    """Wall-clock figures of a run (not in report.json: they differ from run to run)."""
    market_min = (log.end_ms - log.start_ms) / 60_000
    return {"wall_s": round(log.wall_s, 3), "market_minutes": market_min,
            "market_minutes_per_wall_s": round(market_min / log.wall_s, 1) if log.wall_s else None,
            "steps": log.steps, "turns": log.turns, "turn_wall_s": round(log.turn_wall_s, 3)}


def write_report(report: dict[str, Any], out: Path, log: RunLog | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    if log is not None:
        (out / "timing.json").write_text(json.dumps(timing(log), sort_keys=True, indent=1) + "\n")
    chart = _chart(report, out / "equity.png")
    (out / "report.md").write_text(markdown(report, chart.name if chart else None), encoding="utf-8")
    return out / "report.json"


def _chart(report: dict[str, Any], path: Path) -> Path | None:
    if not report["equity"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t, _ in report["equity"]]
    values = [float(v) for _, v in report["equity"]]
    peak, dd = 0.0, []
    for v in values:
        peak = max(peak, v)
        dd.append(v - peak)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 5), height_ratios=(3, 1))
    top.plot(times, values, linewidth=1)
    top.set_ylabel("equity (USD)")
    top.set_title(f"{report['run']['name']}: {report['run']['data']}")
    bottom.fill_between(times, dd, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def markdown(report: dict[str, Any], chart: str | None) -> str:
    run, s = report["run"], report["summary"]
    lines = [f"# Replay: {run['name']}", "",
             f"{run['data']}, {run['start']} to {run['end']}, model {run['model']}, {run['steps']} steps of "
             f"{run['step_s']:.0f} s.", "",
             "| equity | return | trades | win rate | avg R | expectancy | profit factor | max drawdown | fees |"
             " funding |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| {s['start_equity']} -> {s['end_equity']} | {s['return_pct']}% | {s['trades']} | {s['win_rate']} | "
             f"{s['average_r']} | {s['expectancy_usd']} | {s['profit_factor']} | {s['max_drawdown_usd']} "
             f"({s['max_drawdown_pct']}%) | {s['fees']} | {s['funding']} |", ""]
    if chart:
        lines += [f"![equity and drawdown]({chart})", ""]
    lines += ["## Trades", "", "| id | market | side | opened | closed | entry | exit | net | R | fees | funding |"
              " thread |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in report["trades"]:
        lines.append(f"| {t['id']} | {t['market']} | {t['side']} | {t['opened_at']} | {t['closed_at'] or 'open'} | "
                     f"{t['entry_vwap']} | {t['exit_vwap'] or '-'} | {t['net_pnl']} | {t['r_multiple'] or '-'} | "
                     f"{t['fees']} | {t['funding']} | {t['thread_id'] or '-'} |")
    lines += ["", "## Alert turns", "", "| kind | outcomes |", "|---|---|"]
    for kind, outcomes in report["alert_turns"].items():
        lines.append(f"| {kind} | {', '.join(f'{k} {v}' for k, v in outcomes.items())} |")
    lines += ["", "## Tokens", "", "| model | calls | input | output | cache read | cost USD |",
              "|---|---|---|---|---|---|"]
    for model, u in report["tokens"].items():
        lines.append(f"| {model} | {u['calls']} | {u['input_tokens']} | {u['output_tokens']} | "
                     f"{u['cache_read_input_tokens']} | {u['cost_usd']} |")
    if report["risk_states"]:
        lines += ["", "## Lockouts and halts", ""]
        lines += [f"- {r['at']}: {r['state']} (x{r['multiplier']}) {r['reason']}" for r in report["risk_states"]]
    return "\n".join(lines) + "\n"


def comparison(reports: Sequence[dict[str, Any]]) -> str:
    """`comparison.md`: the runs side by side."""
    keys = ("end_equity", "return_pct", "trades", "win_rate", "average_r", "expectancy_usd", "profit_factor",
            "max_drawdown_usd", "fees")
    lines = ["# Replay comparison", "", "| run | " + " | ".join(keys) + " | cost USD |",
             "|---|" + "---|" * (len(keys) + 1)]
    for r in reports:
        cost = sum((Decimal(u["cost_usd"]) for u in r["tokens"].values()), ZERO)
        lines.append(f"| {r['run']['name']} | " + " | ".join(str(r["summary"][k]) for k in keys) + f" | {cost} |")
    return "\n".join(lines) + "\n"


async def run_and_report(replay: Replay) -> tuple[dict[str, Any], RunLog]:
    """Run one replay, write its report into its `out` directory, close everything."""
    try:
        log = await replay.run()
        report = await build_report(replay)
    finally:
        await replay.aclose()
    await asyncio.to_thread(write_report, report, replay.spec.out, log)  # matplotlib: off the loop
    return report, log
