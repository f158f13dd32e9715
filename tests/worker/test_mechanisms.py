"""The second mechanism (`userns`: uid 0 of a new user namespace, every capability dropped) for real,
and the fallback: a mechanism whose set-up failed is not tried again; with none left the pool raises
`SandboxUnavailable` and the tool refuses, running nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import revagent
from revagent.worker import SandboxUnavailable, WorkerPool, detect
from revagent.worker import sandbox as sandbox_mod
from revagent.worker.sandbox import MECHANISMS

pytestmark = [pytest.mark.usefixtures("confinement"), pytest.mark.timeout(90)]

PROBE = f"""
import os, socket
caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm', 'CapBnd'))]
print(''.join(caps).replace('\\t', ' '))
try:
    socket.create_connection(('127.0.0.1', 6379), timeout=1)
    print('CONNECTED')
except OSError as e:
    print('net', type(e).__name__)
try:
    open('/usr/lib/escape', 'w')
    print('WROTE')
except OSError as e:
    print('write', type(e).__name__)
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    print('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())
except Exception as e:
    print('mount', type(e).__name__)
try:
    open('/proc/sys/kernel/core_pattern', 'w').write('|/tmp/x')
    print('sysctl WROTE')
except OSError as e:
    print('sysctl', type(e).__name__)
print('src', os.path.exists({str(Path(revagent.__file__).parent)!r}))
(os.getuid(), os.getppid())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="as a user `userns` is the only mechanism: the escape tests cover it")
async def test_the_user_namespace_mechanism_holds_no_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sandbox_mod._FAILED, "root", "simulated: root confinement refused here")
    monkeypatch.setitem(sandbox_mod._FAILED, "bwrap", "simulated: bubblewrap refused here")
    assert detect() == "userns"
    pool = WorkerPool(warm=False)
    try:
        r = await pool.run(PROBE)
    finally:
        await pool.aclose()
    if not r.ok and "userns" in sandbox_mod._FAILED:
        pytest.skip(f"no user namespaces here: {sandbox_mod._FAILED['userns']}")
    assert r.ok, r.error
    assert r.mechanism == "userns"
    for name in ("CapEff", "CapPrm", "CapBnd"):
        assert f"{name}: 0000000000000000" in r.stdout, r.stdout
    assert "CONNECTED" not in r.stdout and "net " in r.stdout
    assert "write OSError" in r.stdout
    assert "mount -1 1" in r.stdout  # EPERM: no CAP_SYS_ADMIN left to remount the view
    assert "src False" in r.stdout
    assert "sysctl OSError" in r.stdout  # its uid is the host's root here: /proc is mounted read-only
    assert Path("/proc/sys/kernel/core_pattern").read_text().strip() != "|/tmp/x"
    assert r.value == "(0, 0)"  # uid 0 of its own namespace; its parent is outside the PID namespace


async def test_with_no_mechanism_left_nothing_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for mech in MECHANISMS:
        monkeypatch.setitem(sandbox_mod._FAILED, mech, "simulated: refused")
    assert detect() not in MECHANISMS
    marker = tmp_path / "ran"
    pool = WorkerPool(warm=False)
    try:
        with pytest.raises(SandboxUnavailable, match="refused"):
            await pool.run(f"open({str(marker)!r}, 'w')")
    finally:
        await pool.aclose()
    assert not marker.exists()


NESTED = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print('userns', libc.unshare(0x10000000), ctypes.get_errno())
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (`bwrap`) is not installed here")
async def test_bubblewrap_is_preferred_and_holds_no_privilege() -> None:
    assert detect() == "bwrap"
    pool = WorkerPool(warm=False)
    try:
        head = PROBE.rstrip().rsplit("\n", 1)[0]  # without its final (uid, ppid): taken before the unshare try
        r = await pool.run(head + "\nuid, ppid = os.getuid(), os.getppid()" + NESTED + "(uid, ppid)")
    finally:
        await pool.aclose()
    assert r.ok, r.error
    assert r.mechanism == "bwrap"
    for name in ("CapEff", "CapPrm"):
        assert f"{name}: 0000000000000000" in r.stdout, r.stdout
    assert "CONNECTED" not in r.stdout and "net " in r.stdout
    assert "write OSError" in r.stdout and "src False" in r.stdout and "sysctl OSError" in r.stdout
    assert "mount -1 1" in r.stdout  # EPERM: CAP_SYS_ADMIN was dropped after the /tmp and /proc mounts
    assert Path("/proc/sys/kernel/core_pattern").read_text().strip() != "|/tmp/x"
    uid, ppid = r.value.strip("()").split(", ") if r.value else ("", "")
    if os.geteuid() == 0:
        assert int(uid) >= 100_000  # a fresh uid that owns no file on the host
    # as with `root` and `userns`, it may make a user namespace of its own (docs/WORKER.md: what it gains)
    else:
        assert uid == "0" and "CapBnd: 0000000000000000" in r.stdout
    assert ppid in ("0", "1")  # its parent is outside the PID namespace (or bwrap's reaper, pid 1)


async def test_a_refused_bubblewrap_falls_back_to_the_unshare_path(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """bwrap on PATH but refused (Ubuntu 24.04's AppArmor answers so): the pool notes it and the next
    run is confined by `unshare`; nothing ran unconfined meanwhile."""
    if detect(skip=("bwrap",)) not in MECHANISMS:
        pytest.skip("no unshare path on this machine to fall back to")
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.delitem(sandbox_mod._FAILED, "bwrap", raising=False)
    assert detect() == "bwrap"
    pool = WorkerPool(warm=False)
    try:
        r = await pool.run("6 * 7")
    finally:
        await pool.aclose()
        sandbox_mod._FAILED.pop("bwrap", None)
    assert r.ok and r.value == "42" and r.mechanism in ("root", "userns")
