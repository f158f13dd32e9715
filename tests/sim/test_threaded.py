"""Synchronous use: the simulator on a background thread, the SDK called directly."""

from __future__ import annotations

import eth_account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from revagent.exchange.sim import SimConfig
from revagent.exchange.sim.threaded import ThreadedSim
from tests.sim.conftest import SPOT_META, meta


def test_sync_sdk_against_a_threaded_simulator() -> None:
    with ThreadedSim(SimConfig(manual_clock=True, history_minutes=0)) as sim:
        sim.call(lambda s: s.set_price("SOL", "150"))
        wallet = eth_account.Account.create()
        ex = Exchange(wallet, sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
        info = Info(sim.base_url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10)
        resp = ex.market_open("SOL", True, 1.0)
        assert resp["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "1.0"
        assert info.user_state(wallet.address)["assetPositions"][0]["position"]["szi"] == "1.0"
        assert sim.call(lambda s: len(s.venue.accounts)) == 1
    assert sim._thread is not None and not sim._thread.is_alive()
