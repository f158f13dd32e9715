"""A daemon rides out a Redis outage (stalled, killed) and stops with a documented, non-zero code
when it must (its lease is lost), so a supervisor restarts it (`contrib/revagent@.service`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis as sync_redis

from revagent.errors import ExitCode
from tests.foundation.redis_procs import log_tail, owner_pid, redis_servers_for, revagent, start_daemon, wait_for


@pytest.fixture
def embedded_env(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("REVAGENT_REDIS__URL")
    return dict(os.environ)


def _owned_by(daemon: subprocess.Popen[str], env: dict[str, str]) -> None:
    wait_for(lambda: owner_pid(env) == daemon.pid, timeout=90, what="the daemon to own the wallet")


def _pinged_by_owner(daemon: subprocess.Popen[str], env: dict[str, str]) -> None:
    out = revagent("ping", "--json", "--timeout", "30", env=env)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["via"] == "owner" and answer["pid"] == daemon.pid


def _positions_read(env: dict[str, str]) -> None:
    out = revagent("positions", "--json", env=env)
    assert out.returncode == 0, out.stderr


def _stop(daemon: subprocess.Popen[str]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)


@pytest.mark.timeout(300)
def test_the_daemon_rides_out_a_redis_stall_longer_than_its_socket_timeout(
        revagent_home: Path, embedded_env: dict[str, str]) -> None:
    daemon = start_daemon(embedded_env)
    try:
        _owned_by(daemon, embedded_env)
        [server] = redis_servers_for(revagent_home / "data")
        os.kill(server, signal.SIGSTOP)
        try:
            time.sleep(12)  # past redis-py's socket timeout (10 s), within the lease's TTL (15 s)
            assert daemon.poll() is None, "the daemon died during the stall"
        finally:
            os.kill(server, signal.SIGCONT)
        time.sleep(3)
        assert daemon.poll() is None, "the daemon died after the stall"
        _pinged_by_owner(daemon, embedded_env)
        _positions_read(embedded_env)
        assert redis_servers_for(revagent_home / "data") == [server]
    except BaseException:
        print(log_tail(daemon))
        raise
    finally:
        _stop(daemon)
    assert daemon.returncode == 0


@pytest.mark.timeout(300)
def test_the_daemon_reconnects_after_redis_is_killed(revagent_home: Path, embedded_env: dict[str, str]) -> None:
    daemon = start_daemon(embedded_env)
    try:
        _owned_by(daemon, embedded_env)
        [server] = redis_servers_for(revagent_home / "data")
        os.kill(server, signal.SIGKILL)
        time.sleep(2)
        assert daemon.poll() is None, "the daemon died with Redis"
        # the embedded server comes back on its data dir (restarted by whoever needs it first)
        new = wait_for(lambda: redis_servers_for(revagent_home / "data"), timeout=30, what="a new server")
        assert len(new) == 1 and new != [server]
        wait_for(lambda: owner_pid(embedded_env) == daemon.pid, timeout=30, what="the daemon to own it again")
        _pinged_by_owner(daemon, embedded_env)
        assert daemon.poll() is None
    except BaseException:
        print(log_tail(daemon))
        raise
    finally:
        _stop(daemon)
    assert daemon.returncode == 0


@pytest.mark.timeout(300)
def test_a_daemon_that_loses_its_lease_exits_with_the_documented_code(
        revagent_home: Path, embedded_env: dict[str, str]) -> None:
    daemon = start_daemon(embedded_env)
    try:
        _owned_by(daemon, embedded_env)
        url = (revagent_home / "data" / "redis" / "url").read_text().strip()
        client = sync_redis.Redis.from_url(url, decode_responses=True)
        try:
            [key] = [k for k in client.scan_iter("rev:*:lease")]
            holder = {"host": "elsewhere", "pid": 1, "since": "2026-01-01T00:00:00+00:00", "token": 10**9,
                      "role": "daemon"}
            client.set(key, json.dumps(holder), px=60_000)  # another host took the wallet over
        finally:
            client.close()
        daemon.wait(60)
    except BaseException:
        print(log_tail(daemon))
        raise
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == ExitCode.LEASE_LOST == 10
