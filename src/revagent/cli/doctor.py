"""`revagent doctor`: check that a wallet is ready to trade (mounted by cli/main.py as a command).

Exit codes: 0 all passed (warnings allowed), 4 config problems (including an unapproved agent and a
badly skewed clock), 5 Redis unreachable, 8 the exchange unreachable, 6 the exchange refused the
probe order. The checks themselves live in `revagent.runtime.doctor`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, WalletOpt, print_json, say

_MARK = {"pass": "[green]pass[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]",
         "skip": "[dim]skip[/dim]"}


def doctor(
    wallet: WalletOpt = None,
    probe: Annotated[bool, typer.Option("--probe/--no-probe",
                                        help="On paper/testnet, place and cancel a far-off order.")] = True,
    market: Annotated[str, typer.Option(help="Market of the probe order.")] = "BTC",
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Check the config, the model (a free token-count probe), the agent key, Redis, the venue, the
    agent's approval, the clock, the equity,
    and (paper/testnet) that an order can be placed and cancelled."""
    import asyncio

    from revagent.runtime.doctor import run_doctor

    try:
        report = asyncio.run(run_doctor(config, wallet, probe=probe, probe_market=market))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if json_out:
        print_json(report.as_json())
    else:
        say(f"[bold]revagent doctor[/bold]  wallet {report.wallet} ({report.network})")
        width = max(len(c.name) for c in report.checks)
        for c in report.checks:
            say(f"  {_MARK[c.status]}  {c.name:<{width}}  {c.detail}")
        say("[green]ready to trade[/green]" if report.ok else f"[red]not ready[/red] (exit {report.exit_code})")
    if report.exit_code:
        raise typer.Exit(report.exit_code)
