"""An in-process simulator as the paper venue of the tests' config (`REVAGENT_PAPER__VENUE_URL`), so
a `Session` built from `load_config()` trades on it. Use inside a fixture that has `revagent_home`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from revagent.exchange.sim import SimConfig, SimServer


@asynccontextmanager
async def paper_venue(monkeypatch: pytest.MonkeyPatch, *, seed: int, prices: Mapping[str, str] | None = None,
                      **config: Any) -> AsyncIterator[SimServer]:
    """A started simulator with the exchange's rules (as the paper venue runs), test controls on, manual clock,
    `prices` set; stopped on exit. Accounts exist only once funded (the paper wallet's set-up does it)."""
    server = SimServer(SimConfig.exchange_like(seed=seed, controls=True, manual_clock=True, **config))
    await server.start()
    try:
        for coin, px in (prices or {}).items():
            server.set_price(coin, px)
        monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", server.base_url)
        yield server
    finally:
        await server.stop()
