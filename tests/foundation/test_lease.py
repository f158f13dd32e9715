"""The lease: one owner per wallet, takeover from a dead holder, and fencing after a pause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis as sync_redis

from revagent.errors import LeaseLostError, OwnerBusyError
from revagent.models import SessionId
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.lease import Lease, current_holder

SID = SessionId(network="paper", address="0x" + "ab" * 20)
WORKER = Path(__file__).with_name("lease_worker.py")


async def test_second_owner_is_refused_with_the_holder_named(redis_url: str) -> None:
    r1, r2 = await connect(redis_url), await connect(redis_url)
    try:
        first = Lease(r1, Keyspace(SID), role="tui")
        await first.acquire()
        second = Lease(r2, Keyspace(SID), role="daemon")
        # Same pid is alive, so no takeover: refused, naming the role, pid and host.
        with pytest.raises(OwnerBusyError, match=rf"tui pid {os.getpid()} on "):
            await second.acquire()
        await first.release()
        holder = await second.acquire()
        assert holder.role == "daemon"
        assert holder.token > first.token if first.holder else True
    finally:
        await r1.aclose()
        await r2.aclose()


async def test_fencing_tokens_increase_and_a_lost_lease_refuses_writes(redis_url: str) -> None:
    r = await connect(redis_url)
    try:
        a = Lease(r, Keyspace(SID), ttl=timedelta(seconds=5))
        held = await a.acquire()
        await a.fenced(lambda p: p.set("rev:test:x", "1"))
        # Someone else takes over (as after an expiry): the old owner's writes are refused.
        await r.delete(Keyspace(SID).lease)
        b = Lease(r, Keyspace(SID), ttl=timedelta(seconds=5))
        b_held = await b.acquire()
        assert b_held.token > held.token
        with pytest.raises(LeaseLostError):
            await a.fenced(lambda p: p.set("rev:test:x", "2"))
        with pytest.raises(LeaseLostError):
            await a.ensure_held()
        assert await r.get("rev:test:x") == "1"
        await b.ensure_held()
    finally:
        await r.aclose()


def _start_worker(url: str, ttl: float, key: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), url, str(SID), str(ttl), key],
                            stdout=subprocess.PIPE, text=True)


def _first_line(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    assert time.monotonic() < deadline, "worker did not report in time"
    return line.strip()


def test_two_processes_cannot_both_own_a_wallet(redis_url: str) -> None:
    a = _start_worker(redis_url, 10, "rev:test:effects")
    try:
        assert _first_line(a) == "ACQUIRED"
        b = _start_worker(redis_url, 10, "rev:test:effects")
        assert _first_line(b).startswith(f"BUSY wallet {SID} is owned by worker pid {a.pid}")
        assert b.wait(10) == 7
    finally:
        a.kill()
        a.wait()


def test_a_sigkilled_owner_is_taken_over_at_once(redis_url: str) -> None:
    a = _start_worker(redis_url, 30, "rev:test:effects")  # a long TTL that must not be waited out
    try:
        assert _first_line(a) == "ACQUIRED"
        a.send_signal(signal.SIGKILL)
        a.wait()
        started = time.monotonic()
        b = _start_worker(redis_url, 30, "rev:test:effects")
        assert _first_line(b) == "ACQUIRED"
        assert time.monotonic() - started < 5
        b.kill()
        b.wait()
    finally:
        if a.poll() is None:
            a.kill()


def test_an_owner_paused_past_its_ttl_performs_no_side_effect_after_waking(redis_url: str) -> None:
    key = "rev:test:effects"
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    a = _start_worker(redis_url, 1.0, key)
    b = None
    try:
        assert _first_line(a) == "ACQUIRED"
        time.sleep(0.2)
        a.send_signal(signal.SIGSTOP)
        time.sleep(1.6)  # past A's TTL: its lease expires in Redis
        b = _start_worker(redis_url, 5, key)
        assert _first_line(b) == "ACQUIRED"
        time.sleep(0.3)
        a.send_signal(signal.SIGCONT)
        assert _first_line(a).startswith("LOST")
        assert a.wait(10) == 3
        time.sleep(0.2)
        effects = client.lrange(key, 0, -1)
        first_b = effects.index(str(b.pid))
        assert str(a.pid) in effects[:first_b], "A did work before the pause"
        assert str(a.pid) not in effects[first_b:], "A wrote after B took over"
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
        client.close()


async def test_current_holder_ignores_a_dead_pid_on_this_host(redis_url: str) -> None:
    r = await connect(redis_url)
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        await r.set(Keyspace(SID).lease,
                    f'{{"host":"{os.uname().nodename}","pid":{dead.pid},"since":"x","token":1,"role":"daemon"}}')
        assert await current_holder(r, Keyspace(SID)) is None
    finally:
        await r.aclose()
