"""`/_sim/...` test-control routes (enabled by `SimConfig.controls`, answered on loopback only).

Every route takes and returns JSON; errors are `{"error": "..."}` with HTTP 400 (403 off loopback).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any, Protocol

from aiohttp import web

from revagent.exchange.sim import info as info_mod
from revagent.exchange.sim.clock import wall_ms
from revagent.exchange.sim.config import SimConfig
from revagent.exchange.sim.faults import Faults
from revagent.exchange.sim.venue import Venue
from revagent.exchange.sim.ws import Hub


class SimServer(Protocol):
    """What the control routes drive: the simulator's server (`server.SimServer`) they are mounted on."""

    @property
    def config(self) -> SimConfig: ...
    @property
    def venue(self) -> Venue: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def faults(self) -> Faults: ...
    @property
    def weight_served(self) -> dict[str, int]: ...

    def set_price(self, coin: str, px: Decimal | str | float) -> None: ...
    def set_path(self, coin: str, prices: Iterable[Decimal | str | float], step_ms: int = 1000) -> None: ...
    def advance(self, ms: int, steps: int | None = None) -> int: ...
    def deposit(self, user: str, usd: Decimal | str | float) -> None: ...
    def withdraw(self, user: str, usd: Decimal | str | float) -> str | None: ...
    def set_volatility(self, coin: str | None, annual_vol: float) -> None: ...
    def set_funding_premium(self, coin: str, premium: Decimal | str | float) -> None: ...
    def set_liquidity(self, coin: str, scale: Decimal | str | float, spread_ticks: int | None = None) -> None: ...
    def inject_http_fault(self, status: int, count: int = 1, path: str | None = None) -> None: ...
    async def drop_websockets(self) -> int: ...
    async def flush(self) -> None: ...


Route = Callable[[SimServer, dict[str, Any]], Awaitable[dict[str, Any]]]


def is_loopback(remote: str | None) -> bool:
    """Whether a request came from this machine (the controls and paper funding answer only then)."""
    if remote is None:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(remote).is_loopback
    return False


async def _price(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.set_price(str(b["coin"]), str(b["px"]))
    return _state(sim)


async def _path(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.set_path(str(b["coin"]), [str(p) for p in b["prices"]], int(b.get("step_ms", 1000)))
    return _state(sim)


async def _advance(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.advance(int(b["ms"]))
    return _state(sim)


async def _deposit(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.deposit(str(b["user"]), str(b["usd"]))
    return {"ok": True}


async def _withdraw(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    error = sim.withdraw(str(b["user"]), str(b["usd"]))
    if error is not None:
        raise ValueError(error)
    return {"ok": True}


async def _funding(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.set_funding_premium(str(b["coin"]), str(b["premium"]))
    return {"ok": True}


async def _volatility(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.set_volatility(b.get("coin"), float(b["annual_vol"]))
    return {"ok": True}


async def _liquidity(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    spread = b.get("spread_ticks")
    sim.set_liquidity(str(b["coin"]), str(b["scale"]), None if spread is None else int(spread))
    return {"ok": True}


async def _fault(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    if "latency_ms" in b:
        sim.faults.latency_ms = int(b["latency_ms"])
    if "http_status" in b:
        sim.inject_http_fault(int(b["http_status"]), int(b.get("count", 1)), b.get("path"))
    if "lose_order_responses" in b:
        sim.faults.lose_order_responses = int(b["lose_order_responses"])
    if "refuse_websockets" in b:
        sim.faults.refuse_websockets = bool(b["refuse_websockets"])
    dropped = await sim.drop_websockets() if b.get("drop_websockets") else 0
    return {"ok": True, "dropped_websockets": dropped}


async def _clear_faults(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    sim.faults.clear()
    return {"ok": True}


async def _flush(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    await sim.flush()
    return {"ok": True}


async def _weights(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    """The request weight the venue received, by request type (`{"reset": true}` zeroes it after)."""
    served = dict(sim.weight_served)
    if b.get("reset"):
        sim.weight_served.clear()
    return {"total": sum(served.values()), "by_type": served}


async def _get_state(sim: SimServer, b: dict[str, Any]) -> dict[str, Any]:
    return _state(sim)


def _state(sim: SimServer) -> dict[str, Any]:
    return {"now_ms": sim.venue.now_ms, "wall_ms": wall_ms(), "mids": info_mod.all_mids(sim.venue),
            "accounts": len(sim.venue.accounts), "agents": len(sim.venue.agents),
            "websockets": len(sim.hub.connections), "manual_clock": sim.config.manual_clock}


ROUTES: dict[str, Route] = {
    "price": _price, "path": _path, "advance": _advance, "deposit": _deposit, "withdraw": _withdraw,
    "funding": _funding, "volatility": _volatility, "liquidity": _liquidity, "fault": _fault,
    "clear_faults": _clear_faults,
    "flush": _flush, "state": _get_state, "weights": _weights,
}


def add_control_routes(app: web.Application, sim: SimServer) -> None:
    def wrap(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            if not is_loopback(request.remote):
                return web.json_response({"error": "simulator controls answer on loopback only"}, status=403)
            try:
                raw = await request.read()
                body = json.loads(raw) if raw else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                return web.json_response(await route(sim, body))
            except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)

        return handler

    for name, route in ROUTES.items():
        app.router.add_post(f"/_sim/{name}", wrap(route))
    app.router.add_get("/_sim/state", wrap(_get_state))
