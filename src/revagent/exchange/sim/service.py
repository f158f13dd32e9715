"""The paper venue as a shared background service, started on demand like the embedded Redis.

Every revagent process of the user (TUI, daemon, shell CLI) calls `ensure_running(state_dir)` and gets the
same venue's base URL. Files in `state_dir`: `venue.json` (the venue's state), `sim.json` (pid, port, url
of the process revagent started), `sim.log`, `sim.lock`. Blocking functions: call them from async code
through `asyncio.to_thread`. `stop` never signals a process whose pid file and command line do not match.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from revagent.childenv import child_env

STATE_NAME = "venue.json"
PID_NAME = "sim.json"
LOG_NAME = "sim.log"
LOCK_NAME = "sim.lock"


class VenueUnavailable(RuntimeError):
    """The paper venue could not be started or does not answer; the message says why."""


@dataclass(frozen=True, slots=True)
class VenueStatus:
    running: bool
    url: str | None
    pid: int | None
    state_file: Path
    started_by_revagent: bool


def _pid_record(state_dir: Path) -> dict[str, object] | None:
    try:
        doc = json.loads((state_dir / PID_NAME).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _is_ours(pid: int, state_dir: Path) -> bool:
    """The process `pid` is alive and is a simulator serving this state directory."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in cmdline]
    return "serve" in args and str(state_dir / STATE_NAME) in args and any("revagent" in a for a in args)


def _price_source_of(pid: int) -> tuple[str, str] | None:
    """(prices, upstream) the venue process `pid` was started with, read from its command line (the truth for
    a venue started by any revagent version); None when it cannot be read."""
    try:
        args = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return None
    options = {"--prices": "synthetic", "--upstream": ""}  # `revagent sim serve`'s defaults
    for i, arg in enumerate(args[:-1]):
        if arg in options:
            options[arg] = args[i + 1]
    return options["--prices"], options["--upstream"]


def _same_source(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """The same market: equal `prices`, and for live the same upstream ("" is Hyperliquid mainnet)."""
    if a[0] != b[0]:
        return False
    if a[0] != "live":
        return True
    from revagent.exchange.sim.upstream import MAINNET_URL  # aiohttp with it: only for a live venue

    return (a[1] or MAINNET_URL).rstrip("/") == (b[1] or MAINNET_URL).rstrip("/")


def _describe(source: tuple[str, str]) -> str:
    return f"prices {source[0]}" + (f" from upstream {source[1] or 'Hyperliquid mainnet'}" if source[0] == "live"
                                    else "")


def _answers(url: str, timeout: float = 2.0) -> bool:
    req = urllib.request.Request(url + "/info", data=b'{"type":"allMids"}',
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def status(state_dir: Path) -> VenueStatus:
    """Whether the venue for `state_dir` runs (its process is ours and it answers), and where."""
    rec = _pid_record(state_dir)
    state_file = state_dir / STATE_NAME
    if rec is None:
        return VenueStatus(False, None, None, state_file, False)
    pid, url = rec.get("pid"), rec.get("url")
    if not isinstance(pid, int) or not isinstance(url, str) or not _is_ours(pid, state_dir):
        return VenueStatus(False, None, None, state_file, False)
    return VenueStatus(_answers(url), url, pid, state_file, True)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_running(state_dir: Path, *, seed: int = 0, prices: str = "synthetic", balance: str = "10000",
                   controls: bool = False, timeout: float = 20.0, upstream: str = "") -> str:
    """The base URL of the paper venue for `state_dir`, starting it (detached) when none runs.

    Reuses a live venue started earlier (by any process) when it runs the same price source (`prices`, and for
    live the `upstream`); a venue on another source is refused with VenueUnavailable naming both (restarting
    it would pull it from under the processes using it: `revagent server stop --only venue` does that, and
    refuses while a session is live). Raises VenueUnavailable when a new one does not answer within `timeout`
    seconds (its log is in `state_dir/sim.log`).
    """
    with _locked(state_dir):
        current = status(state_dir)
        if current.running and current.url is not None:
            running = _price_source_of(current.pid) if current.pid is not None else None
            wanted = (prices, upstream)
            if running is not None and not _same_source(running, wanted):
                raise VenueUnavailable(
                    f"the paper venue at {current.url} runs {_describe(running)}, but the configuration asks "
                    f"{_describe(wanted)}: stop it with `revagent server stop --only venue` (its accounts are "
                    f"kept) and it starts again with the configured prices")
            return current.url
        port_file = state_dir / "sim.port"
        port_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "revagent.cli.sim", "serve", "--port", "0", "--seed", str(seed),
               "--prices", prices, "--balance", balance, "--state", str(state_dir / STATE_NAME),
               "--port-file", str(port_file)]
        if upstream:
            cmd += ["--upstream", upstream]
        if controls:
            cmd.append("--controls")
        with open(state_dir / LOG_NAME, "ab") as log:
            # an explicit minimal environment: the venue outlives its parent and must hold no secret
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                    close_fds=True, env=child_env(python=True))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise VenueUnavailable(f"the paper venue exited with code {proc.returncode}; "
                                       f"see {state_dir / LOG_NAME}")
            if port_file.exists():
                url = f"http://127.0.0.1:{int(port_file.read_text())}"
                if _answers(url):
                    tmp = state_dir / (PID_NAME + ".tmp")
                    tmp.write_text(json.dumps({"pid": proc.pid, "url": url, "started_at": time.time()}))
                    os.replace(tmp, state_dir / PID_NAME)
                    return url
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        raise VenueUnavailable(f"the paper venue did not answer within {timeout:.0f}s; see {state_dir / LOG_NAME}")


def price_source(url: str, timeout: float = 2.0) -> dict[str, object] | None:
    """Where the venue at `url` takes its prices from (`summary` is one line for a status), or None when it
    does not say (another venue, or no answer)."""
    req = urllib.request.Request(url.rstrip("/") + "/info", data=b'{"type":"revagentPriceSource"}',
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            doc = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the venue revagent started for `state_dir`; False when none of ours runs (nothing is signalled)."""
    with _locked(state_dir):
        rec = _pid_record(state_dir)
        pid = rec.get("pid") if rec is not None else None
        if not isinstance(pid, int) or not _is_ours(pid, state_dir):
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_ours(pid, state_dir):
            time.sleep(0.05)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when this process was its parent
        if _is_ours(pid, state_dir):
            os.kill(pid, signal.SIGKILL)
        (state_dir / PID_NAME).unlink(missing_ok=True)
        return True
