"""`revagent risk ...`: the risk settings, the account's risk usage, and the kill switch."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, WalletOpt, command, confirm, load, print_json, say, table
from revagent.cli.trade import YesOpt, call, show_verdict

app = typer.Typer(help="Risk settings, usage, drawdown state, and the kill switch.", no_args_is_help=True)


@app.command("show")
@command
async def show(wallet: WalletOpt = None, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Settings (with where each value comes from), effective caps, usage per market, drawdown, state."""
    from revagent.cli import reads

    cfg = load(config)
    # a paper wallet nobody owns: read the store and the venue directly (no session)
    doc = await reads.risk_show(cfg, cfg.wallet(wallet)) or await call(cfg, wallet, "risk.show", {})
    if json_out:
        print_json(doc)
        return
    st = doc["status"]
    from revagent import format as fmt

    say(f"[bold]{st['state'].upper()}[/bold]  multiplier {fmt.ratio(st['multiplier'])}  drawdown "
        f"{fmt.pct(st['drawdown'])}" + (f"  locked until {st['locked_until']}" if st["locked_until"] else "")
        + (f"  ({st['reason']})" if st.get("reason") else ""))
    usage = doc.get("usage")
    if usage:
        _usage_table(usage)
    table("Settings", ["setting", "value", "source"],
          [[k, _setting(v["value"]), v["source"]] for k, v in doc["settings"].items()])


def _setting(value: Any) -> str:
    """A setting as it is typed: numbers without float noise, durations with units, lists joined."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _usage_table(usage: dict[str, Any]) -> None:
    rows = [["TOTAL", _money(usage["total_open_risk_usd"]), _money(usage["portfolio_cap_usd"]), ""]]
    for m in usage["markets"]:
        rows.append([m["market"], _money(m["open_risk_usd"]), _money(m["cap_usd"]),
                     "[red]no stop[/red]" if m["unprotected"] else ""])
    table("Open risk (USD lost at the stops)", ["market", "risk", "cap", ""], rows)


def _money(value: str) -> str:
    from revagent import format as fmt

    return fmt.money(value)


@app.command("set", context_settings={"ignore_unknown_options": True})  # `-1` is a VALUE, not an option
@command
async def set_(
    key: Annotated[str, typer.Argument(help="A risk setting, e.g. max_leverage.")],
    value: Annotated[str, typer.Argument(help="Its new value (validated; a bad value changes nothing).")],
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Override a risk setting for this wallet (stored in Redis; wins until `risk reset`)."""
    cfg = load(config)
    doc = await call(cfg, wallet, "risk.set", {"key": key, "value": value})
    print_json(doc) if json_out else say(f"{doc['key']} = {doc['value']} (runtime)")


@app.command("reset")
@command
async def reset(
    key: Annotated[str, typer.Argument(help="The setting to return to its config value.")],
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Drop a runtime override: the config's value applies again."""
    cfg = load(config)
    doc = await call(cfg, wallet, "risk.reset", {"key": key})
    print_json(doc) if json_out else say(f"{doc['key']} = {doc['value']}")


@app.command("check")
@command
async def check(
    market: Annotated[str, typer.Argument(help="Market, e.g. BTC.")],
    side: Annotated[str, typer.Argument(help="long or short.")],
    stop: Annotated[str, typer.Option("--stop", help="Stop price, or a distance from the mark: 2%.")],
    risk: Annotated[str, typer.Option("--risk", help="USD lost at the stop.")],
    entry: Annotated[str | None, typer.Option(help="Limit entry price; default: market.")] = None,
    target: Annotated[str | None, typer.Option(help="The plan's target.")] = None,
    take_profit: Annotated[str | None, typer.Option("--take-profit", help="A take-profit order.")] = None,
    leverage: Annotated[str | None, typer.Option(help="Leverage.")] = None,
    isolated: Annotated[bool, typer.Option("--isolated", help="Isolated margin.")] = False,
    conviction: Annotated[int | None, typer.Option(help="Conviction 0-100.")] = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The risk engine's verdict on a trade against the current account, without trading (exit 6 if refused)."""
    from revagent.actions import Open

    action = Open.parse(market=market, side=side, stop=stop, risk=risk, entry=entry, target=target,
                        take_profit=take_profit, leverage=leverage, isolated=isolated, conviction=conviction)
    cfg = load(config)
    verdict = await call(cfg, wallet, "trade.preview", action.channel_args())
    if json_out:
        print_json(verdict)
    else:
        say("[green]approved[/green]" if verdict["approved"] else "[red]refused[/red]")
        show_verdict(verdict)
    if not verdict["approved"]:
        raise typer.Exit(6)


@app.command("halt")
@command
async def halt(yes: YesOpt = False, wallet: WalletOpt = None, json_out: JsonOpt = False,
               config: ConfigOpt = None) -> None:
    """Engage the kill switch: only risk-reducing and protective actions pass until a human resumes."""
    from revagent.actions import Halt

    cfg = load(config)
    doc = await call(cfg, wallet, Halt.command, Halt().channel_args())
    print_json(doc) if json_out else say("[red]HALTED[/red]: new entries are refused until `risk resume --yes`")


@app.command("resume")
@command
async def resume(yes: YesOpt = False, wallet: WalletOpt = None, json_out: JsonOpt = False,
                 config: ConfigOpt = None) -> None:
    """Release the kill switch (a human's decision)."""
    confirm("resume trading?", yes=yes, err=json_out)
    from revagent.actions import Resume

    cfg = load(config)
    doc = await call(cfg, wallet, Resume.command, Resume().channel_args())
    print_json(doc) if json_out else say("trading resumed")


@app.command("unlock")
@command
async def unlock(yes: YesOpt = False, wallet: WalletOpt = None, json_out: JsonOpt = False,
                 config: ConfigOpt = None) -> None:
    """Lift a drawdown lockout now: the peak is re-based and the penalty restarts at its maximum."""
    confirm("lift the lockout?", yes=yes, err=json_out)
    cfg = load(config)
    doc = await call(cfg, wallet, "risk.unlock", {"by": "human"})
    print_json(doc) if json_out else say(f"unlocked; peak re-based to {doc['peak_equity']}")

