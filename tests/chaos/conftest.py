"""The chaos suite's seed (printed; `REVAGENT_CHAOS_SEED=N` reruns one) and its world per test."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.chaos.harness import World


def chaos_seed() -> int:
    value = os.environ.get("REVAGENT_CHAOS_SEED")
    return int(value) if value else random.SystemRandom().randrange(1, 2**31)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    seed = chaos_seed()
    with World(tmp_path / "home", seed) as w:
        yield w
