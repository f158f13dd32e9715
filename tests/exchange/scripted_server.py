"""A real aiohttp server on a free port that answers like Hyperliquid, with scripted faults.

Not the simulator (that lives in `revagent.exchange.sim`): a small, fully controllable server to
test the bridge's transport rules (retries, unknown outcomes, 429s, websocket drops). `/exchange`
recovers the signer of every body with the SDK's own helper and keeps the nonces it saw, so tests
can assert how many times, and with which nonce, an action reached the server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

Fault = Callable[[web.Request], Awaitable[web.StreamResponse | None]]

META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 50},
        {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
    ]
}


@dataclass
class Received:
    action: dict[str, Any]
    nonce: int
    signer: str
    expires_after: int | None = None


@dataclass
class ScriptedServer:
    """`faults`: a queue of one-shot behaviours applied to the next `/exchange` (or `/info`) requests."""

    is_mainnet: bool = False
    exchange_faults: list[Fault] = field(default_factory=list)
    info_faults: list[Fault] = field(default_factory=list)
    info_answers: dict[str, Any] = field(default_factory=dict)
    exchange_answer: Callable[[Received], Any] | None = None
    received: list[Received] = field(default_factory=list)
    info_requests: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    ws_messages: list[dict[str, Any]] = field(default_factory=list)
    ws_connects: int = 0
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/info", self._info)
        app.router.add_post("/exchange", self._exchange)
        app.router.add_get("/ws", self._ws)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    async def _info(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.info_requests.append(body)
        if self.info_faults:
            answer = await self.info_faults.pop(0)(request)
            if answer is not None:
                return answer
        kind = body.get("type")
        if kind == "meta":
            return web.json_response(META)
        if kind in self.info_answers:
            value = self.info_answers[kind]
            return web.json_response(value(body) if callable(value) else value)
        return web.Response(status=422, text="Failed to deserialize the JSON body")

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.text())
        signer = recover_agent_or_user_from_l1_action(
            body["action"],
            body["signature"],
            body["vaultAddress"],
            body["nonce"],
            body["expiresAfter"],
            self.is_mainnet,
        )
        got = Received(body["action"], body["nonce"], signer.lower(), body["expiresAfter"])
        if self.exchange_faults:
            fault = self.exchange_faults.pop(0)
            if getattr(fault, "records_first", False):
                self.received.append(got)  # executed before the answer goes missing
            answer = await fault(request)
            if answer is not None:
                if getattr(answer, "processed", False):
                    self.received.append(got)  # executed, but the client will not learn it
                return answer
        if any(r.nonce == got.nonce and r.signer == got.signer for r in self.received):
            return web.json_response({"status": "err", "response": f"Invalid nonce: duplicate nonce {got.nonce}"})
        self.received.append(got)
        if self.exchange_answer is not None:
            return web.json_response(self.exchange_answer(got))
        return web.json_response(default_answer(got))

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_connects += 1
        self.sockets.append(ws)
        await ws.send_str("Websocket connection established.")
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.ws_messages.append(data)
                if data.get("method") == "ping":
                    await ws.send_json({"channel": "pong"})
                elif data.get("method") in ("subscribe", "unsubscribe"):
                    await ws.send_json({"channel": "subscriptionResponse", "data": data})
        finally:
            self.sockets.remove(ws)
        return ws

    async def push(self, channel: str, data: Any) -> None:
        """Send one message on every open socket."""
        for ws in list(self.sockets):
            await ws.send_json({"channel": channel, "data": data})

    async def drop_sockets(self) -> None:
        for ws in list(self.sockets):
            await ws.close()

    def subscriptions(self) -> list[dict[str, Any]]:
        return [m["subscription"] for m in self.ws_messages if m.get("method") == "subscribe"]


def default_answer(got: Received) -> Any:
    action = got.action
    kind = action["type"]
    if kind == "order":
        statuses: list[Any] = []
        for i, order in enumerate(action["orders"]):
            if "trigger" in order["t"]:
                statuses.append(
                    "waitingForFill" if action["grouping"] == "normalTpsl" else {"resting": {"oid": 100 + i}}
                )
            elif order["t"]["limit"]["tif"] == "Ioc":
                statuses.append({"filled": {"totalSz": order["s"], "avgPx": order["p"], "oid": 100 + i}})
            else:
                entry: dict[str, Any] = {"oid": 100 + i}
                if "c" in order:
                    entry["cloid"] = order["c"]
                statuses.append({"resting": entry})
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
    if kind in ("cancel", "cancelByCloid"):
        return {
            "status": "ok",
            "response": {"type": "cancel", "data": {"statuses": ["success"] * len(action["cancels"])}},
        }
    if kind == "batchModify":
        return {
            "status": "ok",
            "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 500}}] * len(action["modifies"])}},
        }
    return {"status": "ok", "response": {"type": "default"}}


# ----------------------------------------------------------------------------------- faults


def http_status(
    status: int, text: str = "", *, processed: bool = False, headers: dict[str, str] | None = None
) -> Fault:
    """Answer `status`; `processed` records the action as executed anyway (a 5xx after the fact)."""

    async def fault(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=status, text=text or f"status {status}", headers=headers)
        response.processed = processed  # type: ignore[attr-defined]
        return response

    return fault


def hang(seconds: float) -> Fault:
    """Execute the action, then never answer in time (the client times out)."""

    async def fault(request: web.Request) -> web.StreamResponse | None:
        await asyncio.sleep(seconds)
        return web.Response(status=504)

    fault.records_first = True  # type: ignore[attr-defined]
    return fault


def garbage(text: str = "<html>bad gateway</html>") -> Fault:
    async def fault(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=200, text=text)
        response.processed = True  # type: ignore[attr-defined]
        return response

    return fault


def drop_connection() -> Fault:
    """Close the TCP connection without answering (after reading the body)."""

    async def fault(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        transport.close()
        await asyncio.sleep(0.05)
        return web.Response(status=200)

    fault.records_first = True  # type: ignore[attr-defined]
    return fault
