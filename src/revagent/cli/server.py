"""`revagent server ...`: the background services revagent runs for the user (embedded Redis)."""

from __future__ import annotations

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, command, load, print_json, say

app = typer.Typer(help="Background services: the embedded Redis (and the paper venue).", no_args_is_help=True)


@app.command("status")
@command
def status(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Show whether the embedded Redis runs, where, and whether revagent started it."""
    from typing import Any

    from revagent.store.server import EmbeddedRedis

    cfg = load(config)
    doc: dict[str, Any]
    if cfg.redis.url:
        doc = {"redis": {"mode": "external", "url": _redact(cfg.redis.url)}}
    else:
        st = EmbeddedRedis(cfg.data_path).status()
        doc = {"redis": {"mode": "embedded", "running": st.running, "url": st.url, "pid": st.pid,
                         "directory": str(st.directory), "started_by_revagent": st.started_by_revagent}}
    if json_out:
        print_json(doc)
        return
    r = doc["redis"]
    if r["mode"] == "external":
        say(f"redis: external {r['url']} (revagent does not manage it)")
    else:
        say(f"redis: embedded, {'running' if r['running'] else 'stopped'}"
            + (f" at {r['url']} (pid {r['pid']})" if r["running"] else "") + f"\n  data: {r['directory']}")


@app.command("stop")
@command
def stop(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Stop the embedded Redis (only if revagent started it). Data stay on disk (AOF)."""
    from revagent.store.server import EmbeddedRedis

    cfg = load(config)
    if cfg.redis.url:
        say("redis.url is set: revagent does not manage that server")
        return
    stopped = EmbeddedRedis(cfg.data_path).stop()
    if json_out:
        print_json({"redis": {"stopped": stopped}})
    else:
        say("stopped the embedded Redis" if stopped else "the embedded Redis was not running")


def _redact(url: str) -> str:
    from revagent.store.connection import describe_url

    return describe_url(url)
