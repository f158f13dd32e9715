"""The exchange's own rules (issue 17 item 5), on by default for `sim serve` and the paper venue: only funded
masters and their approved agents act, the 80% price band, the 1,000 open-order cap, " asset=N" on order
errors, unsupported actions refused in the exchange's shape, the scheduleCancel volume rule, and the info
types a real client asks for. Driven with the unmodified SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import eth_account
import pytest
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.constants import MAINNET_API_URL

from revagent.config.keys import SecretKey
from revagent.exchange.onboarding import approve_paper_agent, fund_paper_account
from revagent.exchange.sim import SimConfig, SimServer
from tests.sim.conftest import SPOT_META, START_MS, meta

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def strict() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig.exchange_like(manual_clock=True, start_ms=START_MS, seed=3, controls=True,
                                               history_minutes=0))
    await server.start()
    try:
        server.set_price("BTC", "60000")
        yield server
    finally:
        await server.stop()


def make(url: str, wallet: LocalAccount, **kw: Any) -> tuple[Exchange, Info]:
    return (Exchange(wallet, url, meta=meta(), spot_meta=SPOT_META, timeout=10, **kw),
            Info(url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10))


async def _order(ex: Exchange, *args: Any) -> Any:
    return await asyncio.to_thread(ex.order, *args)


async def test_unfunded_key_is_refused_and_gets_no_account(strict: SimServer) -> None:
    wallet = eth_account.Account.create()
    ex, _ = make(strict.base_url, wallet)
    resp = await _order(ex, "BTC", True, 0.001, 59000, {"limit": {"tif": "Gtc"}})
    assert resp == {"status": "err", "response": f"User or API Wallet {wallet.address.lower()} does not exist."}
    approve, _ = await asyncio.to_thread(ex.approve_agent)
    assert approve == {"status": "err",
                       "response": f"Must deposit before performing actions. User: {wallet.address.lower()}"}
    assert wallet.address.lower() not in strict.venue.accounts


async def test_wrong_chain_signature_lands_nowhere(strict: SimServer) -> None:
    wallet = eth_account.Account.create()
    await fund_paper_account(strict.base_url, wallet.address)
    ex, _ = make(strict.base_url, wallet)
    ex.base_url = MAINNET_API_URL  # the SDK now signs for mainnet; the venue checks testnet signatures
    ex.info.base_url = strict.base_url
    action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "59000", "s": "0.001", "r": False,
                                           "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"}
    from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action

    nonce = get_timestamp_ms()
    signature = sign_l1_action(wallet, action, None, nonce, None, True)
    async with aiohttp.ClientSession() as http, http.post(strict.base_url + "/exchange", json={
            "action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}) as r:
        doc = await r.json()
    assert doc["status"] == "err" and doc["response"].startswith("User or API Wallet 0x")
    assert doc["response"].endswith("does not exist.") and wallet.address.lower() not in doc["response"]
    assert len(strict.venue.accounts) == 1  # only the funded master


async def test_funding_is_the_explicit_set_up_step_then_master_and_agent_trade(strict: SimServer) -> None:
    master = SecretKey.generate()
    agent = eth_account.Account.create()
    await approve_paper_agent(strict.base_url, master, agent.address, "revagent")
    assert await fund_paper_account(strict.base_url, master.address()) is False  # once only
    assert strict.venue.accounts[master.address().lower()].balance == strict.config.balance
    ex, _ = make(strict.base_url, agent, account_address=master.address())
    resp = await _order(ex, "BTC", True, 0.001, 59000, {"limit": {"tif": "Gtc"}})
    assert "resting" in resp["response"]["data"]["statuses"][0], resp


async def funded(strict: SimServer) -> tuple[LocalAccount, Exchange, Info]:
    wallet = eth_account.Account.create()
    await fund_paper_account(strict.base_url, wallet.address)
    ex, info = make(strict.base_url, wallet)
    return wallet, ex, info


async def test_price_band_and_asset_suffix(strict: SimServer) -> None:
    _, ex, _ = await funded(strict)
    far = await _order(ex, "BTC", True, 0.001, 11000, {"limit": {"tif": "Gtc"}})
    assert far["response"]["data"]["statuses"] == [
        {"error": "Order price cannot be more than 80% away from the reference price asset=0"}]
    near = await _order(ex, "BTC", True, 0.001, 13000, {"limit": {"tif": "Gtc"}})
    assert "resting" in near["response"]["data"]["statuses"][0]
    margin = await _order(ex, "BTC", True, 5, 59000, {"limit": {"tif": "Gtc"}})
    assert margin["response"]["data"]["statuses"] == [{"error": "Insufficient margin to place order. asset=0"}]


async def test_open_order_cap(strict: SimServer) -> None:
    strict.venue.options.max_open_orders = 3  # the rule is 1,000; a small cap keeps the test short
    _, ex, _ = await funded(strict)
    for i in range(3):
        ok = await _order(ex, "BTC", True, 0.001, 50000 + i, {"limit": {"tif": "Gtc"}})
        assert "resting" in ok["response"]["data"]["statuses"][0]
    refused = await _order(ex, "BTC", True, 0.001, 50100, {"limit": {"tif": "Gtc"}})
    assert refused["response"]["data"]["statuses"] == [{"error": "Too many open orders. asset=0"}]
    assert SimConfig.exchange_like().max_open_orders == 1000


async def test_schedule_cancel_needs_volume(strict: SimServer) -> None:
    _, ex, _ = await funded(strict)
    resp = await asyncio.to_thread(ex.schedule_cancel, START_MS + 60_000)
    assert resp == {"status": "err", "response": "Cannot set scheduled cancel time until enough volume traded. "
                                                 "Required: $1000000. Traded: $0."}


async def test_unsupported_actions_are_refused_like_the_exchange(strict: SimServer) -> None:
    _, ex, _ = await funded(strict)
    resp = await asyncio.to_thread(ex.usd_transfer, 5.0, "0x" + "1" * 40)
    assert resp["status"] == "err" and "usdSend" in resp["response"]
    sub = await asyncio.to_thread(ex.create_sub_account, "x")
    assert sub["status"] == "err"


async def test_info_types_in_the_exchange_shape(strict: SimServer) -> None:
    wallet, ex, info = await funded(strict)
    await _order(ex, "BTC", True, 0.01, 61000, {"limit": {"tif": "Ioc"}})
    strict.advance(3_600_000, steps=2)
    user = wallet.address
    portfolio = await asyncio.to_thread(info.post, "/info", {"type": "portfolio", "user": user})
    assert [p for p, _ in portfolio] == ["day", "week", "month", "allTime", "perpDay", "perpWeek", "perpMonth",
                                         "perpAllTime"]
    assert set(portfolio[0][1]) == {"accountValueHistory", "pnlHistory", "vlm"}
    web = await asyncio.to_thread(info.post, "/info", {"type": "webData2", "user": user})
    assert web["user"] == user.lower() and web["clearinghouseState"]["assetPositions"]
    active = await asyncio.to_thread(info.post, "/info", {"type": "activeAssetData", "user": user, "coin": "BTC"})
    assert active["leverage"] == {"type": "cross", "value": 20} and len(active["maxTradeSzs"]) == 2
    state = await asyncio.to_thread(info.user_state, user)
    assert len(state["assetPositions"][0]["position"]["maxTradeSzs"]) == 2
    funding = await asyncio.to_thread(info.user_funding_history, user, START_MS)
    assert funding and funding[0]["delta"]["nSamples"] == 1 and funding[0]["hash"] != "0x" + "0" * 64
    from hyperliquid.utils.error import ClientError

    with pytest.raises(ClientError) as caught:
        await asyncio.to_thread(info.post, "/info", {"type": "meta", "dex": "nosuchdex"})
    assert caught.value.status_code == 422


async def test_sim_serve_is_strict_by_default(tmp_path: Any) -> None:
    import sys

    port_file = tmp_path / "port"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "revagent.cli.sim", "serve", "--port", "0", "--port-file", str(port_file),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(200):
            if port_file.exists():
                break
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        wallet = eth_account.Account.create()
        ex, _ = make(url, wallet)
        resp = await _order(ex, "BTC", True, 0.001, 90000, {"limit": {"tif": "Gtc"}})
        assert resp["status"] == "err" and resp["response"].endswith("does not exist.")
        async with aiohttp.ClientSession() as http, http.post(url + "/_paper/fund",
                                                               json={"user": wallet.address}) as r:
            assert json.loads(await r.text())["funded"] is True
        resp = await _order(ex, "BTC", True, 0.001, 90000, {"limit": {"tif": "Gtc"}})
        assert resp["status"] == "ok", resp
    finally:
        proc.terminate()
        await proc.wait()
