"""`revagent server stop` never pulls Redis or the venue from under a live session: it refuses while
an owner is alive (naming wallet, pid, since); `--force` stops the owners first (SIGTERM, their
orderly shutdown), then the venue, then Redis."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from revagent.errors import ExitCode
from tests.foundation.redis_procs import log_tail, owner_pid, redis_servers_for, revagent, start_daemon, wait_for


@pytest.mark.timeout(300)
def test_server_stop_refuses_under_a_live_owner_and_force_stops_it_first(
        revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVAGENT_REDIS__URL")
    env = dict(os.environ)
    data = revagent_home / "data"
    daemon = start_daemon(env)
    try:
        wait_for(lambda: owner_pid(env) == daemon.pid, timeout=90, what="the daemon to own the wallet")
        wait_for((data / "venue" / "sim.json").exists, timeout=90, what="the paper venue")
        refused = revagent("server", "stop", "--json", env=env)
        assert refused.returncode == ExitCode.OWNER_BUSY, refused.stdout + refused.stderr
        error = json.loads(refused.stdout)["error"]
        assert "paper" in error["message"] and f"pid {daemon.pid}" in error["message"]
        assert "since" in error["message"] and "--force" in error["message"]
        assert daemon.poll() is None and len(redis_servers_for(data)) == 1
        status = json.loads(revagent("server", "status", "--json", env=env).stdout)
        assert status["venue"]["running"] and status["redis"]["running"]

        forced = revagent("server", "stop", "--force", "--json", env=env, timeout=120)
        assert forced.returncode == 0, forced.stdout + forced.stderr
        doc = json.loads(forced.stdout)
        assert [o["pid"] for o in doc["owners_stopped"]] == [daemon.pid]
        assert doc["venue"]["stopped"] and doc["redis"]["stopped"]
        daemon.wait(30)
        assert daemon.returncode == 0  # its own orderly shutdown (SIGTERM), not a crash
        _, err = daemon.communicate(timeout=10)
        assert "died" not in err and "Traceback" not in err, err[-2000:]
        assert redis_servers_for(data) == []
    except BaseException:
        print(log_tail(daemon))
        raise
    finally:
        if daemon.poll() is None:
            daemon.kill()
