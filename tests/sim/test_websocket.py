"""The websocket: the SDK's WebsocketManager callbacks, and the raw protocol (greeting, ping, acks, post)."""

from __future__ import annotations

import asyncio
import json
import queue
from collections import defaultdict
from typing import Any

import aiohttp
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from revagent.exchange.sim import SimServer
from revagent.exchange.sim.controls import SimControls
from tests.sim.conftest import SPOT_META, meta


class Inbox:
    """Collects SDK callbacks (they run on the websocket thread) per channel."""

    def __init__(self) -> None:
        self.q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def __call__(self, msg: dict[str, Any]) -> None:
        self.q.put(msg)

    def wait_for(self, channel: str, pred: Any = lambda m: True, timeout: float = 10) -> dict[str, Any]:
        for m in self.seen[channel]:
            if pred(m):
                return m
        while True:
            m = self.q.get(timeout=timeout)
            self.seen[m["channel"]].append(m)
            if m["channel"] == channel and pred(m):
                return m


async def test_sdk_websocket_manager_callbacks(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("ETH", "3000")
    user = wallet.address
    info = await asyncio.to_thread(Info, sim.base_url, False, meta(), SPOT_META, None, 10)
    inbox = Inbox()
    try:
        info.subscribe({"type": "allMids"}, inbox)
        info.subscribe({"type": "orderUpdates", "user": user}, inbox)
        info.subscribe({"type": "userFills", "user": user}, inbox)
        info.subscribe({"type": "userEvents", "user": user}, inbox)
        info.subscribe({"type": "l2Book", "coin": "ETH"}, inbox)
        info.subscribe({"type": "trades", "coin": "ETH"}, inbox)
        info.subscribe({"type": "bbo", "coin": "ETH"}, inbox)
        info.subscribe({"type": "candle", "coin": "ETH", "interval": "1m"}, inbox)
        info.subscribe({"type": "activeAssetCtx", "coin": "ETH"}, inbox)
        mids = await asyncio.to_thread(inbox.wait_for, "allMids")
        assert mids["data"]["mids"]["ETH"] == "3000.0"
        snapshot = await asyncio.to_thread(inbox.wait_for, "userFills")
        assert snapshot["data"] == {"isSnapshot": True, "user": user.lower(), "fills": []}
        book = await asyncio.to_thread(inbox.wait_for, "l2Book")
        assert book["data"]["coin"] == "ETH" and len(book["data"]["levels"]) == 2
        await asyncio.to_thread(inbox.wait_for, "bbo")
        await asyncio.to_thread(inbox.wait_for, "activeAssetCtx")
        await asyncio.to_thread(inbox.wait_for, "candle")

        ex = Exchange(wallet, sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
        resp = await asyncio.to_thread(ex.market_open, "ETH", True, 0.5)
        oid = resp["response"]["data"]["statuses"][0]["filled"]["oid"]
        update = await asyncio.to_thread(inbox.wait_for, "orderUpdates")
        assert update["data"][0]["order"]["oid"] == oid and update["data"][0]["status"] == "filled"
        fills = await asyncio.to_thread(inbox.wait_for, "userFills", lambda m: not m["data"].get("isSnapshot"))
        assert fills["data"]["user"] == user.lower() and fills["data"]["fills"][0]["oid"] == oid
        event = await asyncio.to_thread(inbox.wait_for, "user")
        assert event["data"]["fills"][0]["oid"] == oid
        trades = await asyncio.to_thread(inbox.wait_for, "trades")
        assert trades["data"][0]["coin"] == "ETH" and trades["data"][0]["side"] == "B"

        sim.set_price("ETH", "3100")
        await asyncio.to_thread(inbox.wait_for, "allMids", lambda m: m["data"]["mids"]["ETH"] == "3100.0")
        ctx = await asyncio.to_thread(
            inbox.wait_for, "activeAssetCtx", lambda m: m["data"]["ctx"]["markPx"] == "3100.0")
        assert ctx["data"]["coin"] == "ETH"
    finally:
        await asyncio.to_thread(info.disconnect_websocket)
        assert info.ws_manager is not None
        await asyncio.to_thread(info.ws_manager.join, 10)


async def test_raw_protocol_greeting_ping_acks_and_post(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(sim.base_url + "/ws") as ws:
        assert await ws.receive_str(timeout=5) == "Websocket connection established."
        await ws.send_json({"method": "ping"})
        assert await ws.receive_json(timeout=5) == {"channel": "pong"}
        sub = {"method": "subscribe", "subscription": {"type": "bbo", "coin": "BTC"}}
        await ws.send_json(sub)
        assert await ws.receive_json(timeout=5) == {"channel": "subscriptionResponse", "data": sub}
        bbo = await ws.receive_json(timeout=5)
        assert bbo["channel"] == "bbo" and bbo["data"]["coin"] == "BTC" and len(bbo["data"]["bbo"]) == 2
        unsub = {"method": "unsubscribe", "subscription": {"type": "bbo", "coin": "BTC"}}
        await ws.send_json(unsub)
        assert await ws.receive_json(timeout=5) == {"channel": "subscriptionResponse", "data": unsub}
        await ws.send_json({"method": "post", "id": 7, "request": {"type": "info", "payload": {"type": "allMids"}}})
        post = await ws.receive_json(timeout=5)
        assert post["channel"] == "post" and post["data"]["id"] == 7
        assert post["data"]["response"]["type"] == "info"
        assert post["data"]["response"]["payload"]["type"] == "allMids"
        assert "BTC" in post["data"]["response"]["payload"]["data"]
        await ws.send_str("not json")
        assert (await ws.receive_json(timeout=5))["channel"] == "error"


async def test_dropped_websocket_fault(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(sim.base_url + "/ws") as ws:
        await ws.receive_str(timeout=5)
        async with SimControls(sim.base_url) as ctl:
            assert await ctl.drop_websockets() == 1
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def test_many_subscribers_get_the_same_push(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(sim.base_url + "/ws") for _ in range(5)]
        try:
            for ws in sockets:
                await ws.receive_str(timeout=5)
                await ws.send_json({"method": "subscribe", "subscription": {"type": "allMids"}})
                assert (await ws.receive_json(timeout=5))["channel"] == "subscriptionResponse"
                assert (await ws.receive_json(timeout=5))["channel"] == "allMids"
            sim.set_price("SOL", "123.45")
            for ws in sockets:
                msg = json.loads(await ws.receive_str(timeout=5))
                assert msg["data"]["mids"]["SOL"] == "123.45"
        finally:
            for ws in sockets:
                await ws.close()


async def test_web_data2_and_active_asset_data_subscriptions(sim: SimServer, wallet: LocalAccount) -> None:
    """The SDK's basic_ws subscribes to both (issue 17.3, the examples): a snapshot at once, then pushes."""
    sim.set_price("ETH", "3000")
    user = wallet.address
    info = await asyncio.to_thread(Info, sim.base_url, False, meta(), SPOT_META, None, 10)
    inbox = Inbox()
    try:
        info.subscribe({"type": "webData2", "user": user}, inbox)
        info.subscribe({"type": "activeAssetData", "user": user, "coin": "ETH"}, inbox)
        web = await asyncio.to_thread(inbox.wait_for, "webData2")
        assert web["data"]["user"] == user.lower() and web["data"]["clearinghouseState"]["assetPositions"] == []
        data = await asyncio.to_thread(inbox.wait_for, "activeAssetData")
        assert data["data"]["coin"] == "ETH" and data["data"]["user"] == user.lower()
        assert data["data"]["leverage"] == {"type": "cross", "value": 20} and len(data["data"]["maxTradeSzs"]) == 2
        ex = Exchange(wallet, sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
        await asyncio.to_thread(ex.market_open, "ETH", True, 0.5)
        await asyncio.sleep(1.1)  # pushes come at most once a second per subscription
        sim.set_price("ETH", "3010")
        pushed = await asyncio.to_thread(
            inbox.wait_for, "webData2", lambda m: m["data"]["clearinghouseState"]["assetPositions"])
        assert pushed["data"]["clearinghouseState"]["assetPositions"][0]["position"]["szi"] == "0.5"
        await asyncio.to_thread(inbox.wait_for, "activeAssetData", lambda m: m["data"]["markPx"] == "3010.0")
    finally:
        await asyncio.to_thread(info.disconnect_websocket)
        assert info.ws_manager is not None
        await asyncio.to_thread(info.ws_manager.join, 10)
