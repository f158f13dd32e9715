"""`revagent ledger`, `revagent stats`, `revagent sync`: the trade ledger, its statistics, and one
reconciliation with the exchange.

- `ledger [--since 7d] [--json | --csv]`: trades with R multiples (read from the store: works with or
  without a running session); `ledger events [--kind correction]`: sync's event log (corrections with
  their reasons, drift, reconciliation steps, trades closed);
- `stats [--since 30d] [--json]` (mounted as `stats_command`): closed-trade statistics;
- `sync [--json]` (mounted as `sync_command`): one reconciliation, run by the wallet's owner when one
  runs (session command `sync.reconcile`), else by a short-lived session; prints its phases and
  corrections.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, WalletOpt, command, load, print_json, say, session_store, table

if TYPE_CHECKING:
    from revagent.sync.trades import Trade

app = typer.Typer(help="The trade ledger: every trade with its PnL and R multiple.", invoke_without_command=True)

SinceOpt = Annotated[str | None, typer.Option("--since", help="Only trades opened or closed in this window (7d, 24h).")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV (for a spreadsheet or a tax tool).")]

CSV_FIELDS = ["trade_id", "market", "side", "status", "complete", "opened_at", "closed_at", "entry_qty", "entry_vwap",
              "exit_qty", "exit_vwap", "size", "fees", "funding", "gross_pnl", "net_pnl", "pnl_source", "risk_usd",
              "r_multiple", "holding_s", "thread_id", "tool_call_id", "fills", "incomplete_reason", "thesis",
              "invalidation"]
LEDGER_COLUMNS = ["opened", "market", "side", "status", "size", "entry", "exit", "gross", "fees", "funding", "net",
                  "R", "held", "thesis"]
THESIS_CHARS = 40


def ledger_rows(trades: list[Trade]) -> list[list[str]]:
    """The rows of `revagent ledger`'s table (LEDGER_COLUMNS), one per trade."""
    def thesis(t: Trade) -> str:
        text = t.plan.thesis if t.plan is not None else ""
        return "-" if not text else text if len(text) <= THESIS_CHARS else text[:THESIS_CHARS - 3] + "..."

    return [[t.opened_at.strftime("%Y-%m-%d %H:%M"), t.market, t.side, t.status + ("" if t.complete else "*"),
             str(t.size), _money(t.entry_vwap, "0.0001"), _money(t.exit_vwap, "0.0001"), _money(t.gross_pnl),
             _money(t.fees), _money(t.funding), _money(t.net_pnl), _money(t.r_multiple),
             f"{t.holding_s / 3600:.1f}h" if t.holding_s is not None else "-", thesis(t)] for t in trades]


async def _trades(cfg: Any, wallet: str | None, since: str | None) -> list[Trade]:
    from revagent.errors import UsageError
    from revagent.models import parse_duration, utc_now
    from revagent.store.ledger import LedgerStore
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.sync.trades import build_trades

    window = None
    if since is not None:
        try:
            window = parse_duration(since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        ledger = LedgerStore(store.redis, store.keys)
        fills, funding = await ledger.fills(), await ledger.funding()
        plans = await TradePlans(store.redis, store.keys).all()
        journal = await OrderJournal(store.redis, store.keys).all()
    trades = build_trades(fills, funding, plans, journal).trades()
    if window is not None:
        cutoff = utc_now() - window
        trades = [t for t in trades if t.opened_at >= cutoff or (t.closed_at or t.opened_at) >= cutoff
                  or t.status == "open"]
    return trades


def _money(value: Any, places: str = "0.01") -> str:
    from decimal import Decimal

    return "-" if value is None else str(Decimal(value).quantize(Decimal(places)))


def _csv_value(value: Any) -> str:
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@app.callback()
@command
async def ledger(
    ctx: typer.Context,
    since: SinceOpt = None,
    csv_out: CsvOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Every trade: entry and exit VWAP, size, fees, funding, gross and net PnL, R multiple, holding time."""
    if ctx.invoked_subcommand is not None:
        return
    import csv

    cfg = load(config)
    trades = await _trades(cfg, wallet, since)
    if json_out:
        print_json({"trades": [t.model_dump(mode="json") for t in trades]})
        return
    if csv_out:
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_FIELDS)
        for t in trades:
            doc = t.model_dump()
            doc.update({"thesis": t.plan.thesis if t.plan else "",
                        "invalidation": t.plan.invalidation if t.plan else ""})
            writer.writerow([_csv_value(doc[f]) for f in CSV_FIELDS])
        return
    if not trades:
        say("No trades recorded yet.")
        return
    table("Trades", LEDGER_COLUMNS, ledger_rows(trades))
    if any(not t.complete for t in trades):
        say("* incomplete: the trade's opening (or part of it) is not in the recorded fills; its PnL is the "
            "exchange's closedPnl and no entry price is shown.")


@app.command("events")
@command
async def events(
    kind: Annotated[str | None, typer.Option("--kind", help="correction, drift, plan, journal, ...")] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=10_000)] = 50,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Sync's event log: every correction with its reason, drift found, plans and orders settled."""
    from revagent.store.ledger import LedgerStore

    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        found = await LedgerStore(store.redis, store.keys).events(count=count, kind=kind)
    if json_out:
        print_json({"events": [e.model_dump(mode="json") for e in found]})
        return
    if not found:
        say("No events.")
        return
    table("Sync events", ["at", "kind", "market", "reason"],
          [[e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.market or "-", e.reason] for e in found])


@command
async def stats_command(
    since: SinceOpt = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Closed-trade statistics: win rate, average R, expectancy, profit factor, max drawdown."""
    from revagent.sync.stats import trade_stats

    cfg = load(config)
    stats = trade_stats(await _trades(cfg, wallet, since))
    if json_out:
        print_json(stats)
        return
    rate = "-" if stats.win_rate is None else f"{stats.win_rate * 100:.1f}%"
    pf = "-" if stats.profit_factor is None else f"{stats.profit_factor:.2f}"
    rows = [["closed trades", str(stats.trades)], ["wins / losses", f"{stats.wins} / {stats.losses}"],
            ["win rate", rate], ["average R", _money(stats.average_r)],
            ["expectancy (USD / trade)", _money(stats.expectancy_usd)], ["profit factor", pf],
            ["max drawdown (USD)", _money(stats.max_drawdown_usd)], ["net PnL (USD)", _money(stats.net_pnl)],
            ["fees (USD)", _money(stats.fees)], ["funding (USD)", _money(stats.funding)],
            ["open trades", str(stats.open_trades)], ["incomplete (not counted)", str(stats.excluded_incomplete)]]
    table("Closed-trade statistics", ["", "value"], rows)


@command
async def sync_command(
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One reconciliation with the exchange: prints its phases and the corrections it made."""
    from revagent.runtime import remote

    cfg = load(config)
    phases: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    async for entry in remote.call(cfg, cfg.wallet(wallet), "sync.reconcile", {}, timeout=120.0):
        if entry["type"] == "phase":
            phases.append(entry["data"])
            if not json_out:
                reason = entry["data"].get("reason") or ""
                say(f"[bold]{entry['data']['phase']}[/bold]" + (f"  {reason}" if reason else ""))
        elif entry["type"] == "done":
            report = entry["data"] or {}
    if json_out:
        print_json({**report, "phase_log": phases})
        return
    for c in report.get("corrections", []):
        say(f"  {c.get('kind')}: {c.get('reason')}")
    say(f"{report.get('new_fills', 0)} new fill(s), {report.get('new_funding', 0)} funding payment(s), "
        f"{report.get('new_transfers', 0)} transfer(s) recorded in {report.get('seconds', 0)} s; "
        f"equity {report.get('equity', '-')}")
