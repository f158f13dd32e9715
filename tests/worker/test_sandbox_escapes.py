"""Escapes from the python worker, each tried for real and contained: an assertion on the worker's
result and one on the host afterwards. The jobs run concurrently (four at a time) in one module
fixture, against a real simulator (the paper venue) on loopback and the tests' real Redis; once
under bubblewrap (skipped, with the reason, where `bwrap` is not installed) and once under the
unshare path.

Skipped (with the reason) only where this machine gives no confinement at all: the tool refuses
to run there too (tests/worker/test_run_python.py checks that refusal)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import revagent
from revagent.exchange.sim import SimConfig, SimServer
from revagent.store.server import RedisProcess
from revagent.worker import Limits, Worker, WorkerResult, detect
from revagent.worker.sandbox import MECHANISMS, Mechanism

CANARY_KEY = "0x" + "c0ffee" * 10 + "beef"
CANARY_API = "sk-ant-api03-WORKERCANARY" + "7" * 30
LIMITS = Limits(wall_s=8.0, cpu_s=2, memory_bytes=1536 << 20, processes=8)
LOOP_LIMITS = Limits(wall_s=40.0, cpu_s=1)
"""The endless loop gets a long wall time: under load (2 shared cores) its 1-2 CPU seconds take longer."""

pytestmark = [pytest.mark.usefixtures("confinement"), pytest.mark.timeout(120)]


@dataclass
class Host:
    home: Path
    key_file: Path
    user_config: Path
    marker: Path
    venue_port: int
    redis_socket: str
    parent_pid: int


def jobs(h: Host) -> dict[str, str]:
    return {
        "key_file": f"""
for p in [{str(h.key_file)!r}, {str(h.user_config)!r}, {str(h.home)!r}]:
    try:
        print(p, open(p).read() if not __import__('os').path.isdir(p) else __import__('os').listdir(p))
    except OSError as e:
        print(p, type(e).__name__)
""",
        "home_config": """
import os
for p in [os.path.expanduser('~/.config/revagent'), '/root/.config/revagent', '/root', '/etc/passwd']:
    try:
        print(p, os.listdir(p) if os.path.isdir(p) else open(p).read()[:100])
    except OSError as e:
        print(p, type(e).__name__)
""",
        "environ": f"""
import os
print(dict(os.environ))
for pid in [{h.parent_pid}, 1, os.getppid()]:
    try:
        print(pid, open(f'/proc/{{pid}}/environ', 'rb').read())
    except OSError as e:
        print(pid, type(e).__name__)
print(sorted(os.listdir('/proc'))[:20])
""",
        "venue_socket": f"""
import socket
for host in ['127.0.0.1', 'localhost', '::1']:
    try:
        socket.create_connection((host, {h.venue_port}), timeout=2)
        print(host, 'CONNECTED')
    except OSError as e:
        print(host, type(e).__name__)
import urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:{h.venue_port}/info', timeout=2)
    print('HTTP CONNECTED')
except OSError as e:
    print('http', type(e).__name__)
""",
        "redis_socket": f"""
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({h.redis_socket!r})
    print('CONNECTED')
except OSError as e:
    print('unix', type(e).__name__)
for port in [6379, 6380]:
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2)
        print('CONNECTED')
    except OSError as e:
        print(port, type(e).__name__)
""",
        "shell": f"""
import os, subprocess
print('system', os.system('touch {h.marker}.shell'))
for argv in [['/bin/sh', '-c', 'touch {h.marker}.sh'], ['sh', '-c', 'id'], ['bash']]:
    try:
        subprocess.run(argv, timeout=2)
        print(argv[0], 'RAN')
    except OSError as e:
        print(argv[0], type(e).__name__)
""",
        "fork_bomb": """
import os, time
n = 0
try:
    for _ in range(10_000):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as e:
    print('stopped', type(e).__name__)
print('forks', n)
""",
        "alloc_10gb": "x = bytearray(10 * 1024 ** 3)\nprint('ALLOCATED')",
        "loop": "while True:\n    pass",
        "write_outside": f"""
import os
inside_src = {str(Path(revagent.__file__).parent / 'escape.py')!r}
for p in [{str(h.marker)!r}, '/usr/lib/escape', '/sandbox/escape', '/escape', inside_src]:
    try:
        open(p, 'w').write('x')
        print(p, 'WROTE')
    except OSError as e:
        print(p, type(e).__name__)
open('/tmp/inside.txt', 'w').write('fine')
print('tmp', open('/tmp/inside.txt').read())
try:
    open('/tmp/big', 'wb').write(b'x' * (200 << 20))
except OSError as e:
    print('big', type(e).__name__)
""",
        "proc_and_exec": """
import os, shutil, subprocess, sys
targets = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/hostname', '/proc/sysrq-trigger']
for p in [*targets, '/proc/self/oom_score_adj']:
    try:
        open(p, 'w').write('|/tmp/x')
        print(p, 'WROTE')
    except OSError as e:
        print(p, type(e).__name__)
shutil.copy(sys.executable, '/tmp/py')
os.chmod('/tmp/py', 0o755)
try:
    subprocess.run(['/tmp/py', '-c', 'print(1)'], timeout=5)
    print('exec RAN')
except OSError as e:
    print('exec', type(e).__name__)
""",
        "print_100mb": "print('x' * 100_000_000)\n'done'",
        "import_revagent": f"""
import sys
sys.path.insert(0, {str(Path(revagent.__file__).parent.parent)!r})
try:
    import revagent.gateway
    print('IMPORTED')
except ImportError as e:
    print('import', type(e).__name__, e)
""",
    }


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisProcess) -> Iterator[Host]:
    home = tmp_path_factory.mktemp("home")
    key_file = home / ".config" / "revagent" / "keys" / "agent.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text(CANARY_KEY)
    key_file.chmod(0o600)
    marker = Path("/tmp") / f"revagent-escape-{uuid.uuid4().hex}"
    yield Host(home, key_file, home / ".config" / "revagent", marker, 0,
               redis_server.url.removeprefix("unix://"), os.getpid())
    for leftover in Path("/tmp").glob(marker.name + "*"):
        leftover.unlink()


@pytest.fixture(scope="module", params=["bwrap", "unshare"])
def mechanism(request: pytest.FixtureRequest) -> Mechanism:
    """Each escape is tried under bubblewrap (where `bwrap` is installed) and under the unshare path
    (`root` as root, else `userns`): the same guarantees, both checked."""
    if request.param == "bwrap":
        if shutil.which("bwrap") is None:
            pytest.skip("bubblewrap (`bwrap`) is not installed here: the unshare path is what runs")
        return "bwrap"
    found = detect(skip=("bwrap",))
    if found not in MECHANISMS:
        pytest.skip(f"no unshare path here ({found}): bubblewrap is what runs")
    return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def results(host: Host, mechanism: Mechanism) -> dict[str, WorkerResult]:
    """Every escape run once, four at a time, with the API key canary in this process's environment."""
    os.environ["ANTHROPIC_API_KEY"] = CANARY_API
    try:
        found = asyncio.run(_run_all(host, mechanism))
    finally:
        del os.environ["ANTHROPIC_API_KEY"]
    if any(r.mechanism != mechanism for r in found.values()):
        pytest.fail(f"not every escape ran under {mechanism}")
    return found


async def _run_all(host: Host, mechanism: Mechanism) -> dict[str, WorkerResult]:
    venue = SimServer(SimConfig.exchange_like(seed=1))
    await venue.start()
    try:
        host.venue_port = int(venue.base_url.rsplit(":", 1)[1])
        gate = asyncio.Semaphore(4)

        async def one(name: str, code: str) -> WorkerResult:
            async with gate:
                limits = LOOP_LIMITS if name == "loop" else LIMITS
                return await (await Worker.start(limits, mechanism=mechanism)).run(code)

        todo = jobs(host)
        done = await asyncio.gather(*(one(name, code) for name, code in todo.items()))
        # the venue still answers the host: the worker's attempt reached nothing, broke nothing
        with socket.create_connection(("127.0.0.1", host.venue_port), timeout=2):
            pass
        return dict(zip(todo, done, strict=True))
    finally:
        await venue.stop()


def _text(r: WorkerResult) -> str:
    return f"{r.stdout}\n{r.value}\n{r.error}"


def test_the_agent_key_file_and_the_config_dir_are_not_in_the_view(results: dict[str, WorkerResult],
                                                                      host: Host) -> None:
    r = results["key_file"]
    assert r.ok, r.error
    assert CANARY_KEY not in _text(r)
    assert r.stdout.count("FileNotFoundError") == 3
    assert host.key_file.read_text() == CANARY_KEY  # untouched on the host


def test_home_and_root_config_are_not_visible(results: dict[str, WorkerResult]) -> None:
    r = results["home_config"]
    assert r.ok, r.error
    assert r.stdout.count("FileNotFoundError") == 3, r.stdout  # ~/.config/revagent, /root/.config, /etc/passwd
    root_line = next(line for line in r.stdout.splitlines() if line.startswith("/root "))
    assert ".config" not in root_line  # only the mount point of the interpreter's install, if it lives there


def test_no_secret_in_the_environment_and_the_parent_is_invisible(results: dict[str, WorkerResult],
                                                                 host: Host) -> None:
    r = results["environ"]
    assert r.ok, r.error
    assert CANARY_API not in _text(r)
    assert "ANTHROPIC" not in r.stdout and "REVAGENT" not in r.stdout
    assert f"{host.parent_pid} FileNotFoundError" in r.stdout  # a new PID namespace: the host's pids do not exist
    assert os.environ.get("ANTHROPIC_API_KEY") is None or CANARY_API not in os.environ.get("ANTHROPIC_API_KEY", "")


def test_no_network_the_venue_is_unreachable(results: dict[str, WorkerResult]) -> None:
    r = results["venue_socket"]
    assert r.ok, r.error
    assert "CONNECTED" not in r.stdout
    assert r.stdout.count("OSError") + r.stdout.count("Error") >= 3, r.stdout


def test_redis_is_unreachable(results: dict[str, WorkerResult]) -> None:
    r = results["redis_socket"]
    assert r.ok, r.error
    assert "CONNECTED" not in r.stdout
    assert "unix FileNotFoundError" in r.stdout  # the socket file is not in the view


def test_no_shell_can_be_spawned(results: dict[str, WorkerResult], host: Host) -> None:
    r = results["shell"]
    assert r.ok, r.error
    assert "RAN" not in r.stdout
    assert not Path(f"{host.marker}.shell").exists() and not Path(f"{host.marker}.sh").exists()


def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_nothing(results: dict[str, WorkerResult]) -> None:
    r = results["fork_bomb"]
    assert r.ok, r.error
    assert "stopped BlockingIOError" in r.stdout
    forks = int(r.stdout.split("forks ")[1].split()[0])
    assert forks < LIMITS.processes
    # the worker's PID namespace is gone with it: no process of a worker uid is left on the host
    time.sleep(0.2)
    assert not _worker_processes()


def _worker_processes() -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid >= 100_000 and b"runner.py" in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def test_a_10gb_allocation_is_a_memory_error(results: dict[str, WorkerResult]) -> None:
    r = results["alloc_10gb"]
    assert not r.ok
    assert "MemoryError" in (r.error or "")
    assert "ALLOCATED" not in r.stdout


def test_an_infinite_loop_hits_the_cpu_limit(results: dict[str, WorkerResult]) -> None:
    r = results["loop"]
    assert not r.ok
    assert "CPU time limit (1 s)" in (r.error or "")
    assert r.wall_s < LOOP_LIMITS.wall_s


def test_nothing_is_written_outside_the_private_tmp(results: dict[str, WorkerResult], host: Host) -> None:
    r = results["write_outside"]
    assert r.ok, r.error
    lines = r.stdout.splitlines()
    # the host's /tmp path lands in the worker's private tmpfs (it "works" there, and is gone after)
    assert lines[0] == f"{host.marker} WROTE"
    assert all(line.endswith(("OSError", "FileNotFoundError")) for line in lines[1:5]), lines  # read-only or absent
    assert "tmp fine" in r.stdout
    assert "big OSError" in r.stdout  # the private tmp is bounded (64 MiB) and so is a file (32 MiB)
    assert not host.marker.exists()
    assert not (Path(revagent.__file__).parent / "escape.py").exists()
    assert not Path("/tmp/inside.txt").exists() or Path("/tmp/inside.txt").read_text() != "fine"


def test_proc_is_read_only_and_a_dropped_binary_cannot_run(results: dict[str, WorkerResult]) -> None:
    r = results["proc_and_exec"]
    assert r.ok, r.error
    assert "WROTE" not in r.stdout and "RAN" not in r.stdout, r.stdout
    assert r.stdout.count("OSError") + r.stdout.count("PermissionError") >= 4, r.stdout
    assert "exec PermissionError" in r.stdout  # /tmp is noexec
    assert Path("/proc/sys/kernel/core_pattern").read_text().strip() != "|/tmp/x"


def test_printing_100mb_is_cut_with_a_marker(results: dict[str, WorkerResult]) -> None:
    r = results["print_100mb"]
    assert r.ok, r.error
    assert len(r.stdout) == LIMITS.stdout_chars
    assert r.stdout_cut == 100_000_001 - LIMITS.stdout_chars
    assert r.value == "'done'"


def test_revagent_cannot_be_imported_so_the_gateway_is_out_of_reach(results: dict[str, WorkerResult]) -> None:
    r = results["import_revagent"]
    assert r.ok, r.error
    assert "IMPORTED" not in r.stdout
    assert "ModuleNotFoundError" in r.stdout


async def test_a_sleep_past_the_wall_time_is_stopped() -> None:
    started = time.monotonic()
    worker = await Worker.start(Limits(wall_s=3.0))
    r = await worker.run("import time\ntime.sleep(600)")
    assert not r.ok and "wall time limit" in (r.error or "")
    assert time.monotonic() - started < 15
    assert worker.proc.returncode is not None
