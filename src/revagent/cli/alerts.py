"""`revagent alerts ...`: time alerts (add, rm), and every kind of alert with the queue (list, retry, history)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer

from revagent.cli.common import (
    ConfigOpt,
    JsonOpt,
    WalletOpt,
    command,
    load,
    print_json,
    remove_record,
    say,
    session_store,
    table,
)

app = typer.Typer(help="Alerts: time alerts, and every alert with the queue (list, retry, history).",
                  no_args_is_help=True)


@app.command("add")
@command
async def add(
    prompt: Annotated[str, typer.Argument(help="What the agent should do when the alert fires.")],
    at: Annotated[str | None, typer.Option("--at", help="UTC time, ISO 8601 (2026-11-24T16:00Z).")] = None,
    in_: Annotated[str | None, typer.Option("--in", help="From now, e.g. 30m or 2h.")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Repeat interval, e.g. 1h (at least 1m).")] = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add a time alert (--at or --in)."""
    from revagent.actions import AddAlert
    from revagent.models import utc_now

    alert = AddAlert.parse(prompt=prompt, at=at, in_=in_, every=every).resolve(None).build(utc_now())
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        await store.time_alerts.put(alert)
    if json_out:
        print_json(alert)
    else:
        from revagent.format import duration

        every_text = f", every {duration(alert.every)}" if alert.every else ""
        say(f"added time alert [bold]{alert.id}[/bold] at {alert.fire_at:%Y-%m-%d %H:%M:%S} UTC{every_text}")


@app.command("list")
@command
async def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include fired, cancelled and expired alerts.")] = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List every alert: time alerts, watcher pairs, trade-management alerts, and the queue."""
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        doc = await _collect(store, include_past=all_, fraction=cfg.alerts.early_warning_fraction)
    if json_out:
        print_json(doc)
        return
    _render(doc)


@app.command("retry")
@command
async def retry(
    alert_ref: Annotated[str, typer.Argument(metavar="ID", help="A failed alert's trigger key (or its alert id).")],
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Requeue a failed (parked) alert with a fresh attempt count."""
    from revagent.errors import NotFoundError, UsageError
    from revagent.store.alert_queue import AlertQueue

    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        queue = AlertQueue(store.redis, store.keys)
        failures = await queue.failures()
        if alert_ref in failures:
            key = alert_ref
        else:
            matches = [k for k, doc in failures.items() if doc["event"]["alert_id"] == alert_ref]
            if len(matches) > 1:
                raise UsageError(f"{alert_ref} has {len(matches)} failed alerts; give one trigger key: "
                                 + ", ".join(sorted(matches)))
            if not matches:
                raise NotFoundError(f"no failed alert {alert_ref!r} (see revagent alerts list)")
            key = matches[0]
        if not await queue.retry(key):
            raise NotFoundError(f"no failed alert {key!r} (see revagent alerts list)")
    if json_out:
        print_json({"retried": key})
    else:
        say(f"requeued {key}")


@app.command("history")
@command
async def history(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=5000, help="How many entries.")] = 50,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Alerts that ran: finished or failed, newest first."""
    from revagent.store.alert_queue import AlertQueue

    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        rows = _history_rows(await AlertQueue(store.redis, store.keys).history(limit))
    if json_out:
        print_json({"history": rows})
        return
    if not rows:
        say("no alert has run yet")
        return
    table("Alert history", ["at (UTC)", "status", "kind", "trigger key", "attempt", "summary / error"],
          [[r["at"][:19].replace("T", " "), r["status"], r["kind"], r["trigger_key"], str(r["attempt"]),
            r["summary"] or r["error"] or ""] for r in rows])


@app.command("rm")
@command
async def rm(
    alert_id: Annotated[str, typer.Argument(metavar="ID", help="The alert's id.")],
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Remove a time alert."""
    await remove_record(config, wallet, "time_alerts", alert_id, "time alert", json_out)


# --- views (imports stay inside the functions: `revagent --help` stays fast) -----------------------


def _iso(epoch: float | None) -> str | None:
    from datetime import UTC, datetime

    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


async def _collect(store: Any, *, include_past: bool, fraction: Decimal) -> dict[str, Any]:
    """Every alert of the session and the queue, as one JSON-ready document."""
    from revagent.models import TimeAlertStatus
    from revagent.store.alert_queue import AlertQueue
    from revagent.store.orders import TradePlans

    alerts = await store.time_alerts.all()
    pairs = await store.watchers.all()
    if not include_past:
        alerts = [a for a in alerts if a.status is TimeAlertStatus.SCHEDULED]
        pairs = [p for p in pairs if p.active]
    trades = await TradePlans(store.redis, store.keys).open_trades()
    entries = await _open_entries(store) if trades else {}
    queue = AlertQueue(store.redis, store.keys)
    pending = await queue.pending()
    running = await queue.running()
    failed = await queue.failures()
    return {
        "time_alerts": [a.model_dump(mode="json") for a in alerts],
        "watchers": [p.model_dump(mode="json") for p in pairs],
        "trade_alerts": [row for t in trades for row in _trade_rows(t, entries.get(t.market), fraction)],
        "queue": {
            "pending": [{"entry_id": q.entry_id, "band": q.band, "trigger_key": q.event.trigger_key,
                         "alert_id": q.event.alert_id, "kind": q.event.kind.value, "attempt": q.attempt,
                         "fired_at": q.event.fired_at.isoformat(), "late": q.event.late,
                         "price": None if q.event.price is None else str(q.event.price),
                         "running": q.event.trigger_key in running}
                        for q in pending],
            "running": [{"trigger_key": key, "alert_id": doc.get("alert_id"), "kind": doc.get("kind"),
                         "thread_id": doc.get("thread_id"), "attempt": doc.get("attempt"),
                         "started_at": _iso(doc.get("started_at"))} for key, doc in sorted(running.items())],
            "failed": [{"trigger_key": key, "alert_id": doc["event"]["alert_id"], "kind": doc["event"]["kind"],
                        "attempts": doc.get("attempts"), "error": doc.get("error"),
                        "failed_at": _iso(doc.get("failed_at"))} for key, doc in sorted(failed.items())],
        },
    }


async def _open_entries(store: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """Market -> (entry VWAP, size) of each open trade, from the recorded fills (no exchange call)."""
    from revagent.store.ledger import LedgerStore
    from revagent.sync.trades import build_trades

    book = build_trades(await LedgerStore(store.redis, store.keys).fills())
    return {m: (t.entry_vwap, abs(t.position)) for m, t in book.open_trades().items() if t.entry_vwap}


def _trade_rows(plan: Any, entry: tuple[Decimal, Decimal] | None, fraction: Decimal) -> list[dict[str, Any]]:
    """The trade-management alerts of an open trade: the stop check, and the early warning and profit
    target at the levels the running session arms (from the recorded entry; the liquidation warning
    needs the exchange's liquidation price and is shown by the session, not here)."""
    from revagent.alerts.trade_alerts import trade_levels
    from revagent.alerts.trade_book import managed_trade
    from revagent.store.alert_events import AlertKind

    base = {"trade_id": plan.trade_id, "market": plan.market, "side": plan.side.value}
    levels: dict[str, Decimal] = {}
    if entry is not None:
        trade = managed_trade(plan, entry=entry[0], size=entry[1])
        if trade is not None:
            levels = {lv.kind.value: lv.level for lv in trade_levels(trade, early_warning_fraction=fraction)}
    early = levels.get(AlertKind.EARLY_WARNING.value)
    rows = [{**base, "kind": "stop_loss_verification",
             "level": None if plan.stop_px is None else str(plan.stop_px), "generation": plan.stop_generation,
             "detail": "checks the exchange-side stop; repaired at once when missing"},
            {**base, "kind": "early_warning", "level": None if early is None else str(early),
             "generation": plan.stop_generation,
             "detail": f"{fraction:%} of the way from the entry {entry[0]} to the stop" if entry is not None
             else "part of the way from the entry to the stop (no recorded entry yet)"}]
    if plan.target_px is not None:
        rows.append({**base, "kind": "profit_target", "level": str(plan.target_px),
                     "generation": plan.target_generation, "detail": "fires at the target"})
    return rows


def _render(doc: dict[str, Any]) -> None:
    from datetime import datetime, timedelta

    from revagent.models import format_duration, utc_now

    q = doc["queue"]
    if not any([doc["time_alerts"], doc["watchers"], doc["trade_alerts"], q["pending"], q["running"], q["failed"]]):
        say("no alerts (--all shows past ones)")
        return
    now = utc_now()
    if doc["time_alerts"]:
        rows = []
        for a in doc["time_alerts"]:
            fire_at = datetime.fromisoformat(a["fire_at"])
            left = format_duration(timedelta(seconds=int((fire_at - now).total_seconds()))) if fire_at > now else "due"
            rows.append([a["id"], f"{fire_at:%Y-%m-%d %H:%M}", left, a["every"] or "-", a["status"], a["prompt"]])
        table("Time alerts", ["id", "fires (UTC)", "in", "every", "status", "prompt"], rows)
    if doc["watchers"]:
        def leg(lg: dict[str, Any] | None) -> str:
            if lg is None:
                return "-"
            return f"{lg['level']} {lg['status']}" + (f" — {lg['thesis']}" if lg.get("thesis") else "")

        table("Watchers", ["id", "market", "above", "below", "expires"],
              [[p["id"], p["market"], leg(p["upper"]), leg(p["lower"]),
                (p["expires_at"] or "never")[:16].replace("T", " ")] for p in doc["watchers"]])
    if doc["trade_alerts"]:
        table("Trade management", ["trade", "market", "side", "alert", "level", "detail"],
              [[r["trade_id"], r["market"], r["side"], r["kind"], r["level"] or "-", r["detail"]]
               for r in doc["trade_alerts"]])
    if q["pending"] or q["running"] or q["failed"]:
        rows = [[e["trigger_key"], e["kind"], "running" if e["running"] else "pending", str(e["attempt"]),
                 e["fired_at"][:19].replace("T", " ")] for e in q["pending"]]
        listed = {e["trigger_key"] for e in q["pending"]}
        rows += [[r["trigger_key"], r["kind"] or "", "running", str(r["attempt"]), (r["started_at"] or "")[:19]]
                 for r in q["running"] if r["trigger_key"] not in listed]
        rows += [[f["trigger_key"], f["kind"], "failed: " + (f["error"] or "")[:60], str(f["attempts"]),
                  (f["failed_at"] or "")[:19].replace("T", " ")] for f in q["failed"]]
        table("Queue", ["trigger key", "kind", "state", "attempt", "since (UTC)"], rows)


def _history_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": e["id"], "status": e["status"], "trigger_key": e["trigger_key"],
             "alert_id": e["event"].get("alert_id"), "kind": e["event"].get("kind"), "attempt": e["attempt"],
             "at": _iso(e["at"]), "fired_at": e["event"].get("fired_at"), "late": e["event"].get("late", False),
             "thread_id": e["extra"].get("thread_id"), "summary": e["extra"].get("summary"),
             "error": e["extra"].get("error")} for e in entries]
