"""The chaos suite's seed (printed; `REVAGENT_CHAOS_SEED=N` reruns one) and its world per test.

The bounded form that `./dev test` runs uses one fixed seed (`CI_SEED`), so a red run is a change in
the code, never a draw; `REVAGENT_CHAOS_SEED=random` draws one per test, and the long form
(`benchmarks/chaos_bench.py`) explores many. Known finding the long form still reports (49 rounds,
load 24 falling to 5 on 2 cores, stop_grace 3 s): a stop deleted under a REST outage stayed off up
to 6.5 s (5.0 s in another round): beyond `stop_grace` + 1 s, and 0.5 s beyond the audit's allowance
(grace + 3 s); the cause is not found yet (the focused tests in tests/sync/test_protect_rest_outage.py,
the websocket-gap case included, put it back within grace + 1 s). Before the fix of the gap case
(the stop check read REST only, after a websocket gap) it was 7.0 s at load 2.4 (issue 12 item 3)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.chaos.harness import World

CI_SEED = 20261204


def chaos_seed() -> int:
    value = os.environ.get("REVAGENT_CHAOS_SEED", "")
    if value == "random":
        return random.SystemRandom().randrange(1, 2**31)
    return int(value) if value else CI_SEED


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    seed = chaos_seed()
    with World(tmp_path / "home", seed) as w:
        yield w
