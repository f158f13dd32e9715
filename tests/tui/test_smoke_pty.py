"""The real thing in a pseudo-terminal: `python -m revagent.tui` on the test Redis, a slash command
typed on the keyboard, the screen read back, a clean quit (pexpect, no system package)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimConfig
from revagent.exchange.sim.threaded import ThreadedSim
from revagent.runtime.session import open_redis, resolve_session_id
from revagent.store.repos import SessionStore


def tui_argv() -> list[str]:
    """`python -m revagent tui` once cli/main.py mounts `cli.tui_cmd.tui`; the app module until then."""
    from revagent.cli.main import app

    for info in app.registered_commands:
        if info.name == "tui" and getattr(info.callback, "__module__", "") == "revagent.cli.tui_cmd":
            return ["-m", "revagent", "tui"]
    return ["-m", "revagent.tui"]


def spawn_tui(venue_url: str, cols: int = 100, rows: int = 30) -> pexpect.spawn:
    # the paper venue runs in this test (a thread): the TUI must not start a shared venue process
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows),
           "REVAGENT_PAPER__VENUE_URL": venue_url}
    env.pop("NO_COLOR", None)
    env.pop("PYTHONASYNCIODEBUG", None)
    return pexpect.spawn(sys.executable, tui_argv(), env=env, dimensions=(rows, cols),
                         encoding="utf-8", codec_errors="replace", timeout=40)


def notes_in_store() -> list[str]:
    async def read() -> list[str]:
        cfg = load_config()
        redis = await open_redis(cfg)
        try:
            store = SessionStore(redis, await resolve_session_id(cfg, cfg.wallet()))
            return [n.text for n in await store.notes.all()]
        finally:
            await redis.aclose()

    return asyncio.run(read())


@pytest.fixture
def venue() -> Iterator[str]:
    sim = ThreadedSim(SimConfig(seed=1))
    try:
        yield sim.start()
    finally:
        sim.stop()


def test_tui_runs_in_a_pty_types_a_slash_command_and_quits(revagent_home: Path, venue: str) -> None:
    child = spawn_tui(venue)
    try:
        child.expect("PAPER")
        child.expect("message, or /command")
        # 100 columns: the folded money line, from the venue (styles switch between label and value)
        child.expect(r"Eq (\x1b\[[0-9;]*m)*\$10,000\.00")
        child.send("/note from the pty")
        child.send("\r")
        child.expect("✓ note n_")
        child.send("\x11")  # ctrl+q
        child.expect(pexpect.EOF, timeout=30)
    finally:
        if child.isalive():
            child.terminate(force=True)
    child.close()
    assert child.exitstatus == 0, child.before
    assert notes_in_store() == ["from the pty"]
    log = (revagent_home / "data" / "logs" / "tui.log").read_text()
    assert f"trading on {venue}" in log
    assert not (revagent_home / "data" / "venue" / "sim.json").exists()  # no shared venue was started
