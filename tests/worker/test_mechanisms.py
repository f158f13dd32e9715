"""The second mechanism (`userns`: uid 0 of a new user namespace, every capability dropped) for real,
and the fallback: a mechanism whose set-up failed is not tried again; with none left the pool raises
`SandboxUnavailable` and the tool refuses, running nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import revagent
from revagent.worker import SandboxUnavailable, WorkerPool, detect
from revagent.worker import sandbox as sandbox_mod

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
    for mech in ("root", "userns"):
        monkeypatch.setitem(sandbox_mod._FAILED, mech, "simulated: refused")
    assert detect() not in ("root", "userns")
    marker = tmp_path / "ran"
    pool = WorkerPool(warm=False)
    try:
        with pytest.raises(SandboxUnavailable, match="refused"):
            await pool.run(f"open({str(marker)!r}, 'w')")
    finally:
        await pool.aclose()
    assert not marker.exists()
