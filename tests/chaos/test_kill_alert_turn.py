"""Chaos: SIGKILL of the daemon at a seeded random point of an alert turn whose model (the strict fake
Messages API, scripted) calls `add_note` and `open_trade`; after the restart resumes the turn, each
tool call left its effect once (one note per tool-call id, one entry per open_trade call), and the
venue's truth agrees with the journal and the ledger."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.chaos.conftest import chaos_seed
from tests.chaos.harness import ThreadedModel, World

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

ITERATIONS = 2
NOTE = re.compile(r"chaos note (toolu_chaos_note_\d+)")


@pytest.fixture
def modelled_world(tmp_path: Path) -> Iterator[tuple[World, ThreadedModel]]:
    model = ThreadedModel(delay_s=0.03)
    url = model.start()
    try:
        with World(tmp_path / "home", chaos_seed(), model_url=url) as w:
            yield w, model
    finally:
        model.stop()


def notes_per_call(w: World) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for note in w.notes():
        match = NOTE.search(str(note.get("text", "")))
        if match:
            counts[match.group(1)] += 1
    return dict(counts)


def test_sigkill_of_the_daemon_mid_alert_turn(modelled_world: tuple[World, ThreadedModel]) -> None:
    w, model = modelled_world
    w.start_daemon()
    w.wait_running()
    w.start_monitor()
    for i in range(ITERATIONS):
        added = w.revagent("alerts", "add", "--in", "1s", f"chaos check {i}", "--json")
        assert added.returncode == 0, added.stdout + added.stderr
        turns = model.turns
        w.wait_for(lambda t=turns: model.turns > t, 60, "the alert turn to reach the model")
        w.pause(0.0, 1.5)  # somewhere in the model's reply or the tools it called
        w.kill_daemon()
        w.start_daemon()
        w.wait_running()
        took, report = w.settle(timeout=30, tool_effects=notes_per_call(w))
        print(f"seed {w.seed}: alert turn {i}: consistent after {took:.2f} s; notes {notes_per_call(w)}; "
              f"{report.as_dict()}")
        assert not report.problems(), f"seed {w.seed}: {report.problems()}\n{w.tail(80)}"
    assert notes_per_call(w), "no tool call left a note: the turns never ran their tools"
    assert w.stop_daemon() == 0
