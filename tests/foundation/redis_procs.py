"""Helpers for whole-process tests of the embedded Redis: its processes, its pid, a daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from revagent.store.server import servers_for_dir


def redis_servers_for(data_dir: Path) -> list[int]:
    """The pids of every live redis-server working in this data dir's embedded Redis dir (the same
    scan the embedded server uses before it would ever start one)."""
    return servers_for_dir(data_dir / "redis")


def revagent(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or dict(os.environ))


def start_daemon(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "revagent", "daemon"], env=env or dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def owner_pid(env: dict[str, str] | None = None) -> int | None:
    """The pid of the wallet's owner as `revagent status` reports it (None when there is none)."""
    st = revagent("status", "--json", env=env, timeout=60)
    if st.returncode != 0:
        return None
    owner = json.loads(st.stdout).get("owner")
    return int(owner["pid"]) if owner else None


def wait_for(check: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


def log_tail(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    try:
        _, err = proc.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):
        return ""
    return "\n".join((err or "").splitlines()[-60:])
