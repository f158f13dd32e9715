"""The embedded Redis is started only when its recorded process is dead (pid and start time)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from revagent.errors import RedisUnavailableError
from revagent.store.server import EmbeddedRedis, ping, process_start_time, servers_for_dir


@pytest.fixture
def embedded(tmp_path: Path) -> object:
    server = EmbeddedRedis(tmp_path)
    yield server
    for pid in servers_for_dir(server.directory):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)


def test_a_stalled_server_is_waited_for_and_never_doubled(embedded: EmbeddedRedis) -> None:
    url = embedded.ensure_running()
    [pid] = servers_for_dir(embedded.directory)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(RedisUnavailableError, match="does not answer"):
            embedded.ensure_running(wait=1.5)
        assert servers_for_dir(embedded.directory) == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert embedded.ensure_running() == url and servers_for_dir(embedded.directory) == [pid]


def test_a_reused_pid_is_not_taken_for_the_server(embedded: EmbeddedRedis) -> None:
    embedded.directory.mkdir(parents=True)
    # the record names a live process (this one) with another start time: the pid was reused
    record = {"pid": os.getpid(), "start_time": (process_start_time(os.getpid()) or 0) + 1,
              "url": "unix:///nowhere/redis.sock"}
    (embedded.directory / "server.json").write_text(json.dumps(record))
    assert embedded.live_pid() is None
    url = embedded.ensure_running()
    assert ping(url) and len(servers_for_dir(embedded.directory)) == 1


def test_a_killed_server_is_started_again_on_its_data_dir(embedded: EmbeddedRedis) -> None:
    url = embedded.ensure_running()
    [pid] = servers_for_dir(embedded.directory)
    os.kill(pid, signal.SIGKILL)
    while process_start_time(pid) is not None:  # reaped by init (it was started detached)
        time.sleep(0.01)
    assert embedded.ensure_running() == url
    [again] = servers_for_dir(embedded.directory)
    assert again != pid
