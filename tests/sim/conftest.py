"""Simulator fixtures: an in-process SimServer on a free loopback port, and helpers to drive the
unmodified SDK (blocking) from async tests through `asyncio.to_thread`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import eth_account
import pytest
from eth_account.signers.local import LocalAccount

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.markets import meta_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyperliquid-recorded"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, on an hour boundary
SPOT_META: dict[str, Any] = {"universe": [], "tokens": []}


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def meta() -> Any:
    return meta_json()


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    """A deterministic venue: manual market clock from START_MS, seed 1, controls on."""
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=1, controls=True, history_minutes=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def wallet() -> LocalAccount:
    return eth_account.Account.create()
