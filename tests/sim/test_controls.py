"""Test controls over HTTP (SimControls): prices, paths, time, deposits, and injected faults."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.control_routes import is_loopback
from revagent.exchange.sim.controls import SimControlError, SimControls
from tests.sim.conftest import SPOT_META, START_MS, meta


def sdk(sim: SimServer, wallet: LocalAccount) -> tuple[Exchange, Info]:
    return (Exchange(wallet, sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=5),
            Info(sim.base_url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=5))


async def test_prices_paths_and_time(sim: SimServer) -> None:
    async with SimControls(sim.base_url) as ctl:
        state = await ctl.set_price("BTC", "61000")
        assert state.mids["BTC"] == "61000.0" and state.manual_clock and state.now_ms == START_MS
        state = await ctl.set_path("BTC", ["61100", "61200", "61050"], step_ms=500)
        assert state.mids["BTC"] == "61050.0" and state.now_ms == START_MS + 1500
        await ctl.set_volatility(None, 0)
        state = await ctl.advance(60_000)
        assert state.now_ms == START_MS + 61_500 and state.mids["BTC"] == "61050.0"
        with pytest.raises(SimControlError, match="unknown market"):
            await ctl.set_price("NOPE", "1")


async def test_deposit_withdraw_in_ledger(sim: SimServer, wallet: LocalAccount) -> None:
    _, info = sdk(sim, wallet)
    async with SimControls(sim.base_url) as ctl:
        await ctl.deposit(wallet.address, "1000")
        await ctl.withdraw(wallet.address, "300")
        with pytest.raises(SimControlError, match="Insufficient balance"):
            await ctl.withdraw(wallet.address, "1000000")
    ledger = await asyncio.to_thread(info.user_non_funding_ledger_updates, wallet.address, 0)
    assert [(e["delta"]["type"], e["delta"]["usdc"]) for e in ledger] == [
        ("deposit", "10000.0"), ("deposit", "1000.0"), ("withdraw", "300.0")]
    assert ledger[2]["delta"]["fee"] == "1.0"
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["marginSummary"]["accountValue"] == "10699.0"


async def test_http_faults_reach_the_sdk(sim: SimServer, wallet: LocalAccount) -> None:
    _, info = sdk(sim, wallet)
    async with SimControls(sim.base_url) as ctl:
        await ctl.inject_http_error(502, count=1, path="/info")
        with pytest.raises(ServerError):
            await asyncio.to_thread(info.all_mids)
        assert "BTC" in await asyncio.to_thread(info.all_mids)  # only one request was hit
        await ctl.inject_http_error(429, count=1)
        with pytest.raises(ClientError) as caught:
            await asyncio.to_thread(info.all_mids)
        assert caught.value.status_code == 429
        await ctl.set_latency(300)
        t0 = time.perf_counter()
        await asyncio.to_thread(info.all_mids)
        assert time.perf_counter() - t0 >= 0.3
        await ctl.clear_faults()


async def test_lost_response_of_an_accepted_order(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("BTC", "60000")
    ex, info = sdk(sim, wallet)
    async with SimControls(sim.base_url) as ctl:
        await ctl.lose_order_responses(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        await asyncio.to_thread(ex.order, "BTC", True, 0.001, 55000, {"limit": {"tif": "Gtc"}})
    opened = await asyncio.to_thread(info.open_orders, wallet.address)
    assert [o["limitPx"] for o in opened] == ["55000.0"]  # it was accepted all the same
    again = await asyncio.to_thread(ex.order, "BTC", True, 0.001, 55001, {"limit": {"tif": "Gtc"}})
    assert "resting" in again["response"]["data"]["statuses"][0]


async def test_controls_are_off_unless_enabled() -> None:
    sim = SimServer(SimConfig(manual_clock=True))
    await sim.start()
    try:
        async with SimControls(sim.base_url) as ctl:
            with pytest.raises(Exception):  # noqa: B017 - aiohttp raises on the 404's non-JSON body
                await ctl.state()
    finally:
        await sim.stop()


def test_loopback_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("10.0.0.2") and not is_loopback(None) and not is_loopback("bogus")
