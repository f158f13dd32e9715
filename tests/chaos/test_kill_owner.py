"""Chaos: SIGKILL of the wallet's owner at seeded random points of an order, then a restart; the
venue's truth (historical orders, fills, positions) against the journal and the ledger after each."""

from __future__ import annotations

import signal
import time

import pytest
from tests.chaos.harness import World

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

ITERATIONS = 2
OPEN = ("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "20", "--target", "5%", "--yes", "--json")


def assert_consistent(w: World) -> None:
    report = w.audit()
    print(f"seed {w.seed}: {report.as_dict()}")
    assert not report.problems(), f"seed {w.seed}: {report.problems()}\n{w.tail(80)}"
    assert report.venue_orders > 0


def test_sigkill_of_the_daemon_mid_order(world: World) -> None:
    w = world
    w.start_daemon()
    w.wait_running()
    w.start_monitor()
    for _ in range(ITERATIONS):
        cmd = w.popen(*OPEN)  # sent to the daemon over the command channel
        w.pause(0.0, 2.0)
        w.kill_daemon()
        cmd.communicate(timeout=90)
        w.start_daemon()
        w.wait_running()
        time.sleep(1.0)  # the restarted owner's reconciliation and stop repair
        assert_consistent(w)
    assert w.stop_daemon() == 0


def test_sigkill_of_a_one_shot_trade_mid_order(world: World) -> None:
    w = world
    w.master = w.status()["session"].split(":", 1)[1]
    w.start_monitor()
    for _ in range(ITERATIONS):
        one_shot = w.popen(*OPEN)  # no owner: it takes the lease for its own run
        w.owner_pids.add(one_shot.pid)
        w.pause(0.5, 4.0)
        if one_shot.poll() is None:
            one_shot.send_signal(signal.SIGKILL)
            w.faults["sigkill_one_shot"] += 1
        one_shot.communicate(timeout=60)
        w.start_daemon()  # the next owner finds what the killed one left and protects it
        w.wait_running()
        time.sleep(1.0)
        assert_consistent(w)
        assert w.stop_daemon() == 0
