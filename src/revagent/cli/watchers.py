"""`revagent watchers ...`: watcher pairs (an upper and/or a lower level on one market)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from revagent.models import WatcherLeg

app = typer.Typer(help="Watcher pairs: levels that wake the agent when the price crosses them.",
                  no_args_is_help=True)


@app.command("add")
@command
async def add(
    market: Annotated[str, typer.Argument(help="Market, e.g. BTC.")],
    above: Annotated[str | None, typer.Option(help="Upper level: fires when the mid rises to it.")] = None,
    above_thesis: Annotated[str, typer.Option(help="Why the upper level matters.")] = "",
    above_entry: Annotated[str | None, typer.Option(help="Proposed entry if the upper leg fires.")] = None,
    above_stop: Annotated[str | None, typer.Option(help="Proposed stop if the upper leg fires.")] = None,
    above_target: Annotated[str | None, typer.Option(help="Proposed target if the upper leg fires.")] = None,
    above_conviction: Annotated[int | None, typer.Option(help="Conviction 0-100.")] = None,
    above_risk: Annotated[str | None, typer.Option(help="Proposed risk in USD.")] = None,
    below: Annotated[str | None, typer.Option(help="Lower level: fires when the mid falls to it.")] = None,
    below_thesis: Annotated[str, typer.Option(help="Why the lower level matters.")] = "",
    below_entry: Annotated[str | None, typer.Option(help="Proposed entry if the lower leg fires.")] = None,
    below_stop: Annotated[str | None, typer.Option(help="Proposed stop if the lower leg fires.")] = None,
    below_target: Annotated[str | None, typer.Option(help="Proposed target if the lower leg fires.")] = None,
    below_conviction: Annotated[int | None, typer.Option(help="Conviction 0-100.")] = None,
    below_risk: Annotated[str | None, typer.Option(help="Proposed risk in USD.")] = None,
    expires: Annotated[str | None, typer.Option(help="Expire after this long, e.g. 24h.")] = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add a watcher pair (at least one of --above / --below)."""
    from revagent.actions import Watch
    from revagent.errors import UsageError
    from revagent.models import utc_now

    action = Watch.parse(market=market, above=above, above_thesis=above_thesis, above_entry=above_entry,
                         above_stop=above_stop, above_target=above_target, above_conviction=above_conviction,
                         above_risk=above_risk, below=below, below_thesis=below_thesis, below_entry=below_entry,
                         below_stop=below_stop, below_target=below_target, below_conviction=below_conviction,
                         below_risk=below_risk, expires=expires)
    mkt = action.market
    pair = action.resolve(None).build(utc_now())
    cfg = load(config)
    w = cfg.wallet(wallet)
    mid = await _current_mid(cfg, w, mkt)
    if mid is not None:
        from revagent.alerts.price_watch import validate_new_pair
        from revagent.alerts.triggers import LevelAlreadyPassed

        try:
            validate_new_pair(pair, mid)
        except LevelAlreadyPassed as exc:
            raise UsageError(str(exc)) from None
    async with session_store(cfg, w) as store:
        await store.watchers.put(pair)
    if json_out:
        print_json(pair)
    else:
        say(f"added watcher [bold]{pair.id}[/bold] on {mkt}" + (f" (mid {mid})" if mid is not None else ""))


async def _current_mid(cfg: Any, wallet: Any, market: str) -> Any:
    """The market's mid from the wallet's venue, or None when it cannot be read quickly (the running
    scheduler then applies the same rule when it picks the pair up). A market the venue does not
    list is refused (NotFoundError)."""
    import asyncio

    from revagent.config.keys import master_address
    from revagent.errors import RevagentError
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.venue import venue_url

    try:
        url = await asyncio.wait_for(venue_url(cfg, wallet), 10)
        address = await asyncio.to_thread(master_address, wallet, cfg.data_path)
        async with HyperliquidBridge(network=wallet.network, base_url=url, master=address) as bridge:
            mids = await asyncio.wait_for(bridge.all_mids(), 5)
    except (RevagentError, OSError, TimeoutError):
        return None
    if market not in mids:
        from revagent.errors import NotFoundError

        raise NotFoundError(f"MARKET: {market!r} is not traded on this venue")
    return mids[market]


@app.command("list")
@command
async def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include fired, cancelled and expired pairs.")] = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List watcher pairs (armed ones unless --all)."""
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        pairs = await store.watchers.all()
    if not all_:
        pairs = [p for p in pairs if p.active]
    if json_out:
        print_json({"watchers": pairs})
        return
    if not pairs:
        say("no watchers" if all_ else "no armed watchers (--all shows past ones)")
        return

    def leg(lg: WatcherLeg | None) -> str:
        if lg is None:
            return "-"
        return f"{lg.level} {lg.status.value}" + (f" — {lg.thesis}" if lg.thesis else "")

    table("Watchers", ["id", "market", "above", "below", "expires"],
          [[p.id, p.market, leg(p.upper), leg(p.lower),
            p.expires_at.strftime("%Y-%m-%d %H:%M UTC") if p.expires_at else "never"] for p in pairs])


@app.command("rm")
@command
async def rm(
    watcher_id: Annotated[str, typer.Argument(metavar="ID", help="The watcher pair's id.")],
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Remove a watcher pair."""
    await remove_record(config, wallet, "watchers", watcher_id, "watcher", json_out)
