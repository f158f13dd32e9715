"""`revagent server ...`: the background services revagent runs for the user: the embedded Redis
and the paper venue (the local simulator). Both outlive any one revagent process."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, command, load, print_json, say

app = typer.Typer(help="Background services: the embedded Redis and the paper venue.", no_args_is_help=True)


@app.command("status")
@command
def status(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Show whether the embedded Redis and the paper venue run, where, and whether revagent started them."""
    from revagent.exchange.sim import service as venue
    from revagent.store.server import EmbeddedRedis

    cfg = load(config)
    doc: dict[str, Any]
    if cfg.redis.url:
        doc = {"redis": {"mode": "external", "url": _redact(cfg.redis.url)}}
    else:
        st = EmbeddedRedis(cfg.data_path).status()
        doc = {"redis": {"mode": "embedded", "running": st.running, "url": st.url, "pid": st.pid,
                         "directory": str(st.directory), "started_by_revagent": st.started_by_revagent}}
    if cfg.paper.venue_url:
        doc["venue"] = {"mode": "external", "url": cfg.paper.venue_url}
    else:
        vs = venue.status(cfg.data_path / "venue")
        doc["venue"] = {"mode": "local", "running": vs.running, "url": vs.url, "pid": vs.pid,
                        "state_file": str(vs.state_file)}
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


@app.command("stop")
@command
def stop(
    only: Annotated[str | None, typer.Option("--only", help="redis or venue (default: both).")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Stop the services revagent started (never one it did not start). Their data stay on disk."""
    from revagent.errors import UsageError
    from revagent.exchange.sim import service as venue
    from revagent.store.server import EmbeddedRedis

    if only not in (None, "redis", "venue"):
        raise UsageError(f"--only: expected redis or venue (got {only!r})")
    cfg = load(config)
    doc: dict[str, Any] = {}
    if only in (None, "venue"):
        doc["venue"] = {"stopped": False if cfg.paper.venue_url else venue.stop(cfg.data_path / "venue")}
    if only in (None, "redis"):
        doc["redis"] = {"stopped": False if cfg.redis.url else EmbeddedRedis(cfg.data_path).stop()}
    if json_out:
        print_json(doc)
        return
    for name, label in (("venue", "the paper venue"), ("redis", "the embedded Redis")):
        if name in doc:
            say(f"stopped {label}" if doc[name]["stopped"] else f"{label} was not running (or is not ours)")


def _redact(url: str) -> str:
    from revagent.store.connection import describe_url

    return describe_url(url)
