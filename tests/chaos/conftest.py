"""The chaos suite's seed (printed; `REVAGENT_CHAOS_SEED=N` reruns one) and its world per test.

The bounded form that `./dev test` runs uses one fixed seed (`CI_SEED`), so a red run is a change in
the code, never a draw; `REVAGENT_CHAOS_SEED=random` draws one per test, and the long form
(`benchmarks/chaos_bench.py`) explores many. Known finding the long form still reports (49 rounds,
load 24 falling to 5 on 2 cores, stop_grace 3 s): a stop deleted under a REST outage stayed off up
to 6.5 s (5.0 s in another round): beyond `stop_grace` + 1 s, and 0.5 s beyond the audit's allowance
(grace + 3 s); those two rounds followed a Redis stall and /exchange errors, and their cause is not
found yet. A 21-round run at load 2.6-4.8 had 7.3 s in a REST outage begun as a websocket outage
ended: most likely the stop was deleted while the stream was still reconnecting, so neither source
reported the cancel (the exchange does not replay missed order updates; the owner's log shows its stop
check passing on the live view during the outage and failing only once REST was back): protection
without REST would need a stream that snapshots open orders on (re)subscription. The
focused tests in tests/sync/test_protect_rest_outage.py (a deletion the stream reports, the
websocket-gap case included) put the stop back within grace + 1 s; before that fix the stop check
read REST only after a websocket gap (7.0 s at load 2.4, issue 12 item 3)."""

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
