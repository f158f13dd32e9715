"""Chaos: Redis stalled (SIGSTOP for a seeded 2-5 s, with a one-shot `trade open` sent meanwhile) and
killed (SIGKILL, with the position's stop deleted while Redis is down) under a running daemon; one
Redis server and one owner throughout, the daemon alive, and the venue's truth against the journal
and the ledger afterwards."""

from __future__ import annotations

import os
import signal
import time

import pytest
from tests.chaos.harness import World, redis_servers_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

OPEN_BTC = ("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "20", "--target", "5%", "--yes", "--json")
OPEN_ETH = ("trade", "open", "ETH", "long", "--stop", "2%", "--risk", "10", "--target", "5%", "--yes", "--json")


def test_redis_stalled_and_killed_under_a_running_daemon(world: World) -> None:
    w = world
    w.start_daemon()
    w.wait_running()
    w.start_monitor()
    opened = w.revagent(*OPEN_BTC)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    w.wait_for(lambda: w.stop_oids(), 20, "the BTC stop")
    hand = w.someone_else()
    time.sleep(3.5)

    server = w.redis_pid()
    os.kill(server, signal.SIGSTOP)
    w.faults["redis_stall"] += 1
    try:
        w.pause(0.5, 1.0)
        one_shot = w.popen(*OPEN_ETH)  # meanwhile: it must reach the owner or refuse, never own
        w.owner_pids.add(one_shot.pid)
        w.pause(1.5, 4.0)
    finally:
        os.kill(server, signal.SIGCONT)
    out, err = one_shot.communicate(timeout=120)
    print(f"one-shot during the stall: exit {one_shot.returncode}: {out[-300:]} {err[-300:]}")
    assert redis_servers_for(w.data) == [server], "a second Redis server was started during the stall"
    took, report = w.settle(timeout=20)
    print(f"seed {w.seed}: redis stall: consistent after {took:.2f} s; {report.as_dict()}")
    assert not report.problems(), f"seed {w.seed}: {report.problems()}\n{w.tail(80)}"

    os.kill(server, signal.SIGKILL)
    w.faults["redis_kill"] += 1
    w.pause(0.2, 1.0)
    w.delete_stop(hand)  # protection keeps working from the exchange while Redis is down
    new = w.wait_for(lambda: [p for p in redis_servers_for(w.data) if p != server], 30, "a new Redis server")
    assert len(new) == 1
    assert w.daemon is not None
    w.wait_for(lambda: w.lease_holder() == w.daemon.pid if w.daemon else False, 30, "the daemon to own it again")
    took, report = w.settle(timeout=20)
    print(f"seed {w.seed}: redis kill: consistent after {took:.2f} s; {report.as_dict()}")
    assert not report.problems(), f"seed {w.seed}: {report.problems()}\n{w.tail(80)}"
    assert w.daemon.poll() is None, f"the daemon died with Redis:\n{w.tail(80)}"
    assert w.stop_daemon() == 0
