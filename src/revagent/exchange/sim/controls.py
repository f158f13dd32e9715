"""A typed async client for the simulator's `/_sim/...` test controls (the server needs `controls=True`).

    async with SimControls(base_url) as ctl:
        await ctl.set_price("BTC", "60000")
        await ctl.advance(3_600_000)                 # one hour of market time: funding, candles, triggers
        await ctl.inject_http_error(502, count=2, path="/exchange")
        await ctl.lose_order_responses(1)            # the next accepted order's response is dropped
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import BaseModel


class SimState(BaseModel):
    now_ms: int
    wall_ms: int
    mids: dict[str, str]
    accounts: int
    agents: int
    websockets: int
    manual_clock: bool


class SimControlError(RuntimeError):
    """The simulator refused a control request (HTTP 400/403); the message is its answer."""


Number = Decimal | str | float | int


class SimControls:
    """Owns an aiohttp session unless one is passed in. Use as an async context manager or call `close()`."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None, timeout_s: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owned = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __aenter__(self) -> SimControls:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(f"{self.base_url}/_sim/{name}", json=body or {}) as resp:
            doc: dict[str, Any] = await resp.json()
            if resp.status != 200:
                raise SimControlError(str(doc.get("error", doc)))
            return doc

    async def state(self) -> SimState:
        return SimState.model_validate(await self._call("state"))

    async def set_price(self, coin: str, px: Number) -> SimState:
        """Move `coin`'s oracle price to `px` now; resting orders, triggers and liquidations react at once."""
        return SimState.model_validate(await self._call("price", {"coin": coin, "px": str(px)}))

    async def set_path(self, coin: str, prices: list[Number], step_ms: int = 1000) -> SimState:
        """Walk `coin` through `prices`, advancing market time by `step_ms` before each."""
        body = {"coin": coin, "prices": [str(p) for p in prices], "step_ms": step_ms}
        return SimState.model_validate(await self._call("path", body))

    async def advance(self, ms: int) -> SimState:
        """Advance market time (funding each hour, candles, triggers); nonces still follow wall time."""
        return SimState.model_validate(await self._call("advance", {"ms": ms}))

    async def deposit(self, user: str, usd: Number) -> None:
        await self._call("deposit", {"user": user, "usd": str(usd)})

    async def withdraw(self, user: str, usd: Number) -> None:
        await self._call("withdraw", {"user": user, "usd": str(usd)})

    async def set_funding_premium(self, coin: str, premium: Number) -> None:
        await self._call("funding", {"coin": coin, "premium": str(premium)})

    async def set_volatility(self, coin: str | None, annual_vol: float) -> None:
        """Volatility of the synthetic walk (None: every market); 0 holds prices still while time advances."""
        await self._call("volatility", {"coin": coin, "annual_vol": annual_vol})

    async def set_liquidity(self, coin: str, scale: Number, spread_ticks: int | None = None) -> None:
        await self._call("liquidity", {"coin": coin, "scale": str(scale), "spread_ticks": spread_ticks})

    async def set_latency(self, ms: int) -> None:
        await self._call("fault", {"latency_ms": ms})

    async def inject_http_error(self, status: int, count: int = 1, path: str | None = None) -> None:
        """The next `count` requests (to `path`, or to /info and /exchange) get HTTP `status` (5xx, 429)."""
        await self._call("fault", {"http_status": status, "count": count, "path": path})

    async def lose_order_responses(self, count: int = 1) -> None:
        """The next `count` accepted order actions execute, but their connection closes without a response."""
        await self._call("fault", {"lose_order_responses": count})

    async def drop_websockets(self) -> int:
        """Close every websocket connection now; returns how many there were."""
        return int((await self._call("fault", {"drop_websockets": True}))["dropped_websockets"])

    async def websocket_outage(self, down: bool = True) -> int:
        """Drop every websocket and refuse new ones until called with `down=False` (or `clear_faults`).
        Returns how many were dropped."""
        doc = await self._call("fault", {"refuse_websockets": down, "drop_websockets": down})
        return int(doc["dropped_websockets"])

    async def rest_outage(self, status: int = 502) -> None:
        """Every `/info` request answers `status` (429, 502, ...) until `clear_faults`; `/exchange` and the
        websocket keep working."""
        await self._call("fault", {"http_status": status, "count": 10**9, "path": "/info"})

    async def weights(self, *, reset: bool = False) -> dict[str, Any]:
        """The request weight the venue received: {"total": n, "by_type": {...}}; `reset` zeroes it after."""
        return await self._call("weights", {"reset": reset})

    async def clear_faults(self) -> None:
        await self._call("clear_faults")

    async def flush(self) -> None:
        """Write the state file now."""
        await self._call("flush")
