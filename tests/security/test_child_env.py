"""No child process revagent starts (the paper venue, the embedded Redis, any other) inherits a
secret: planted canaries in the shell's environment never show in a child's environ or argv."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.foundation.redis_procs import log_tail, owner_pid, redis_servers_for, revagent, wait_for

CANARY_AGENT = "0x" + "c0ffee" * 10 + "beef"
CANARY_API = "sk-ant-api03-CANARY" + "7" * 40
CANARY_MAINNET = "0x" + "deadbeef" * 8


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def _environ_and_argv(pid: int) -> str:
    raw = b""
    for name in ("environ", "cmdline"):
        try:
            raw += Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b"\n")
        except OSError:
            continue
    return raw.decode(errors="replace")


@pytest.mark.timeout(300)
def test_no_child_process_inherits_a_secret(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVAGENT_REDIS__URL")  # the embedded Redis: a child of revagent too
    env = {**os.environ, "CANARY_AGENT_KEY": CANARY_AGENT, "ANTHROPIC_API_KEY": CANARY_API,
           "HL_MAINNET_PRIVATE_KEY": CANARY_MAINNET}
    daemon = subprocess.Popen([sys.executable, "-m", "revagent", "daemon"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: owner_pid(env) == daemon.pid, timeout=90, what="the daemon to own the wallet")
        record = revagent_home / "data" / "venue" / "sim.json"
        wait_for(record.exists, timeout=90, what="the paper venue")
        out = revagent("positions", "--json", env=env)
        assert out.returncode == 0, out.stderr
        children = {int(json.loads(record.read_text())["pid"]), *redis_servers_for(revagent_home / "data"),
                    *_children_of(daemon.pid)}
        assert len(children) >= 2
        for pid in sorted(children):
            seen = _environ_and_argv(pid)
            assert seen, f"could not read process {pid}"
            for canary in (CANARY_AGENT[2:], CANARY_API, CANARY_MAINNET[2:], "ANTHROPIC_API_KEY"):
                assert canary not in seen, f"process {pid} holds a secret: {seen[:300]}"
    except BaseException:
        print(log_tail(daemon))
        raise
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
