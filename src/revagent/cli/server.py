"""`revagent server ...`: the background services revagent runs for the user: the embedded Redis
and the paper venue (the local simulator). Both outlive any one revagent process."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, command, load, print_json, say

app = typer.Typer(help="Background services: the embedded Redis and the paper venue.", no_args_is_help=True)


@app.command("status")
@command
async def status(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Show whether the embedded Redis and the paper venue run, where, and whether revagent started
    them; and each wallet's daemon: pid, uptime, sync phase, trading state, last alert, and its
    supervisor's view (`daemon --all`: state, restarts, last exit)."""
    import asyncio

    from revagent.exchange.sim import service as venue
    from revagent.store.server import EmbeddedRedis

    cfg = load(config)
    doc: dict[str, Any]
    url: str | None = cfg.redis.url
    if cfg.redis.url:
        doc = {"redis": {"mode": "external", "url": _redact(cfg.redis.url)}}
    else:
        st = await asyncio.to_thread(EmbeddedRedis(cfg.data_path).status)
        url = st.url if st.running else None
        doc = {"redis": {"mode": "embedded", "running": st.running, "url": st.url, "pid": st.pid,
                         "directory": str(st.directory), "started_by_revagent": st.started_by_revagent}}
    if cfg.paper.venue_url:
        doc["venue"] = {"mode": "external", "url": cfg.paper.venue_url}
    else:
        vs = venue.status(cfg.data_path / "venue")
        doc["venue"] = {"mode": "local", "running": vs.running, "url": vs.url, "pid": vs.pid,
                        "state_file": str(vs.state_file)}
    doc["wallets"] = []
    if url:
        from revagent.store.connection import UNAVAILABLE

        try:
            doc["wallets"] = await _wallet_states(cfg, url)
        except UNAVAILABLE as exc:
            doc["wallets_error"] = f"Redis unreachable: {exc}"
    if json_out:
        print_json(doc)
        return
    r, v = doc["redis"], doc["venue"]
    if r["mode"] == "external":
        say(f"redis: external {r['url']} (revagent does not manage it)")
    else:
        say(f"redis: embedded, {'running' if r['running'] else 'stopped'}"
            + (f" at {r['url']} (pid {r['pid']})" if r["running"] else "") + f"\n  data: {r['directory']}")
    if v["mode"] == "external":
        say(f"paper venue: external {v['url']}")
    else:
        say(f"paper venue: local simulator, {'running' if v['running'] else 'stopped'}"
            + (f" at {v['url']} (pid {v['pid']})" if v["running"] else "") + f"\n  state: {v['state_file']}")
    for w in doc["wallets"]:
        say(_describe_wallet(w))


@app.command("stop")
@command
async def stop(
    only: Annotated[str | None, typer.Option("--only", help="redis or venue (default: both).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Stop the wallets' owners first (SIGTERM, their "
                                        "orderly shutdown), then the venue, then Redis.")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Stop the services revagent started (never one it did not start). Their data stay on disk.

    Refuses while a wallet's owner (a daemon, a TUI) is alive, naming it: the services would be
    pulled from under it. `--force` stops the owners first and waits for them."""
    import asyncio

    from revagent.errors import UsageError
    from revagent.exchange.sim import service as venue
    from revagent.store.server import EmbeddedRedis

    if only not in (None, "redis", "venue"):
        raise UsageError(f"--only: expected redis or venue (got {only!r})")
    cfg = load(config)
    owners = await _live_owners(cfg)
    stopped_owners: list[dict[str, Any]] = []
    if owners:
        if not force:
            from revagent.errors import OwnerBusyError

            raise OwnerBusyError("not stopping the services under a live session: "
                                 + "; ".join(o.describe() for o in owners)
                                 + ". Stop it first, or run `revagent server stop --force`")
        stopped_owners = await _stop_owners(owners)
    doc: dict[str, Any] = {"owners_stopped": stopped_owners}
    if only in (None, "venue"):
        doc["venue"] = {"stopped": False if cfg.paper.venue_url else
                        await asyncio.to_thread(venue.stop, cfg.data_path / "venue")}
    if only in (None, "redis"):
        doc["redis"] = {"stopped": False if cfg.redis.url else
                        await asyncio.to_thread(EmbeddedRedis(cfg.data_path).stop)}
    if json_out:
        print_json(doc)
        return
    for owner in stopped_owners:
        say(f"stopped the owner of wallet {owner['wallet'] or owner['session']} ({owner['role']} pid {owner['pid']})")
    for name, label in (("venue", "the paper venue"), ("redis", "the embedded Redis")):
        if name in doc:
            say(f"stopped {label}" if doc[name]["stopped"] else f"{label} was not running (or is not ours)")


async def _wallet_states(cfg: Any, url: str) -> list[dict[str, Any]]:
    """Every configured wallet's daemon as the store knows it: its lease holder (pid, since), what it
    publishes about itself (sync phase), its risk state, its last alert, its supervisor's record."""
    import json
    import time
    from datetime import datetime

    from revagent.models import utc_now
    from revagent.risk import status as risk_status
    from revagent.runtime.supervisor import egress_of
    from revagent.store.alert_queue import AlertQueue
    from revagent.store.connection import connect, resolve_session_id
    from revagent.store.keys import Keyspace, supervisor_key
    from revagent.store.lease import current_holder
    from revagent.store.risk import RiskStore

    redis = await connect(url, check=False)
    out: list[dict[str, Any]] = []
    try:
        supervised = {k: json.loads(v) for k, v in (await redis.hgetall(supervisor_key(egress_of(cfg)))).items()}
        for name in cfg.wallet_names():
            w = cfg.wallet(name)
            sid = await resolve_session_id(cfg, w)
            keys = Keyspace(sid)
            holder = await current_holder(redis, keys)
            own = await redis.hgetall(keys.owner_status)
            risk = RiskStore(redis, keys, w.risk)
            rs = risk_status(await risk.get(), utc_now(), await risk.settings())
            history = await AlertQueue(redis, keys).history(1)
            last = history[0] if history else None
            sup = supervised.get(name)
            live = holder is not None and own.get("pid") == str(holder.pid)
            uptime = None
            if holder is not None:
                uptime = round((utc_now() - datetime.fromisoformat(holder.since)).total_seconds(), 1)
            out.append({
                "wallet": name, "network": w.network, "session": str(sid),
                "pid": holder.pid if holder else None, "role": holder.role if holder else None,
                "host": holder.host if holder else None, "uptime_s": uptime,
                "startup_phase": own.get("startup_phase") if live else None,
                "sync_phase": (own.get("sync_phase") or None) if live else None,
                "sync_reason": (own.get("sync_reason") or None) if live else None,
                "trading": rs.state.value,
                "last_alert": None if last is None else {"trigger_key": last["trigger_key"], "status": last["status"],
                                                         "at": last["at"]},
                "supervisor": None if sup is None else {
                    "pid": sup["supervisor_pid"], "state": sup["state"], "child_pid": sup["pid"],
                    "restarts": sup["restarts"], "last_exit": sup["last_exit"], "last_reason": sup["last_reason"],
                    "running_s": round(time.time() - sup["started_at"], 1) if sup["started_at"] else None},
            })
    finally:
        await redis.aclose()
    return out


def _describe_wallet(w: dict[str, Any]) -> str:
    if w["pid"] is None:
        line = f"wallet {w['wallet']} ({w['network']}): no daemon"
    else:
        line = (f"wallet {w['wallet']} ({w['network']}): {w['role']} pid {w['pid']} up {w['uptime_s']:.0f}s, "
                f"sync {w['sync_phase'] or '?'}" + (f" ({w['sync_reason']})" if w["sync_reason"] else "")
                + f", {w['startup_phase'] or 'phase unknown'}")
    line += f"\n  trading {w['trading'].upper()}"
    last = w["last_alert"]
    line += f", last alert {last['trigger_key']} {last['status']}" if last else ", no alert yet"
    sup = w["supervisor"]
    if sup is not None:
        line += (f"\n  supervisor pid {sup['pid']}: {sup['state']}, {sup['restarts']} restart(s)"
                 + (f", last: {sup['last_reason']}" if sup["last_reason"] else ""))
    return line


OWNER_STOP_SECONDS = 60.0
"""How long `--force` waits for an owner's orderly shutdown (a daemon drains its running alert turn,
up to 30 s) before giving up without stopping anything else."""


async def _live_owners(cfg: Any) -> list[Any]:
    """The live owners on the configured (or running embedded) Redis; none when it is not running."""
    import asyncio

    from revagent.store.connection import connect
    from revagent.store.lease import live_owners
    from revagent.store.server import EmbeddedRedis

    url = cfg.redis.url or (await asyncio.to_thread(EmbeddedRedis(cfg.data_path).status)).url
    if not url:
        return []
    redis = await connect(url, check=False)
    try:
        return await live_owners(redis)
    finally:
        await redis.aclose()


async def _stop_owners(owners: list[Any]) -> list[dict[str, Any]]:
    """SIGTERM every owner (on this host) and wait until each has exited."""
    import asyncio
    import os
    import signal
    import socket

    from revagent.errors import OwnerBusyError
    from revagent.store.lease import pid_alive

    remote = [o for o in owners if o.holder.host != socket.gethostname()]
    if remote:
        raise OwnerBusyError("cannot stop an owner on another host: " + "; ".join(o.describe() for o in remote))
    for owner in owners:
        try:
            os.kill(owner.holder.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    loop = asyncio.get_running_loop()
    deadline = loop.time() + OWNER_STOP_SECONDS
    while any(pid_alive(o.holder.pid) for o in owners):
        if loop.time() > deadline:
            alive = [o for o in owners if pid_alive(o.holder.pid)]
            raise OwnerBusyError("the owners did not stop in time (nothing else was stopped): "
                                 + "; ".join(o.describe() for o in alive))
        await asyncio.sleep(0.1)
    return [{"wallet": o.wallet, "session": o.session, "role": o.holder.role, "pid": o.holder.pid,
             "since": o.holder.since} for o in owners]


def _redact(url: str) -> str:
    from revagent.store.connection import describe_url

    return describe_url(url)
