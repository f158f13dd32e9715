"""The command channel between processes: a daemon owns the wallet, the shell asks it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.errors import OwnerBusyError
from revagent.runtime.remote import call_once
from revagent.runtime.session import Session


def revagent(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def wait_for_owner(timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = revagent("status", "--json")
        if out.returncode == 0:
            doc = json.loads(out.stdout)
            if doc["owner"] is not None:
                return doc  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError("the daemon never took the lease")


@pytest.mark.usefixtures("revagent_home")
def test_ping_reaches_the_daemon_that_owns_the_wallet() -> None:
    daemon = subprocess.Popen([sys.executable, "-m", "revagent", "daemon"], stderr=subprocess.PIPE, text=True)
    try:
        status = wait_for_owner()
        assert status["owner"]["role"] == "daemon"  # type: ignore[index]
        assert status["owner"]["pid"] == daemon.pid  # type: ignore[index]
        out = revagent("ping", "--json")
        assert out.returncode == 0, out.stderr
        pong = json.loads(out.stdout)
        assert pong["via"] == "owner"
        assert pong["pid"] == daemon.pid
        # A second daemon for the same wallet is refused, naming the owner (exit 7).
        second = revagent("daemon", timeout=30)
        assert second.returncode == 7
        assert f"daemon pid {daemon.pid}" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)
    assert daemon.returncode == 0
    # With no owner, ping runs locally under a one-shot lease.
    out = revagent("ping", "--json")
    assert json.loads(out.stdout)["via"] == "local"


@pytest.mark.usefixtures("revagent_home")
def test_an_owner_that_does_not_answer_gives_exit_code_7() -> None:
    daemon = subprocess.Popen([sys.executable, "-m", "revagent", "daemon"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for_owner()
        daemon.send_signal(signal.SIGSTOP)  # alive, holding the lease, but not answering
        out = revagent("ping", "--timeout", "1", "--json")
        assert out.returncode == 7
        assert json.loads(out.stdout)["error"]["code"] == "owner_busy"
    finally:
        daemon.send_signal(signal.SIGCONT)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)


async def test_commands_sent_to_an_in_process_owner_stream_their_replies(revagent_home: Path) -> None:
    cfg = load_config()
    wallet = cfg.wallet()
    owner = Session(cfg, wallet, role="daemon")

    async def count(args: dict[str, object], emit: object) -> dict[str, object]:
        for i in range(3):
            await emit("progress", {"i": i})  # type: ignore[operator]
        return {"counted": 3}

    owner.register_command("count", count)
    await owner.start()
    try:
        result, via = await call_once(cfg, wallet, "count", {}, timeout=5)
        assert (result, via) == ({"counted": 3}, "owner")
        with pytest.raises(Exception, match="unknown command"):
            await call_once(cfg, wallet, "nope", {}, timeout=5)
    finally:
        await owner.stop()
    with pytest.raises(OwnerBusyError):
        other = Session(cfg, wallet)
        await other.start()
        try:
            third = Session(cfg, wallet)
            await asyncio.wait_for(third.start(), 10)
        finally:
            await other.stop()


async def test_the_command_group_exists_before_the_owner_is_visible(revagent_home: Path, redis_url: str) -> None:
    """A shell that sees the owner may send at once: the consumer group (created at "$") must exist
    by then, or that first command is never delivered (a first run used to lose it under load)."""
    import redis as sync_redis

    cfg = load_config()
    owner = Session(cfg, cfg.wallet(), role="daemon")
    await owner.start()
    try:
        client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
        try:  # a blocking client: the owner's spawned tasks have not run yet
            assert client.exists(owner.store.keys.lease)
            groups = client.xinfo_groups(owner.store.keys.commands)
        finally:
            client.close()
        assert [g["name"] for g in groups] == ["owner"]
    finally:
        await owner.stop("test finished")
