"""`revagent sim ...`: the Hyperliquid-compatible exchange simulator (the paper venue).

Light at import (typer only); the simulator is imported inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The local Hyperliquid-compatible exchange simulator (the paper venue).",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The local Hyperliquid-compatible exchange simulator (the paper venue)."""


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (controls answer on loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind; 0 picks a free one.")] = 3001,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic price walk and of hashes.")] = 0,
    prices: Annotated[str, typer.Option(help="synthetic, replay:FILE (a `sim record` recording, or CSV/JSON ticks "
                                             "or candles), or live.")]
    = "synthetic",
    balance: Annotated[str, typer.Option(help="USDC a fresh address starts with.")] = "10000",
    state: Annotated[Path | None, typer.Option(help="JSON state file: loaded at start, kept up to date.")] = None,
    controls: Annotated[bool, typer.Option(help="Enable the loopback-only /_sim/... test controls.")] = False,
    upstream: Annotated[str, typer.Option(help="With --prices live: the Hyperliquid-compatible API the market "
                                               "comes from (default: Hyperliquid mainnet).")] = "",
    lenient: Annotated[bool, typer.Option(help="Relax the exchange's rules (any signer gets a funded account; no "
                                               "price band, open-order cap, asset=N suffix or scheduleCancel "
                                               "volume rule).")] = False,
    port_file: Annotated[Path | None, typer.Option(hidden=True, help="Write the bound port here (services).")]
    = None,
) -> None:
    """Serve /info, /exchange and /ws until interrupted (SIGINT/SIGTERM stop it cleanly, state written)."""
    import asyncio
    from decimal import Decimal, InvalidOperation

    from revagent.cli.common import fail

    try:
        usd = Decimal(balance)
    except InvalidOperation:
        fail(f"--balance must be a number of USDC, not {balance!r}", code="usage", exit_code=2, json_out=False)
        return
    from revagent.exchange.sim import SimConfig
    from revagent.exchange.sim.feed import FeedUnavailable

    if prices not in ("synthetic", "live") and not prices.startswith("replay:"):
        fail(f"--prices must be synthetic, replay:FILE or live, not {prices!r}", code="usage", exit_code=2,
             json_out=False)
    settings = {"host": host, "port": port, "seed": seed, "prices": prices, "balance": usd, "state_file": state,
                "controls": controls, "upstream": upstream}
    config = SimConfig(**settings) if lenient else SimConfig.exchange_like(**settings)
    try:
        asyncio.run(_serve(config, port_file))
    except FeedUnavailable as exc:
        fail(str(exc), code="exchange_unreachable", exit_code=8, json_out=False)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _serve(config: object, port_file: Path | None) -> None:
    import asyncio
    import os
    import signal
    import sys

    from revagent.exchange.sim import SimConfig, SimServer

    assert isinstance(config, SimConfig)
    sim = SimServer(config)
    url = await sim.start()
    try:
        if port_file is not None:
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(url.rsplit(":", 1)[1])
            os.replace(tmp, port_file)
        sys.stderr.write(f"revagent sim: listening on {url} (prices: {sim.price_source()['summary']}, "
                         f"seed {config.seed})\n")
        sys.stderr.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await sim.stop()


@app.command("record")
def record(
    out: Annotated[Path, typer.Option(help="The recording to write (JSON lines; replay with --prices replay:FILE "
                                           "or [paper] prices = \"replay:FILE\").")],
    upstream: Annotated[str, typer.Option(help="The Hyperliquid-compatible API to record (default: Hyperliquid "
                                               "mainnet).")] = "",
    minutes: Annotated[float, typer.Option(help="How long to record, in minutes (fractions allowed).")] = 5.0,
    coins: Annotated[str, typer.Option(help="Markets whose books and trades are recorded, comma-separated.")]
    = "BTC,ETH,SOL",
    candles: Annotated[str, typer.Option(help="Candle intervals recorded per market at the start (500 bars "
                                              "each), comma-separated; empty for none.")] = "1m,15m,1h",
) -> None:
    """Record the upstream's market for a while: the universe and contexts, mids, books and trades of
    `--coins`, and the candles asked; `replay:FILE` plays it back as the paper venue's market."""
    import asyncio

    from revagent.cli.common import fail
    from revagent.exchange.sim.feed import FeedUnavailable
    from revagent.exchange.sim.recording import record as record_upstream

    if not 0 < minutes <= 24 * 60:
        fail(f"--minutes must be above 0 and at most 1440, not {minutes}", code="usage", exit_code=2,
             json_out=False)
    names = [c.strip() for c in coins.split(",") if c.strip()]
    intervals = [c.strip() for c in candles.split(",") if c.strip()]
    try:
        stats = asyncio.run(record_upstream(upstream, out, seconds=minutes * 60, coins=names, candles=intervals))
    except FeedUnavailable as exc:
        fail(str(exc), code="exchange_unreachable", exit_code=8, json_out=False)
        return
    except ValueError as exc:
        fail(str(exc), code="usage", exit_code=2, json_out=False)
        return
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    channels = ", ".join(f"{k} {v}" for k, v in sorted((stats.by_channel or {}).items())) or "no websocket frames"
    typer.echo(f"recorded {stats.frames} frames to {out} ({stats.infos} REST answers; {channels})")


@app.command("fund")
def fund(
    address: Annotated[str, typer.Argument(help="The master address to fund (0x...).")],
    url: Annotated[str, typer.Option(help="The venue's base URL.")] = "http://127.0.0.1:3001",
) -> None:
    """Fund a new account on a running venue with its starting balance (the exchange's rules refuse any
    signer that never deposited; use this before driving `sim serve` with the SDK's examples)."""
    import json
    import urllib.request

    from revagent.cli.common import fail

    req = urllib.request.Request(url.rstrip("/") + "/_paper/fund", data=json.dumps({"user": address}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            typer.echo(resp.read().decode())
    except OSError as exc:
        fail(f"cannot fund {address} on {url}: {exc}", code="exchange_unreachable", exit_code=8, json_out=False)


if __name__ == "__main__":
    app()
