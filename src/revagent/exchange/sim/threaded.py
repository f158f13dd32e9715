"""A simulator on its own event loop in a background thread, for synchronous tests and tools.

    with ThreadedSim(SimConfig(manual_clock=True)) as sim:
        info = Info(sim.base_url, skip_ws=True)
        sim.call(lambda s: s.set_price("BTC", "60000"))   # runs on the simulator's loop

The thread is a daemon, but `__exit__`/`stop()` always stops the server and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from revagent.exchange.sim.config import SimConfig
from revagent.exchange.sim.server import SimServer

T = TypeVar("T")


class ThreadedSim:
    def __init__(self, config: SimConfig | None = None, start_timeout: float = 30.0) -> None:
        self.config = config or SimConfig()
        self.base_url = ""
        self._timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def start(self) -> str:
        started: Future[str] = Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name="sim-thread", daemon=True)
        self._thread.start()
        self.base_url = started.result(timeout=self._timeout)
        return self.base_url

    def _run(self, started: Future[str]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            self._server = SimServer(self.config)
            try:
                started.set_result(await self._server.start())
            except BaseException as exc:
                started.set_exception(exc)
                raise
            try:
                await self._stopped.wait()
            finally:
                await self._server.stop()

        asyncio.run(main())

    def call(self, fn: Callable[[SimServer], T]) -> T:
        """Run `fn(server)` on the simulator's loop (controls are not thread-safe otherwise); return its result."""
        assert self._loop is not None and self._server is not None, "start() first"
        server = self._server

        async def run() -> T:
            return fn(server)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=self._timeout)

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(self._timeout)
        self._loop = None

    def __enter__(self) -> ThreadedSim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
