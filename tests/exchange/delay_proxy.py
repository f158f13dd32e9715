"""A real HTTP proxy on a free port that can deliver an `/exchange` request late.

The simulator's own latency fault sleeps before reading the body, so a request whose client gave up is
never executed. A real network can deliver it late and the exchange then executes it: this proxy reads
the whole body at once, holds it for the scripted delay, then forwards it to the upstream venue whether
or not the client is still waiting. That is the race an unknown outcome must survive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass
class DelayProxy:
    upstream: str
    exchange_delays_s: list[float] = field(default_factory=list)
    forwarded_late: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[tuple[int, bytes, str]]] = field(default_factory=set)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/info", self._forward)
        app.router.add_post("/exchange", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def drain(self) -> None:
        """Wait until every delayed request has reached the upstream."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, path: str, body: bytes, delay_s: float) -> tuple[int, bytes, str]:
        await asyncio.sleep(delay_s)
        assert self._session is not None
        async with self._session.post(
            self.upstream + path, data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            payload = await resp.read()
            if delay_s:
                self.forwarded_late += 1
            return resp.status, payload, resp.content_type

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        delay = self.exchange_delays_s.pop(0) if request.path == "/exchange" and self.exchange_delays_s else 0.0
        task = asyncio.create_task(self._send(request.path, body, delay), name=f"proxy{request.path}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        status, payload, content_type = await asyncio.shield(task)
        return web.Response(status=status, body=payload, content_type=content_type)
