"""Optional Hyperliquid limits: the IP weight budget (HTTP 429) and the idle websocket timeout."""

from __future__ import annotations

import asyncio

import aiohttp

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.ratelimit import IpBudget, request_weight


def test_weights_and_budget() -> None:
    assert request_weight("/info", {"type": "allMids"}) == 2
    assert request_weight("/info", {"type": "userFills"}) == 20
    assert request_weight("/info", {"type": "userRole"}) == 60
    assert request_weight("/exchange", {"action": {"type": "order", "orders": [{}] * 80}}) == 3
    budget = IpBudget(60)  # one weight per second
    assert budget.take("a", 60, 0.0) and not budget.take("a", 1, 0.0)
    assert budget.take("b", 1, 0.0)  # per address
    assert budget.take("a", 2, 2.0) and not budget.take("a", 1, 2.0)


async def test_ip_budget_answers_429() -> None:
    sim = SimServer(SimConfig(manual_clock=True, history_minutes=0, ip_weight_per_minute=40))
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            codes = []
            for _ in range(25):
                async with http.post(sim.base_url + "/info", json={"type": "allMids"}) as resp:
                    codes.append(resp.status)
        assert codes[:20] == [200] * 20 and 429 in codes[20:]
    finally:
        await sim.stop()


async def test_idle_websocket_is_dropped_unless_it_pings() -> None:
    sim = SimServer(SimConfig(manual_clock=True, history_minutes=0, ws_idle_timeout_s=0.3))
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(sim.base_url + "/ws") as idle:
                await idle.receive_str(timeout=5)
                closed = await idle.receive(timeout=5)
                assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            async with http.ws_connect(sim.base_url + "/ws") as busy:
                await busy.receive_str(timeout=5)
                for _ in range(6):
                    await asyncio.sleep(0.1)
                    await busy.send_json({"method": "ping"})
                    assert (await busy.receive_json(timeout=5)) == {"channel": "pong"}
    finally:
        await sim.stop()
