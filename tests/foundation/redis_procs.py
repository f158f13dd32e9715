"""Helpers for whole-process tests of the embedded Redis: its processes, its pid, a daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def redis_servers_for(data_dir: Path) -> list[int]:
    """The pids of every live redis-server working in this data dir's embedded Redis dir.

    redis-server rewrites its command line (its title) and changes into its `--dir`, so the working
    directory is what names its data dir."""
    target = os.path.realpath(data_dir / "redis")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].split(b" ")[0]
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][:1]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if state != "Z" and title.endswith(b"redis-server") and cwd == target:
            pids.append(int(entry.name))
    return sorted(pids)


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
