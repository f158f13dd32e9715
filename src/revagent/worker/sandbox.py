"""The confined worker process: start it, hand it one job, read its bounded result, never block.

`detect()` says which confinement this machine gives (or why none): `root` when revagent runs as
root (util-linux `unshare` without a user namespace; the worker then runs as a fresh unprivileged
uid), `userns` otherwise (`unshare --map-root-user`; every capability dropped). Both build the same
view (`worker._enter`). Without either, `Worker.start` raises `SandboxUnavailable` and nothing runs:
there is no unconfined fallback. The guarantees, and where each holds, are in docs/WORKER.md.

A `Worker` is started before its job (it imports numpy, pandas and matplotlib while idle) and runs
exactly one job. `WorkerPool` keeps one spare warm per session (task `worker:spare`, owned by the
pool, ended by `aclose`), from the engine's start on (`WorkerPool.start`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import site
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from revagent.childenv import child_env
from revagent.worker.figures import FigureStore

log = logging.getLogger(__name__)

Mechanism = Literal["bwrap", "root", "userns"]
MECHANISMS: tuple[Mechanism, ...] = ("bwrap", "root", "userns")
HERE = Path(__file__).resolve().parent
INDICATORS = HERE.parent / "engine" / "indicators.py"
"""Copied into the worker's read-only library dir (pure functions, no revagent import)."""
MiB = 1 << 20


class SandboxUnavailable(RuntimeError):
    """No confinement works on this machine: the code is not run."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 20.0
    """From the job's hand-over (or, for a worker not ready yet, its ready byte) to its result; the
    worker is killed (its whole PID namespace) past it."""
    ready_s: float = 60.0
    """A cold worker's start (the sandbox set-up and the imports: seconds under load) until its ready
    byte; past it the worker is killed. Not counted in `wall_s`."""
    cpu_s: int = 10
    memory_bytes: int = 2048 * MiB
    """Address space (RLIMIT_AS): an allocation past it is a MemoryError in the code."""
    tmp_bytes: int = 64 * MiB
    file_bytes: int = 32 * MiB
    open_files: int = 64
    processes: int = 16
    """Processes and threads of the worker's own uid (mechanism `root`); see docs/WORKER.md for `userns`."""
    stdout_chars: int = 20_000
    value_chars: int = 4_000
    figure_bytes: int = 1_500_000
    result_bytes: int = 4 * MiB
    """The result JSON read from the worker: past it the worker is killed and the run is an error."""
    cpu_hard_s: int = 120
    """An absolute CPU cap set before the runner starts (the job's own limit is set under it)."""

    def job(self) -> dict[str, Any]:
        return {"cpu_s": self.cpu_s, "stdout_chars": self.stdout_chars, "value_chars": self.value_chars,
                "figure_bytes": self.figure_bytes}


@dataclass(frozen=True)
class WorkerResult:
    ok: bool
    stdout: str = ""
    stdout_cut: int = 0
    value: str | None = None
    value_cut: int = 0
    error: str | None = None
    figure_png: bytes | None = None
    figure_sparkline: str | None = None
    """The figure's first line as text-art (at most 48 block characters), for the TUI."""
    note: str | None = None
    elapsed_s: float = 0.0
    wall_s: float = 0.0
    mechanism: str = ""
    warm: bool = False
    """The worker was ready (its libraries imported) before the job was handed over."""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("figure_png")
        doc["figure_bytes"] = len(self.figure_png) if self.figure_png else 0
        return doc


_FAILED: dict[Mechanism, str] = {}
"""Mechanisms whose set-up failed in this process (why), so the next worker tries the next one."""


def detect(*, skip: tuple[Mechanism, ...] = ()) -> Mechanism | str:
    """The mechanism this process can use, or the reason there is none (a sentence): `bwrap`
    (bubblewrap) when it is on PATH, then util-linux `unshare`: `root` when running as root, then
    `userns`; skipping those in `skip` and any whose set-up already failed here."""
    if not sys.platform.startswith("linux"):
        return f"the python worker needs Linux namespaces; this is {sys.platform}"
    order: list[Mechanism] = []
    if shutil.which("bwrap") is not None:
        order.append("bwrap")
    if shutil.which("unshare") is not None:
        order += ["root", "userns"] if os.geteuid() == 0 else ["userns"]
    if not order:
        return "the python worker needs bubblewrap (`bwrap`) or util-linux `unshare` (neither is on PATH)"
    for mech in order:
        if mech not in _FAILED and mech not in skip:
            return mech
    return "; ".join(f"{m}: {why}" for m, why in _FAILED.items()) or "no mechanism left to try"


def _own_processes() -> int:
    uid, n = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry.path).st_uid == uid:
                    n += 1
    return n


def _site_dirs() -> list[str]:
    """The venv's (or the install's) package dirs: numpy, pandas, matplotlib. The runner adds them to
    its path without their `.pth` files (the editable install's hook to revagent's source is one)."""
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return sorted({d for d in dirs if os.path.isdir(d)})


def _site_binds() -> list[list[str]]:
    """Each package dir and where the worker sees it: `/site/N`, never its own path (a venv under /tmp
    would sit under the worker's private /tmp, which is mounted over it)."""
    return [[src, f"/site/{i}"] for i, src in enumerate(_site_dirs())]


def _view() -> tuple[list[str], dict[str, str]]:
    """The read-only paths: the system libraries (no /usr/bin: no shell, no tool), the interpreter's
    binary and standard library, and the package dirs; plus the root's symlinks (merged /usr)."""
    exe = os.path.realpath(sys.executable)
    stdlib = sysconfig.get_paths()["stdlib"]
    paths = {exe, stdlib, os.path.join(sys.base_prefix, "lib")}  # the package dirs: `_site_binds`
    for lib in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"):
        paths.add(lib)
    links: dict[str, str] = {}
    for top in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            links[top] = os.readlink(top)
        elif os.path.isdir(top):
            paths.add(top)
    ordered = sorted(os.path.realpath(p) for p in paths if os.path.exists(p))
    # a path inside another one is already in the view
    kept = [p for p in ordered if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in ordered)]
    return kept, links


def _runner_env() -> dict[str, str]:
    """The runner's whole environment: nothing inherited (no key, no API key, no Redis URL)."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "TZ": "UTC",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.mpl", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class Worker:
    """One confined process, started ahead of its job, serving exactly one."""

    def __init__(self, proc: asyncio.subprocess.Process, tmp: Path, mechanism: Mechanism, limits: Limits,
                 started: float) -> None:
        self.proc, self.tmp, self.mechanism, self.limits, self.started = proc, tmp, mechanism, limits, started
        self._used = False
        self._ready = False

    async def ready(self, timeout: float = 30.0) -> bool:
        """Wait until the worker has imported its libraries (its first byte); False if it died first."""
        if not self._ready:
            assert self.proc.stdout is not None
            try:
                first = await asyncio.wait_for(self.proc.stdout.readexactly(1), timeout)
            except (asyncio.IncompleteReadError, TimeoutError):
                return False
            self._ready = first == b"R"
        return self._ready

    @classmethod
    async def start(cls, limits: Limits | None = None, *, mechanism: Mechanism | None = None) -> Worker:
        limits = limits or Limits()
        found = mechanism or detect()
        if found not in MECHANISMS:
            raise SandboxUnavailable(found)
        mech: Mechanism = "bwrap" if found == "bwrap" else "root" if found == "root" else "userns"
        as_root = os.geteuid() == 0
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="revagent-worker-"))
        try:
            lib = tmp / "lib"
            await asyncio.to_thread(_write_lib, lib)
            (tmp / "root").mkdir()
            ro, links = await asyncio.to_thread(_view)
            python, binds = await asyncio.to_thread(os.path.realpath, sys.executable), _site_binds()
            sites = [inside for _, inside in binds]
            own_uid = mech == "root" or (mech == "bwrap" and as_root)  # the worker runs as a fresh uid
            processes = limits.processes if own_uid else limits.processes + await asyncio.to_thread(_own_processes)
            plan = {"root": str(tmp / "root"), "ro": ro, "lib": str(lib), "links": links, "mechanism": mech,
                    "uid": 100_000 + secrets.randbelow(1_000_000_000), "tmp_bytes": limits.tmp_bytes,
                    "python": python, "runner": "/sandbox/runner.py", "site": sites, "site_binds": binds,
                    "env": _runner_env(),
                    "drop_uid": own_uid,
                    "limits": {"memory_bytes": limits.memory_bytes, "cpu_hard_s": limits.cpu_hard_s,
                               "file_bytes": limits.file_bytes, "open_files": limits.open_files,
                               "processes": processes}}
            if mech == "bwrap":
                argv = [*_bwrap_argv(plan, as_root), python, "-I", "-S", "-B", "/sandbox/enter.py", json.dumps(plan)]
            else:
                argv = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child=SIGKILL"]
                if mech == "userns":
                    argv.append("--map-root-user")
                argv += [sys.executable, "-I", "-S", "-B", str(HERE / "_enter.py"), json.dumps(plan)]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=child_env(), start_new_session=True, cwd="/")
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
            raise
        return cls(proc, tmp, mech, limits, time.monotonic())

    async def run(self, code: str, inputs: dict[str, Any] | None = None) -> WorkerResult:
        """Hand over the job, read the result (bounded, within the wall time), end the worker."""
        if self._used:
            raise RuntimeError("a worker runs one job")
        self._used = True
        limits, warm = self.limits, self._ready
        job = json.dumps({"code": code, "inputs": inputs or {}, "limits": limits.job()}, default=str).encode()
        began = time.monotonic()
        try:
            raw, problem = await self._exchange(job)
        finally:
            await self.close()
        wall = round(time.monotonic() - began, 4)
        if problem is not None:
            return WorkerResult(False, error=problem, wall_s=wall, mechanism=self.mechanism)
        try:
            doc = json.loads(raw)
            png = base64.b64decode(doc["figure_png"]) if doc.get("figure_png") else None
            return WorkerResult(bool(doc.get("ok")), stdout=str(doc.get("stdout", "")),
                                stdout_cut=int(doc.get("stdout_cut", 0)), value=doc.get("value"),
                                value_cut=int(doc.get("value_cut", 0)), error=doc.get("error"), figure_png=png,
                                figure_sparkline=_sparkline(doc.get("figure_sparkline")),
                                note=doc.get("note"), elapsed_s=float(doc.get("elapsed_s", 0.0)), wall_s=wall,
                                mechanism=self.mechanism, warm=warm)
        except (ValueError, TypeError, KeyError) as exc:
            return WorkerResult(False, error=f"the worker's result was unreadable ({type(exc).__name__})",
                                wall_s=wall, mechanism=self.mechanism)

    async def _exchange(self, job: bytes) -> tuple[bytes, str | None]:
        proc, limits = self.proc, self.limits
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        chunks: list[bytes] = []
        size = 0

        async def read() -> str | None:
            nonlocal size
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                size += len(chunk)
                if size > limits.result_bytes:
                    return f"the result was over {limits.result_bytes:,} bytes; the worker was stopped"
                chunks.append(chunk)
            return None

        async def hand_over_then_read() -> str | None:
            assert proc.stdin is not None
            try:  # inside the wall time: a job larger than the pipe waits for the runner to read it
                proc.stdin.write(job)
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # it died before the job: its exit status says why
            return await read()

        try:  # a cold worker: its imports are bounded on their own, not in the job's wall time
            if not self._ready and not await self.ready(limits.ready_s) and proc.returncode is None:
                await asyncio.wait_for(proc.wait(), 2.0)  # no ready byte and still running: stopped below
        except TimeoutError:
            return b"", f"the worker was not ready within {limits.ready_s:g} s; it was stopped"
        if self._ready:
            try:
                problem = await asyncio.wait_for(hand_over_then_read(), limits.wall_s)
            except TimeoutError:
                return b"", f"wall time limit ({limits.wall_s:g} s) reached; the worker was stopped"
        else:
            problem = None  # it died before it was ready: its exit status says why
        if problem is not None:
            return b"", problem
        code = await proc.wait()
        if not self._ready:  # it ended before the runner started: the confinement could not be set up
            err = (await proc.stderr.read(4096)).decode(errors="replace").strip().splitlines()
            why = (err[-1] if err else "") or f"the sandbox set-up ended with status {code}"
            _FAILED[self.mechanism] = why
            raise SandboxUnavailable(why)
        if not chunks:
            return b"", f"the worker ended without a result (exit status {code})"
        return b"".join(chunks), None

    async def close(self) -> None:
        proc = self.proc
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await asyncio.to_thread(shutil.rmtree, self.tmp, True)


def _bwrap_argv(plan: dict[str, Any], as_root: bool) -> list[str]:
    """bubblewrap builds the same view as `_enter` does for `unshare` (see docs/WORKER.md): new
    user (as a user), mount, network, PID, IPC, UTS and cgroup namespaces, pivot_root into a tmpfs
    with only the plan's paths bound read-only, /dev with four devices, its own /proc; the root and
    /dev remounted read-only. `_enter` (bwrap mode) then mounts the noexec /tmp, makes /proc
    read-only and drops what bwrap left it (CAP_SYS_ADMIN for those mounts; as root CAP_SETUID and
    CAP_SETGID to become the fresh uid)."""
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN"]
    if as_root:  # no user namespace: `_enter` becomes a fresh unprivileged uid
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:  # uid 0 of a new user namespace (not --disable-userns: its nested namespace would own no mount)
        argv += ["--unshare-user", "--uid", "0", "--gid", "0", "--cap-add", "CAP_SETPCAP"]
    parents = sorted({str(parent) for path in plan["ro"] for parent in Path(path).parents if str(parent) != "/"})
    for parent in parents:  # traversable by the fresh uid (bwrap would copy a 0700 /root's mode)
        argv += ["--perms", "0755", "--dir", parent]
    for path in plan["ro"]:
        argv += ["--ro-bind", path, path]
    argv += ["--perms", "0755", "--dir", "/site"]  # traversable by the fresh uid
    for src, inside in plan["site_binds"]:
        argv += ["--perms", "0755", "--dir", inside, "--ro-bind", src, inside]
    for link, target in plan["links"].items():
        argv += ["--symlink", target, link]
    argv += ["--ro-bind", plan["lib"], "/sandbox", "--tmpfs", "/dev"]
    for dev in ("null", "zero", "random", "urandom"):
        argv += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
    argv += ["--proc", "/proc", "--dir", "/tmp", "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/"]
    return argv


def _sparkline(raw: Any) -> str | None:
    """The worker's text-art, trusted only as what it claims: at most 48 block characters."""
    if isinstance(raw, str) and 0 < len(raw) <= 48 and set(raw) <= set("▁▂▃▄▅▆▇█"):
        return raw
    return None


def _write_lib(lib: Path) -> None:
    lib.mkdir(mode=0o755)
    shutil.copyfile(HERE / "_runner.py", lib / "runner.py")
    shutil.copyfile(HERE / "_enter.py", lib / "enter.py")  # bwrap runs it from inside the view
    shutil.copyfile(INDICATORS, lib / "indicators.py")
    for f in lib.iterdir():
        f.chmod(0o644)
    lib.parent.chmod(0o755)


@dataclass
class _Spare:
    """The pool's spare: its task (`worker:spare`: start, then wait for the ready byte) and the worker
    once started, so that a close can end a spare still importing its libraries."""

    task: asyncio.Task[Worker]
    worker: Worker | None = None


class WorkerPool:
    """One warm spare per session: a run takes the spare (or starts a worker) and a new spare starts
    behind it. The spare costs one idle process (~100 MB) while the session lives. `start()` (the
    engine's start) warms the first spare in the background, so the session's first run is warm too."""

    def __init__(self, limits: Limits | None = None, *, warm: bool = True, figures: FigureStore | None = None) -> None:
        self.limits = limits or Limits()
        self.warm = warm
        self.figures = figures
        """Where the session keeps each run's figure as a PNG for the trader (None: not kept)."""
        self._spare: _Spare | None = None
        self._closed = False

    def start(self) -> bool:
        """Warm a spare in the background now (never waits); False, and nothing started, where no
        sandbox works here (a `run_python` call then refuses) or the pool is closed or cold."""
        if self._closed or not self.warm or detect() not in MECHANISMS:
            return False
        self._start_spare()
        return self._spare is not None

    def _start_spare(self) -> None:
        if self.warm and not self._closed and self._spare is None:
            task = asyncio.get_running_loop().create_task(self._warm_spare(), name="worker:spare")
            self._spare = _Spare(task)

    async def _warm_spare(self) -> Worker:
        worker = await Worker.start(self.limits)
        spare = self._spare
        if spare is not None and spare.task is asyncio.current_task():
            spare.worker = worker  # owned from here: a close ends it even mid-import
        if not self._closed:
            await worker.ready()
        return worker

    async def prewarm(self) -> bool:
        """Start the spare now and wait until it is ready (a benchmark's or a session's warm-up)."""
        self._start_spare()
        spare = self._spare
        if spare is None:
            return False
        return await (await asyncio.shield(spare.task)).ready()

    async def _take(self) -> Worker:
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                worker = await spare.task
                if worker.proc.returncode is None:
                    return worker
                await worker.close()
            except SandboxUnavailable:
                raise
            except Exception:
                log.exception("the spare worker did not start")
        return await Worker.start(self.limits)

    async def run(self, code: str, inputs: dict[str, Any] | None = None) -> WorkerResult:
        """Run `code` in a ready worker. A mechanism that cannot be set up here is not tried again
        and the next one is (as root: `root`, then `userns`); none left: `SandboxUnavailable`."""
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        while True:
            worker = await self._take()
            self._start_spare()
            try:
                return await worker.run(code, inputs)
            except SandboxUnavailable:
                if detect() not in MECHANISMS:
                    raise
                log.warning("the python worker's %s confinement failed here; trying %s", worker.mechanism,
                            detect())

    async def aclose(self) -> None:
        """End the spare: one waiting for its ready byte is cancelled there (its process is owned and
        killed here); one still spawning (a few ms) finishes its start, which is not cut mid-spawn."""
        self._closed = True
        spare, self._spare = self._spare, None
        if spare is None:
            return
        if spare.worker is not None and not spare.task.done():
            spare.task.cancel()
        await asyncio.wait([spare.task])
        worker = spare.worker
        if worker is None and not spare.task.cancelled() and spare.task.exception() is None:
            worker = spare.task.result()
        if worker is not None:
            await worker.close()


async def probe(limits: Limits | None = None) -> str | None:
    """None when a confined worker starts and answers on this machine, else why not (a sentence)."""
    pool = WorkerPool(limits, warm=False)
    try:
        result = await pool.run("1 + 1")
    except SandboxUnavailable as exc:
        return str(exc)
    finally:
        await pool.aclose()
    if not result.ok or result.value != "2":
        return f"the worker did not answer: {result.error}"
    return None
