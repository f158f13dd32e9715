"""Request weight of a daemon start and of one-shot commands (issue 12 item 5), measured on the venue
side (the simulator counts the weight of every request it receives), with the real `revagent`
processes: a daemon start must cost far less than Hyperliquid's 1,200 per minute (it cost 704), and
one-shot commands must not pay the agent-approval check (140 weight) every time. On the paper venue
ten one-shot commands in a row never wait on a rate budget.

Run with `-s` to see the figures."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_trading.conftest import Daemon, ThreadedSim, _start_sim, ok_json, rv


def weights(sim: ThreadedSim, *, reset: bool = True) -> dict[str, Any]:
    req = urllib.request.Request(sim.url + "/_sim/weights", data=json.dumps({"reset": reset}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


@pytest.fixture
def paper(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedSim]:
    sim = _start_sim(manual_clock=True)
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", sim.url)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.mark.timeout(300)
def test_weight_of_a_daemon_start_and_of_one_shot_commands(paper: ThreadedSim, tmp_path: Path) -> None:
    # `positions` on an unowned paper wallet reads the venue without a session (cli/reads.py), so the
    # warm-up goes through a one-shot session: first use approves the paper agent (not what is
    # measured), the next finds it approved and keeps that in the store
    ok_json("risk", "check", "BTC", "long", "--stop", "2%", "--risk", "20")
    ok_json("risk", "check", "BTC", "long", "--stop", "2%", "--risk", "20")
    weights(paper)
    figures: dict[str, Any] = {}

    ok_json("positions")
    figures["positions"] = weights(paper)
    ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "20", "--target", "5%", "--yes")
    figures["trade open"] = weights(paper)

    daemon = Daemon(tmp_path / "daemon.log")
    try:
        daemon.wait_owner()
        deadline = time.monotonic() + 60
        while "trading on" not in daemon.log.read_text():
            assert time.monotonic() < deadline, daemon.log.read_text()[-2000:]
            time.sleep(0.2)
        time.sleep(4.0)  # start-up reconciliation, corrections, alerts (less than one 10 s snapshot interval)
        figures["daemon start"] = weights(paper)
    finally:
        daemon.stop()

    for name, doc in figures.items():
        print(f"{name}: {doc['total']} weight {doc['by_type']}")
    # a regression guard against the 704 the issue measured (210-252 here, depending on how many periodic
    # reads fall in the window: metaAndAssetCtxs alone is read up to 4 times, 80 weight; issue 18.2)
    assert figures["daemon start"]["total"] <= 300, figures["daemon start"]
    assert figures["trade open"]["total"] <= 250, figures["trade open"]
    assert figures["positions"]["total"] <= 60, figures["positions"]
    for doc in figures.values():
        assert "userRole" not in doc["by_type"], doc  # the approval check is cached in the store


@pytest.mark.timeout(300)
def test_ten_one_shot_commands_in_a_row_on_the_paper_venue_never_wait(paper: ThreadedSim) -> None:
    ok_json("positions")
    took = []
    for _ in range(10):
        t0 = time.monotonic()
        out = rv("positions", "--json")
        took.append(time.monotonic() - t0)
        assert out.returncode == 0, out.stderr[-2000:]
    print("ten positions:", [f"{t:.2f}" for t in took])
    assert max(took) < 10, took  # no rate budget on the local venue: none waits for the window
