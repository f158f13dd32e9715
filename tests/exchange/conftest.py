"""Fixtures for the bridge tests: a scripted Hyperliquid-like server on a free port, keys, a bridge."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import eth_account
import pytest

from revagent.exchange.hyperliquid import HyperliquidBridge, RetryPolicy
from tests.exchange.scripted_server import ScriptedServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid-recorded"

FAST = RetryPolicy(attempts=3, timeout_s=0.5, base_delay_s=0.01, max_delay_s=0.05)


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())["response"]


@pytest.fixture
def agent() -> Any:
    return eth_account.Account.create()


@pytest.fixture
def master() -> str:
    return str(eth_account.Account.create().address).lower()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def bridge(server: ScriptedServer, agent: Any, master: str) -> AsyncIterator[HyperliquidBridge]:
    async with HyperliquidBridge(network="paper", base_url=server.url, master=master, signer=agent, policy=FAST) as b:
        yield b
