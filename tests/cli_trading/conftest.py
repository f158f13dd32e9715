"""Fixtures for the shell-trading tests: the simulator on its own thread (the `revagent` subprocesses
reach it over HTTP while the test thread blocks on them), an isolated revagent home pointed at it, and
helpers that run the real `revagent` command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from revagent.exchange.sim import SimConfig, SimServer

T = TypeVar("T")
ENTRY = Path(__file__).with_name("entry.py")
BTC, ETH = Decimal(60000), Decimal(3000)


class ThreadedSim:
    """A `SimServer` running on an event loop in a background thread. `call(fn)` runs `fn(server)` on
    that loop (the server is not thread-safe) and returns its result."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.server = SimServer(config)
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim-loop", daemon=True)
        self.url = ""

    def start(self) -> str:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=30)
        return self.url

    def call(self, fn: Callable[[SimServer], T]) -> T:
        async def run() -> T:
            return fn(self.server)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def info(self, payload: dict[str, Any]) -> Any:
        """POST /info straight to the venue: what the exchange itself holds."""
        req = urllib.request.Request(self.url + "/info", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def positions(self, user: str) -> dict[str, Decimal]:
        state = self.info({"type": "clearinghouseState", "user": user})
        return {p["position"]["coin"]: Decimal(p["position"]["szi"]) for p in state["assetPositions"]
                if Decimal(p["position"]["szi"]) != 0}

    def open_orders(self, user: str) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self.info({"type": "frontendOpenOrders", "user": user})
        return orders


def _start_sim(manual_clock: bool) -> ThreadedSim:
    sim = ThreadedSim(SimConfig(seed=5, controls=True, manual_clock=manual_clock, history_minutes=0))
    sim.start()
    def prices(server: SimServer) -> None:
        server.set_price("BTC", BTC)
        server.set_price("ETH", ETH)

    sim.call(prices)
    return sim


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    """A deterministic venue: prices stay at BTC 60000 and ETH 3000 unless a test moves them."""
    server = _start_sim(manual_clock=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_clock_sim() -> Iterator[ThreadedSim]:
    """A venue whose clock is the wall clock (the doctor's skew check compares against it)."""
    server = _start_sim(manual_clock=False)
    try:
        yield server
    finally:
        server.stop()


def point_at(monkeypatch: pytest.MonkeyPatch, venue: ThreadedSim) -> None:
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", venue.url)


@pytest.fixture
def paper(revagent_home: Path, sim: ThreadedSim, monkeypatch: pytest.MonkeyPatch) -> ThreadedSim:
    """The default paper wallet of an isolated home, trading on `sim`."""
    point_at(monkeypatch, sim)
    return sim


def rv(*args: str, input: str | None = None, env: dict[str, str] | None = None, doctor: bool = False,
       timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run the real command in a new session (no controlling terminal: a hidden prompt reads stdin)."""
    cmd = [sys.executable, str(ENTRY)] if doctor else [sys.executable, "-m", "revagent"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, input=input,
                          env={**os.environ, **(env or {})}, start_new_session=True)


def ok_json(*args: str, doctor: bool = False) -> Any:
    out = rv(*args, "--json", doctor=doctor)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-2000:])
    return json.loads(out.stdout)


def master_of(wallet: str | None = None) -> str:
    doc = ok_json("wallet", "show", *([wallet] if wallet else []), "--no-check")
    address: str = doc["master_address"]
    return address


class Daemon:
    """`revagent daemon` for one wallet, as a real process; stopped with SIGTERM."""

    def __init__(self, log: Path, wallet: str | None = None) -> None:
        args = [sys.executable, "-m", "revagent", "daemon", *(["--wallet", wallet] if wallet else [])]
        self.log = log
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.wallet = wallet

    def wait_owner(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the daemon exited: {self.log.read_text()[-2000:]}"
            doc = ok_json("status", *(["--wallet", self.wallet] if self.wallet else []))
            if doc["owner"] is not None and doc["owner"]["pid"] == self.proc.pid:
                return doc  # type: ignore[no-any-return]
            time.sleep(0.3)
        raise AssertionError("the daemon never took the lease")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@pytest.fixture
def daemon(paper: ThreadedSim, tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "daemon.log")
    try:
        d.wait_owner()
        yield d
    finally:
        d.stop()
