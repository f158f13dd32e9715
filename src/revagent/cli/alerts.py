"""`revagent alerts ...`: time alerts (a prompt the agent receives at a UTC time)."""

from __future__ import annotations

from typing import Annotated

import typer

from revagent.cli.common import (
    ConfigOpt,
    JsonOpt,
    WalletOpt,
    command,
    load,
    print_json,
    say,
    session_store,
    table,
)

app = typer.Typer(help="Time alerts: wake the agent at a time, once or repeating.", no_args_is_help=True)


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
    from datetime import timedelta

    from revagent.cli import parsing
    from revagent.errors import UsageError
    from revagent.models import TimeAlert, utc_now

    if (at is None) == (in_ is None):
        raise UsageError("give exactly one of --at TIME or --in DURATION")
    if not prompt.strip():
        raise UsageError("PROMPT: cannot be empty")
    now = utc_now()
    fire_at = parsing.utc_time(at, "--at") if at is not None else now + parsing.duration(in_ or "", "--in")
    if fire_at <= now:
        raise UsageError(f"--at: {fire_at.isoformat(timespec='seconds')} is in the past")
    repeat = parsing.duration(every, "--every") if every else None
    if repeat is not None and repeat < timedelta(minutes=1):
        raise UsageError(f"--every: a repeating alert fires at most once a minute (got {every})")
    alert = TimeAlert(fire_at=fire_at, every=repeat, prompt=prompt.strip(), created_at=now)
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        await store.time_alerts.put(alert)
    if json_out:
        print_json(alert)
    else:
        say(f"added time alert [bold]{alert.id}[/bold] at {alert.fire_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("list")
@command
async def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include fired and cancelled alerts.")] = False,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List time alerts."""
    from datetime import timedelta

    from revagent.models import TimeAlertStatus, format_duration, utc_now

    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        alerts = await store.time_alerts.all()
    if not all_:
        alerts = [a for a in alerts if a.status is TimeAlertStatus.SCHEDULED]
    if json_out:
        print_json({"time_alerts": alerts})
        return
    if not alerts:
        say("no time alerts")
        return
    now = utc_now()
    table("Time alerts", ["id", "fires (UTC)", "in", "every", "status", "prompt"],
          [[a.id, f"{a.fire_at:%Y-%m-%d %H:%M}",
            format_duration(timedelta(seconds=int((a.fire_at - now).total_seconds())))
            if a.fire_at > now else "due", format_duration(a.every) if a.every else "-", a.status.value, a.prompt]
           for a in alerts])


@app.command("rm")
@command
async def rm(
    alert_id: Annotated[str, typer.Argument(metavar="ID", help="The alert's id.")],
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Remove a time alert."""
    from revagent.errors import NotFoundError

    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        if not await store.time_alerts.delete(alert_id):
            raise NotFoundError(f"no time alert with id {alert_id!r}")
    if json_out:
        print_json({"removed": alert_id})
    else:
        say(f"removed time alert {alert_id}")
