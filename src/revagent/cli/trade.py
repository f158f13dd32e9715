"""`revagent trade ...`, `revagent positions`, `revagent orders`: trading from the shell.

Every order goes to the wallet's owner (a running daemon or TUI) through the command channel, or
runs under a one-shot lease when no owner runs; either way it passes the risk engine and the
gateway. Without --yes an order shows its preview and asks first. A refusal exits with code 6, a
command not run (its owner could not start it before its deadline) 7, an outcome still unknown 9.
Typing the same command again while the previous one's outcome is not known reuses its action id,
so it runs once.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, WalletOpt, command, confirm, load, print_json, say

app = typer.Typer(help="Open, close and protect trades (through the risk engine and the gateway).",
                  no_args_is_help=True)

YesOpt = Annotated[bool, typer.Option("--yes", "-y",
                                      help="Do not ask for confirmation (every trading command takes it).")]


async def call(config: Any, wallet: str | None, name: str, args: dict[str, Any], timeout: float = 30.0) -> Any:
    from revagent.runtime.remote import call_once

    result, _via = await call_once(config, config.wallet(wallet), name, args, timeout=timeout)
    return result


def new_action_id() -> str:
    from revagent.store.commands import new_command_id

    return new_command_id()


_FINAL_ERRORS = {2, 3, 4, 6, 7}  # usage, not found, config, refused, not run: nothing is left in flight


async def act(config: Any, wallet: str | None, name: str, args: dict[str, Any], timeout: float = 30.0) -> Any:
    """Send a command that trades. Its action id is new, unless the same command (same name and
    arguments) was typed within the last minutes and its outcome is not known (not answered, or the
    exchange's answer lost): then it is reused, so the gateway finds the first attempt's orders by
    their client ids and the command runs once."""
    import sys

    from revagent.cli.common import session_store
    from revagent.errors import RevagentError
    from revagent.store.commands import PendingCommands

    resolved = config.wallet(wallet)
    async with session_store(config, resolved) as store:
        pending = PendingCommands(store.redis, store.keys)
        action_id = await pending.action_id(name, args)
        if action_id is not None:
            sys.stderr.write(f"the same command was sent before and its outcome is not known: sending it again as "
                             f"{action_id}, so it runs at most once\n")
        else:
            action_id = new_action_id()
        await pending.remember(name, args, action_id)  # before sending: a retry after any failure finds it
        try:
            result = await call(config, wallet, name, {**args, "action_id": action_id}, timeout=timeout)
        except RevagentError as exc:
            if int(exc.exit_code) in _FINAL_ERRORS:
                await pending.settle(name, args)
            raise
        if not _unknown(result):
            await pending.settle(name, args)
        return result


def _unknown(result: Any) -> bool:
    if not isinstance(result, dict):
        return False
    return result.get("status") == "unknown" or any(r.get("status") == "unknown" for r in result.get("results") or [])


def show_verdict(v: dict[str, Any], *, err: bool = False) -> None:
    """Print a verdict for a human (on stderr with `err`, so that stdout stays one JSON document):
    prices on the tick, sizes on the lot, money in cents, ratios to 2 decimals."""
    from rich.console import Console

    from revagent import format as fmt

    console = Console(stderr=err)

    def show(message: str) -> None:
        console.print(message, highlight=False)

    expected, worst = v.get("expected_entry_px"), v.get("worst_entry_px")
    px = fmt.price
    entry = [("entry", px(v.get("price")))] if expected is None or expected == worst else [
        ("entry ~", px(expected)), ("worst", px(worst))]
    rows = [("size", fmt.size(v.get("size"))), *entry, ("stop", px(v.get("stop_px"))),
            ("target", px(v.get("target_px"))), ("take-profit", px(v.get("take_profit_px"))),
            ("notional", fmt.money(v.get("notional"))), ("risk", fmt.money(v.get("risk_usd"))),
            ("at worst", fmt.money(v.get("risk_at_worst_usd")) if expected != worst else fmt.DASH),
            ("R:R", fmt.ratio(v.get("reward_risk"))),
            ("fees", fmt.money(v.get("est_fees_usd"))), ("leverage", fmt.ratio(v.get("leverage"))),
            ("liquidation", px(v.get("est_liquidation_px"))), ("margin", fmt.money(v.get("margin_usd")))]
    line: list[str] = []
    used = 0
    for k, val in rows:  # wrapped between pairs, never between a label and its value
        if val == fmt.DASH:
            continue
        width = len(k) + 1 + len(val)
        if line and used + 2 + width > console.width:
            show("  ".join(line))
            line, used = [], 0
        line.append(f"[dim]{k}[/dim] {val}")
        used += width + (2 if used else 0)
    if line:
        show("  ".join(line))
    for r in v.get("reasons") or []:
        show(f"  [red]✗[/red] {r['message']} [dim]({r['code']})[/dim]")
    for r in v.get("warnings") or []:
        show(f"  [yellow]![/yellow] {r['message']} [dim]({r['code']})[/dim]")

def result_line(result: dict[str, Any]) -> str:
    """A gateway result in one line: its status, then its message unless the message already says it."""
    status, message = str(result["status"]), str(result.get("message") or "")
    colour = {"done": "green", "duplicate": "green", "unknown": "yellow"}.get(status, "red")
    if message.split(" ", 1)[0].lower() == status.lower():
        status, message = message.split(" ", 1)[0], message.split(" ", 1)[1] if " " in message else ""
    return f"[{colour}]{status}[/{colour}] {message}".rstrip()


def finish(result: dict[str, Any], json_out: bool) -> None:
    """Print a gateway result; exit 6 when refused or rejected, 9 when its outcome is unknown."""
    if json_out:
        print_json(result)
    else:
        reasons = result.get("reasons") or []
        if reasons:  # the message lists the reasons too: print its head once, then each reason once
            result = {**result, "message": str(result.get("message") or "").split(":", 1)[0] + ":"}
        say(result_line(result))
        for r in result.get("reasons") or []:  # each reason once, on its own line
            say(f"  [red]✗[/red] {r['message']} [dim]({r['code']})[/dim]")
        if result["status"] == "unknown":
            say("  the next reconciliation resolves it by its client order id; check with `revagent orders` and "
                "`revagent positions` (sending the same command again is safe: it reuses its id)")
    if result["status"] in ("refused", "rejected"):
        raise typer.Exit(6)
    if result["status"] == "unknown":
        raise typer.Exit(9)


@app.command("open")
@command
async def open_(
    market: Annotated[str, typer.Argument(help="Market, e.g. BTC.")],
    side: Annotated[str, typer.Argument(help="long or short.")],
    stop: Annotated[str, typer.Option("--stop", help="Stop price, or a distance from the mark: 2%.")],
    risk: Annotated[str, typer.Option("--risk", help="USD lost at the stop; the size is derived from it.")],
    entry: Annotated[str | None, typer.Option(help="Limit entry price (or 0.5%); default: market.")] = None,
    target: Annotated[str | None, typer.Option(help="The plan's target (drives the profit alert).")] = None,
    take_profit: Annotated[str | None, typer.Option("--take-profit", help="A real take-profit order.")] = None,
    leverage: Annotated[str | None, typer.Option(help="Leverage for this market.")] = None,
    isolated: Annotated[bool, typer.Option("--isolated", help="Isolated margin (default cross).")] = False,
    conviction: Annotated[int | None, typer.Option(help="Conviction 0-100.")] = None,
    thesis: Annotated[str | None, typer.Option(help="Why the trade should work (kept in the plan).")] = None,
    invalidation: Annotated[str | None, typer.Option(help="What would prove the thesis wrong.")] = None,
    expires: Annotated[str | None, typer.Option(help="Cancel the limit entry if it still rests after this (4h).")
                       ] = None,
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Open a trade: the size comes from --risk and the distance to --stop."""
    from revagent.actions import Open

    action = Open.parse(market=market, side=side, stop=stop, risk=risk, entry=entry, target=target,
                        take_profit=take_profit, leverage=leverage, isolated=isolated, conviction=conviction,
                        thesis=thesis, invalidation=invalidation, expires=expires)
    cfg = load(config)
    args = action.channel_args()
    if not yes:
        verdict = await call(cfg, wallet, "trade.preview", args)
        if json_out and not verdict["approved"]:
            finish({"status": "refused", "kind": "open", "market": action.market, "message": "refused",
                    "reasons": verdict["reasons"], "verdict": verdict}, json_out)
        show_verdict(verdict, err=json_out)
        if not verdict["approved"]:
            raise typer.Exit(6)
        confirm("send this order?", yes=False, err=json_out)
    result = await act(cfg, wallet, "trade.open", args)
    finish(result, json_out)


@app.command("close")
@command
async def close(
    market: Annotated[str, typer.Argument(help="Market to close.")],
    fraction: Annotated[str, typer.Option(help="Fraction of the position, 0-1.")] = "1",
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Close a position, fully or a fraction (reduce-only, within the slippage bound)."""
    from revagent.actions import Close

    action = Close.parse(market=market, fraction=fraction)
    confirm(f"close {fraction} of {market.upper()}?", yes=yes, err=json_out)
    cfg = load(config)
    result = await act(cfg, wallet, action.command, action.channel_args())
    finish(result, json_out)


@app.command("stop", context_settings={"ignore_unknown_options": True})  # `-5` is a VALUE: it reaches validation
@command
async def stop(
    market: Annotated[str, typer.Argument(help="Market whose stop to move.")],
    price: Annotated[str, typer.Argument(metavar="PX", help="New stop price, or a distance: 1.5%.")],
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Move the stop (tightening always passes; loosening is checked like new risk)."""
    from revagent.actions import Stop

    action = Stop.parse(market=market, price=price)
    cfg = load(config)
    finish(await act(cfg, wallet, action.command, action.channel_args()), json_out)


@app.command("target", context_settings={"ignore_unknown_options": True})  # `-5` is a VALUE: it reaches validation
@command
async def target(
    market: Annotated[str, typer.Argument(help="Market.")],
    price: Annotated[str | None, typer.Argument(metavar="PX", help="The plan's target.")] = None,
    take_profit: Annotated[str | None, typer.Option("--take-profit", help="A real take-profit order.")] = None,
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Set the plan's target (and the take-profit order, if asked)."""
    from revagent.actions import Target

    action = Target.parse(market=market, price=price, take_profit=take_profit)
    cfg = load(config)
    finish(await act(cfg, wallet, action.command, action.channel_args()), json_out)


@app.command("leverage", context_settings={"ignore_unknown_options": True})  # `-5` reaches validation
@command
async def leverage_(
    market: Annotated[str, typer.Argument(help="Market.")],
    leverage: Annotated[str, typer.Argument(metavar="LEVERAGE", help="Leverage, e.g. 5.")],
    isolated: Annotated[bool | None, typer.Option("--isolated/--cross", help="Margin mode (default: keep).")] = None,
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Set a market's leverage (and margin mode) through the risk engine, which caps it."""
    from revagent.actions import ChangeLeverage

    action = ChangeLeverage.parse(market=market, leverage=leverage, isolated=isolated)
    cfg = load(config)
    finish(await act(cfg, wallet, action.command, action.channel_args()), json_out)


@app.command("margin")
@command
async def margin(
    market: Annotated[str, typer.Argument(help="Market of an isolated position.")],
    add: Annotated[str | None, typer.Option("--add", help="USD of margin to add.")] = None,
    remove: Annotated[str | None, typer.Option("--remove", help="USD of margin to remove.")] = None,
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add margin to an isolated position (its liquidation moves away) or remove some."""
    from revagent.actions import Margin

    action = Margin.parse(market=market, add=add, remove=remove)
    cfg = load(config)
    finish(await act(cfg, wallet, action.command, action.channel_args()), json_out)


@app.command("cancel", context_settings={"ignore_unknown_options": True})  # `-5` is a VALUE: it reaches validation
@command
async def cancel(
    oid: Annotated[str, typer.Argument(metavar="OID", help="The order's id.")],
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Cancel an order (a stop that protects a position cannot be cancelled)."""
    from revagent.actions import Cancel

    action = Cancel.parse(oid=oid)
    cfg = load(config)
    finish(await act(cfg, wallet, action.command, action.channel_args()), json_out)


@app.command("flatten")
@command
async def flatten(
    yes: YesOpt = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Close every position and cancel every entry order (stops stay until their positions are gone)."""
    confirm("close EVERY position and cancel every entry?", yes=yes, err=json_out)
    from revagent.actions import Flatten

    action = Flatten.parse()
    cfg = load(config)
    doc = await act(cfg, wallet, action.command, action.channel_args(), timeout=60)
    if json_out:
        print_json(doc)
    else:
        for r in doc["results"]:
            say(f"{r['status']:9} {r['market']:6} {r['message']}")
        if not doc["results"]:
            say("nothing to flatten")
    if _unknown(doc):
        raise typer.Exit(9)
    if not doc["ok"]:
        raise typer.Exit(6)


def positions(wallet: WalletOpt = None, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Open positions with their stops, targets and risk."""
    _account(wallet=wallet, json_out=json_out, config=config, what="positions")


def orders(wallet: WalletOpt = None, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Open orders: entries, stops and take-profits."""
    _account(wallet=wallet, json_out=json_out, config=config, what="orders")


@command
async def _account(wallet: str | None, json_out: bool, config: Any, what: str) -> None:
    from revagent import format as fmt
    from revagent.cli import reads
    from revagent.cli.common import table

    cfg = load(config)
    # a paper wallet nobody owns: read the venue directly (no session); otherwise through its owner
    doc = await reads.account_view(cfg, cfg.wallet(wallet)) or await call(cfg, wallet, "account.view", {})
    account = doc["account"]
    markets = account.get("markets") or {}

    def lot(market: str) -> int | None:
        rules = markets.get(market)
        return None if rules is None else int(rules["sz_decimals"])

    def px(value: Any, market: str) -> str:
        return fmt.price(value, lot(market)) if value not in (None, "") else "-"

    if what == "positions":
        rows = account["positions"]
        if json_out:
            print_json({"positions": rows})
            return
        if not rows:
            say("no open positions")
            return
        table("Positions", ["market", "size", "entry", "mark", "stop", "target", "liq", "trade"],
              [[p["market"], fmt.size(p["size"], lot(p["market"]), signed=True), px(p["entry_px"], p["market"]),
                px(p["mark_px"], p["market"]),
                px(p["stop_px"], p["market"]) if p["stop_px"] else "[red]NONE[/red]",
                px(p["target_px"], p["market"]), px(p["liquidation_px"], p["market"]), p["trade_id"] or "-"]
               for p in rows])
    else:
        entries, triggers = account["entries"], account["triggers"]
        if json_out:
            print_json({"entries": entries, "triggers": triggers})
            return
        if not entries and not triggers:
            say("no open orders")
            return
        table("Orders", ["oid", "market", "kind", "side", "size", "price"],
              [[str(e["oid"]), e["market"], "entry", e["side"], fmt.size(e["size"], lot(e["market"])),
                px(e["limit_px"], e["market"])] for e in entries]
              + [[str(t["oid"]), t["market"], t["kind"], t["side"], fmt.size(t["size"], lot(t["market"])),
                  px(t["trigger_px"], t["market"])] for t in triggers])
