"""A stalled embedded Redis (SIGSTOP) never gets a second server, and the wallet never a second owner.

A daemon owns the paper wallet on the embedded Redis; the server is stopped for a while; meanwhile a
one-shot `ping` runs (it pings the server, and with no owner it would take the lease itself). Exactly
one redis-server serves the data dir the whole time, the ping is answered by the daemon (or fails
with exit 5, Redis unreachable), and the daemon still owns the wallet afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.foundation.redis_procs import log_tail, owner_pid, redis_servers_for, start_daemon, wait_for


@pytest.fixture
def embedded_env(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("REVAGENT_REDIS__URL")  # the embedded Redis under the test's data dir
    return dict(os.environ)


def _stall_under_a_daemon(home: Path, env: dict[str, str], seconds: float, *, past_the_lease: bool = False) -> None:
    data = home / "data"
    daemon = start_daemon(env)
    try:
        wait_for(lambda: owner_pid(env) == daemon.pid, timeout=90, what="the daemon to own the wallet")
        [server] = redis_servers_for(data)
        os.kill(server, signal.SIGSTOP)
        try:
            ping = subprocess.Popen([sys.executable, "-m", "revagent", "ping", "--json", "--timeout", "60"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seen: set[int] = set()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                servers = redis_servers_for(data)
                seen.update(servers)
                assert servers == [server], f"a second redis-server for one data dir: {servers}"
                time.sleep(0.1)
        finally:
            os.kill(server, signal.SIGCONT)
        out, err = ping.communicate(timeout=120)
        assert redis_servers_for(data) == [server] and seen == {server}
        if ping.returncode == 0:
            answer = json.loads(out)
            assert answer["via"] == "owner" and answer["pid"] == daemon.pid, answer
        else:
            assert ping.returncode == 5, (ping.returncode, out, err)
        if past_the_lease and daemon.poll() is not None:
            # a stall past the lease's TTL may cost the daemon its lease: it then stops, never to
            # leave a second owner, with the code that tells its supervisor to restart it
            assert daemon.returncode not in (0, 4, 7), daemon.returncode
            assert owner_pid(env) is None
        else:
            assert daemon.poll() is None, "the daemon died under a Redis stall"
            assert owner_pid(env) == daemon.pid
        assert redis_servers_for(data) == [server]
    except BaseException:
        print(log_tail(daemon))
        raise
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seconds", [2, 5])
def test_a_stalled_redis_gets_no_second_server_and_the_wallet_no_second_owner(
        revagent_home: Path, embedded_env: dict[str, str], seconds: float) -> None:
    _stall_under_a_daemon(revagent_home, embedded_env, seconds)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REVAGENT_LONG_TESTS"), reason="the long form: REVAGENT_LONG_TESTS=1")
@pytest.mark.timeout(400)
def test_a_30s_redis_stall_gets_no_second_server(revagent_home: Path, embedded_env: dict[str, str]) -> None:
    _stall_under_a_daemon(revagent_home, embedded_env, 30, past_the_lease=True)
