"""`revagent daemon --all`: one real daemon process per paper wallet under a real supervisor.

A child SIGKILLed is restarted (the other untouched); SIGTERM to the supervisor stops them all and
it exits 0; `server status` shows each wallet's daemon; a child's environment holds no setting and
no secret; an eleventh user on one address of a real network is refused with how to shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from revagent.config import load_config
from revagent.runtime.supervisor import MAX_USERS_PER_IP, check_users_per_ip

pytestmark = pytest.mark.timeout(240)

TWO_PAPER = 'default_wallet = "a"\n\n[wallets.a]\nnetwork = "paper"\n\n[wallets.b]\nnetwork = "paper"\n'
SECRET = "sk-ant-test-this-must-not-leak-0123456789"


def revagent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def server_status() -> dict[str, Any]:
    out = revagent("server", "status", "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def wallets_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["wallet"]: w for w in doc["wallets"]}


def wait_for(check: Any, timeout: float = 90.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def both_running(previous: dict[str, int] | None = None) -> Any:
    ws = wallets_of(server_status())
    if not all(ws[n]["pid"] and ws[n]["sync_phase"] == "consistent" and ws[n]["startup_phase"] == "running"
               and ws[n]["supervisor"] and ws[n]["supervisor"]["child_pid"] == ws[n]["pid"] for n in ("a", "b")):
        return None
    if previous is not None and ws["a"]["pid"] == previous["a"]:
        return None
    return ws


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def write_config(home: Path, body: str) -> None:
    (home / "config" / "config.toml").write_text(body)


def test_supervisor_restarts_a_killed_child_and_stops_all_on_sigterm(revagent_home: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(revagent_home, TWO_PAPER)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    log = (revagent_home / "supervisor.err").open("w")
    sup = subprocess.Popen([sys.executable, "-m", "revagent", "daemon", "--all", "--log-json"],
                           stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
    try:
        first = wait_for(both_running, what="both daemons running and in sync")
        pids = {n: first[n]["pid"] for n in ("a", "b")}
        assert pids["a"] != pids["b"] and sup.pid not in pids.values()
        for n in ("a", "b"):
            w = first[n]
            assert w["role"] == "daemon" and w["trading"] == "active" and w["uptime_s"] >= 0
            assert w["supervisor"]["pid"] == sup.pid and w["supervisor"]["state"] == "running"
            assert w["last_alert"] is None
            environ = Path(f"/proc/{pids[n]}/environ").read_bytes().decode()
            assert SECRET not in environ and "REVAGENT_" not in environ  # settings and secrets came on stdin
        os.kill(pids["a"], signal.SIGKILL)
        second = wait_for(lambda: both_running(pids), what="a restarted")
        assert second["a"]["pid"] != pids["a"] and second["a"]["supervisor"]["restarts"] == 1
        assert "killed by SIGKILL" in second["a"]["supervisor"]["last_reason"]
        assert second["b"]["pid"] == pids["b"] and second["b"]["supervisor"]["restarts"] == 0  # untouched
        children = [second["a"]["pid"], pids["b"]]
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(60) == 0
        assert not any(alive(p) for p in children)
        after = wallets_of(server_status())
        assert all(after[n]["pid"] is None and after[n]["supervisor"]["state"] == "stopped" for n in ("a", "b"))
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)
        log.close()


def test_a_child_exiting_with_a_stop_code_is_not_restarted(revagent_home: Path) -> None:
    # wallet b is owned by a plain daemon first: the supervised one exits 7 and stays stopped
    write_config(revagent_home, TWO_PAPER)
    owner = subprocess.Popen([sys.executable, "-m", "revagent", "daemon", "--wallet", "b"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    sup: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: wallets_of(server_status())["b"]["pid"] == owner.pid, what="the first owner of b")
        sup = subprocess.Popen([sys.executable, "-m", "revagent", "daemon", "--wallet", "a", "--wallet", "b"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        ws = wait_for(lambda: (lambda w: w if (w["b"]["supervisor"] or {}).get("state") == "failed"
                               and w["a"]["pid"] else None)(wallets_of(server_status())), what="b refused")
        assert ws["b"]["supervisor"]["last_exit"] == 7 and "not restarted" in ws["b"]["supervisor"]["last_reason"]
        assert ws["b"]["pid"] == owner.pid and alive(owner.pid)  # the first owner keeps it
        time.sleep(2.0)
        ws = wallets_of(server_status())
        assert ws["b"]["supervisor"]["restarts"] == 0 and ws["b"]["supervisor"]["state"] == "failed"
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(60) == 0
    finally:
        for p in (sup, owner):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(40)
                except subprocess.TimeoutExpired:
                    p.kill()


def _testnet_wallets(home: Path, n: int) -> str:
    key = home / "agent.key"
    key.write_text("0x" + "11" * 32 + "\n")
    key.chmod(0o600)
    sections = (f'[wallets.t{i}]\nnetwork = "testnet"\nmaster_address = "0x{i + 1:040x}"\n'
                f'agent_key_file = "{key}"\n\n' for i in range(n))
    return 'default_wallet = "t0"\n\n' + "".join(sections)


def test_an_eleventh_user_on_one_address_is_refused_with_how_to_shard(revagent_home: Path) -> None:
    write_config(revagent_home, _testnet_wallets(revagent_home, MAX_USERS_PER_IP + 1))
    out = revagent("daemon", "--all", timeout=60)
    assert out.returncode == 4, out.stderr + out.stdout
    assert "11 testnet users on one egress address" in out.stderr
    assert "at most 10" in out.stderr and "another egress address" in out.stderr and "[rate] egress" in out.stderr
    assert not (revagent_home / "data" / "logs" / "supervisor.log").exists()  # refused before anything started
    cfg = load_config()
    ten = [cfg.wallet(f"t{i}") for i in range(MAX_USERS_PER_IP)]
    check_users_per_ip(cfg, ten)  # ten are fine
    # two wallet sections on one master are one user; paper wallets are not counted
    same = [w.model_copy(update={"master_address": ten[0].master_address}) for w in ten] + [cfg.wallet("t10")]
    check_users_per_ip(cfg, same)


def test_owners_already_running_on_this_host_count_towards_the_ten(revagent_home: Path, redis_url: str) -> None:
    """Nine testnet wallets to supervise, two other testnet users owned here already (daemons under
    systemd units, say): eleven users on one address, refused before any child starts."""
    import asyncio
    from datetime import timedelta

    from revagent.models import SessionId
    from revagent.store.connection import connect
    from revagent.store.keys import Keyspace
    from revagent.store.lease import Lease

    write_config(revagent_home, _testnet_wallets(revagent_home, 9))

    async def own_two() -> None:
        redis = await connect(redis_url)
        try:
            for i in (100, 101):
                keys = Keyspace(SessionId(network="testnet", address=f"0x{i:040x}"))
                await Lease(redis, keys, ttl=timedelta(seconds=120), role="daemon").acquire()
        finally:
            await redis.aclose()

    asyncio.run(own_two())
    out = revagent("daemon", "--all", timeout=60)
    assert out.returncode == 4, out.stderr + out.stdout
    assert "11 testnet users on one egress address" in out.stderr
    assert not (revagent_home / "data" / "logs" / "supervisor.log").exists()
