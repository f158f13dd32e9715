"""The `revagent` command. Sub-command modules are light at import; heavy work is lazy."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer

from revagent.cli import alerts, ask, ledger, notes, risk, server, trade, tui_cmd, wallet, watchers
from revagent.cli import doctor as doctor_cli
from revagent.cli.common import ConfigOpt, JsonOpt, WalletOpt, command, load, print_json, say

app = typer.Typer(
    name="revagent",
    help="A terminal-first AI trading agent for Hyperliquid perpetuals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and usage errors: rich's help formatting costs ~140 ms a `--help`
)
app.add_typer(notes.app, name="notes")
app.add_typer(watchers.app, name="watchers")
app.add_typer(alerts.app, name="alerts")
app.add_typer(wallet.app, name="wallet")
app.add_typer(server.app, name="server")
app.add_typer(trade.app, name="trade")
app.add_typer(risk.app, name="risk")
app.command("ask")(ask.ask)
app.command("doctor")(doctor_cli.doctor)
app.command("tui")(tui_cmd.tui)
app.add_typer(ledger.app, name="ledger")
app.command("stats")(ledger.stats_command)
app.command("sync")(ledger.sync_command)
app.add_typer(ask.proposals_app, name="proposals")
app.command("positions")(trade.positions)
app.command("orders")(trade.orders)

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
@command
def config_check(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Validate the config file and every wallet in it (exit 4 on any problem)."""
    cfg = load(config)
    wallets = [cfg.wallet(name) for name in cfg.wallet_names()]
    default = cfg.wallet(None)  # what `status` and every command without --wallet resolve (exit 4 if none)
    if json_out:
        print_json({"ok": True, "source": cfg.source, "wallets": [w.name for w in wallets], "default": default.name})
    else:
        say(f"[green]ok[/green] {cfg.source}: {len(wallets)} wallet(s): {', '.join(w.name for w in wallets)}"
            f" (default {default.name})")


@app.command("status")
@command
async def status(wallet: WalletOpt = None, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """The wallet, its network, who owns its session, what it holds, and (paper) where its prices come from."""
    import asyncio

    from revagent.cli.common import session_store
    from revagent.models import TimeAlertStatus, utc_now
    from revagent.risk import status as risk_status
    from revagent.store.lease import current_holder
    from revagent.store.risk import RiskStore

    cfg = load(config)
    w = cfg.wallet(wallet)
    async with session_store(cfg, w) as store:
        holder = await current_holder(store.redis, store.keys)
        meta = await store.meta()
        risk = RiskStore(store.redis, store.keys, w.risk)
        state = await risk.get()
        rs = risk_status(state, utc_now(), await risk.settings())
        doc: dict[str, Any] = {
            "wallet": w.name,
            "network": w.network,
            "session": str(store.sid),
            "owner": None if holder is None else {"role": holder.role, "pid": holder.pid, "host": holder.host,
                                                  "since": holder.since,
                                                  # the owner's start-up phase, as it recorded it ("trading on",
                                                  # ..., "running"); None: not recorded by this owner
                                                  "phase": meta.get("startup_phase")
                                                  if meta.get("startup_pid") == str(holder.pid) else None},
            "risk": {"state": rs.state.value, "multiplier": str(rs.multiplier.quantize(Decimal("0.0001"))),
                     "drawdown_pct": str((rs.drawdown * 100).quantize(Decimal("0.01"))),
                     "equity": str(state.equity) if state.equity is not None else None,
                     "locked_until": rs.locked_until.isoformat() if rs.locked_until else None,
                     "reason": rs.reason},
            "counts": {
                "notes": await store.notes.count(),
                "watchers_armed": sum(p.active for p in await store.watchers.all()),
                "time_alerts_scheduled": sum(
                    a.status is TimeAlertStatus.SCHEDULED for a in await store.time_alerts.all()
                ),
            },
        }
    if w.network == "paper":  # where the paper venue's prices come from (it is not started for this)
        from revagent.venue import paper_price_source, running_paper_venue

        venue = await asyncio.to_thread(running_paper_venue, cfg)
        doc["venue"] = {"url": venue, "prices": await paper_price_source(venue) if venue else None}
    if json_out:
        print_json(doc)
        return
    owner = "none" if holder is None else holder.describe()
    if doc["owner"] is not None and doc["owner"]["phase"]:
        owner += f"  (start-up: {doc['owner']['phase']})"
    r, c = doc["risk"], doc["counts"]
    from revagent import format as fmt

    equity = f"  equity {fmt.money(r['equity'])}" if r["equity"] else ""
    say(f"[bold]{w.name}[/bold]  {w.network.upper()}  {store.sid}\nowner: {owner}\n"
        f"trading: {r['state'].upper()}  multiplier {fmt.ratio(r['multiplier'])}  drawdown "
        f"{r['drawdown_pct']}%{equity}\n"
        f"notes {c['notes']}  watchers armed {c['watchers_armed']}  time alerts {c['time_alerts_scheduled']}")
    if "venue" in doc:
        v = doc["venue"]
        say(f"venue: {v['url']}  {v['prices'] or 'prices: not said'}" if v["url"] else
            "venue: not running (prices: said once a session starts it)")


@app.command("ping")
@command
async def ping(
    wallet: WalletOpt = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the owner's answer.")] = 10.0,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Ask the wallet's session owner to answer (or answer locally when no owner runs)."""
    from revagent.runtime.remote import call_once

    cfg = load(config)
    result, via = await call_once(cfg, cfg.wallet(wallet), "ping", {}, timeout=timeout)
    result = {**result, "via": via}
    if json_out:
        print_json(result)
    else:
        say(f"pong from {result['role']} pid {result['pid']} ({'the owner' if via == 'owner' else 'no owner: local'})")


@app.command("daemon")
@command
async def daemon(
    wallets: Annotated[list[str] | None, typer.Option(
        "--wallet", "-w", help="Wallet name from the config (default: default_wallet). Repeat it to "
        "supervise several wallets, one daemon process each.")] = None,
    all_wallets: Annotated[bool, typer.Option("--all", help="Supervise every configured wallet, one daemon "
                                              "process each (restarted after a crash).")] = False,
    supervised: Annotated[bool, typer.Option("--supervised", hidden=True,
                                             help="Run as a supervisor's child: settings on stdin.")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines instead of plain text.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run the wallet's session headless until SIGTERM or Ctrl-C (with --all or several --wallet: a
    supervisor running one daemon process per wallet)."""
    names = wallets or []
    if all_wallets or len(names) > 1:
        from revagent.runtime.supervisor import run_supervisor, select_wallets

        cfg = load(config)
        code = await run_supervisor(cfg, select_wallets(cfg, names, all_wallets=all_wallets), log_json=log_json)
    else:
        import asyncio
        import os

        from revagent.runtime.daemon import run_daemon

        if supervised:
            from revagent.runtime.supervisor import read_supervised_environ

            # the secrets go into this process's environment table, never into /proc/PID/environ
            os.environ.update(await asyncio.to_thread(read_supervised_environ))
        cfg = load(config)
        code = await run_daemon(cfg, cfg.wallet(names[0] if names else None), log_json=log_json)
    if code:
        raise typer.Exit(code)


def _mount_sim() -> None:
    from revagent.cli import replay, sim

    app.add_typer(sim.app, name="sim")
    app.command("replay")(replay.replay)


_mount_sim()


def only(name: str | None) -> typer.Typer | None:
    """An app holding just the command or group `name` (None when `name` is not one of them).

    Typer builds the click command of every registered function (their signatures and type hints)
    before it dispatches: about 0.1-0.2 s for the whole tree. A one-shot command needs only its own,
    so `run()` hands typer a tree with that one branch; `--help`, a bare `revagent` and an unknown
    name get the whole tree (its listing, its "No such command")."""
    groups = [g for g in app.registered_groups if g.name == name]
    commands = [c for c in app.registered_commands if c.name == name]
    if not groups and not commands:
        return None
    slim = typer.Typer(name=app.info.name, help=app.info.help, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False, rich_markup_mode=None)
    slim.registered_groups = groups
    slim.registered_commands = commands
    slim.callback()(_root)  # a root callback keeps `revagent NAME ...` a group even with one command
    return slim


def _root() -> None:
    """A terminal-first AI trading agent for Hyperliquid perpetuals."""


def run() -> None:
    import os
    import sys

    # revagent uses no pydantic plugin: skip pydantic's scan of every installed distribution's entry
    # points at the first model (about 20 ms of a one-shot command; set the variable to "" to scan)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    (only(sys.argv[1] if len(sys.argv) > 1 else None) or app)()
