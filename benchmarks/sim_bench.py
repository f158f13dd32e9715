"""Simulator throughput and latency.

- `http_orders_per_s`: signed orders through `POST /exchange` of a simulator process, driven by our own
  aiohttp client with 16 requests in flight (orders are signed beforehand; the server recovers every signer).
  Two mixes: IOC takers that fill (matching + accounting) and GTC orders that rest away from the mid.
- `matching_orders_per_s`: the venue alone (no HTTP, no signatures), IOC takers that fill.
- `recover_signer_us`: one signer recovery as the venue does it (the fast path: C keccak + coincurve), beside
  `recover_signer_sdk_us`, the same through the SDK's `recover_agent_or_user_from_l1_action` (eth-account's
  typed-data encoder, coincurve backend).
- `ws_fanout_latency`: from a price change (a control request) to the allMids push at each of N subscribers.

Aim: at least 1,000 signed orders per second through HTTP with 16 in flight on a 2-core machine (issue 18.5).
With REVAGENT_BENCH_BEFORE=DIR/src the same script first runs against that tree (`before`, same run).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import eth_account
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action, sign_l1_action

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, run_before, summary_us, write_results
from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.auth import recover_signer

IN_FLIGHT = 16


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (from /proc; clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "revagent.cli.sim", "serve", "--port", "0", "--seed", "1", "--controls",
         "--balance", "100000000", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("simulator did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{int(port_file.read_text())}"


def signed_bodies(n: int, mix: str, wallets: int) -> tuple[list[str], list[bytes]]:
    """(the signers' addresses, `n` signed order requests round-robin over them)."""
    accounts = [eth_account.Account.create() for _ in range(wallets)]
    base = int(time.time() * 1000)
    out = []
    for i in range(n):
        wallet = accounts[i % wallets]
        is_buy = (i // wallets) % 2 == 0
        if mix == "ioc":
            order = {"a": 1, "b": is_buy, "p": "4000" if is_buy else "2500", "s": "0.01", "r": False,
                     "t": {"limit": {"tif": "Ioc"}}}
        else:
            order = {"a": 1, "b": is_buy, "p": "2000" if is_buy else "5000", "s": "0.01", "r": False,
                     "t": {"limit": {"tif": "Gtc"}}}
        action = {"type": "order", "orders": [order], "grouping": "na"}
        nonce = base + i
        sig = sign_l1_action(wallet, action, None, nonce, None, False)
        out.append(json.dumps({"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None,
                               "expiresAfter": None}).encode())
    return [a.address for a in accounts], out


async def fund(url: str, users: list[str]) -> None:
    """The venue keeps the exchange's rule (only funded accounts act): fund the signers as the paper wallet's
    set-up does."""
    async with aiohttp.ClientSession() as http:
        for user in users:
            async with http.post(url + "/_paper/fund", json={"user": user}) as resp:
                resp.raise_for_status()


async def drive(url: str, bodies: list[bytes]) -> tuple[float, list[float], int]:
    """Send every body with IN_FLIGHT requests outstanding; (seconds, per-request latencies, errors)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body = queue.get_nowait()
                t0 = time.perf_counter()
                async with http.post(url + "/exchange", data=body,
                                     headers={"Content-Type": "application/json"}) as resp:
                    doc = await resp.json()
                latencies.append(time.perf_counter() - t0)
                statuses = doc.get("response", {}).get("data", {}).get("statuses", [{}]) if doc.get(
                    "status") == "ok" else [{"error": doc}]
                if "error" in statuses[0]:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return time.perf_counter() - t0, latencies, errors


async def ws_fanout(url: str, subscribers: int, rounds: int) -> dict[str, Any]:
    samples: list[float] = []
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(url + "/ws") for _ in range(subscribers)]
        for ws in sockets:
            await ws.receive_str()
            await ws.send_json({"method": "subscribe", "subscription": {"type": "allMids"}})
            await ws.receive_json()  # ack
            await ws.receive_json()  # snapshot
        await http.post(url + "/_sim/volatility", json={"coin": None, "annual_vol": 0})
        for r in range(rounds):
            px = f"{100 + r % 50}.5"
            t0 = time.perf_counter()
            async with http.post(url + "/_sim/price", json={"coin": "SOL", "px": px}) as resp:
                await resp.read()

            async def until(ws: aiohttp.ClientWebSocketResponse, px: str = px, t0: float = t0) -> float:
                while True:
                    msg = json.loads(await ws.receive_str())
                    if msg.get("channel") == "allMids" and msg["data"]["mids"]["SOL"] == px:
                        return time.perf_counter() - t0

            samples.extend(await asyncio.gather(*(until(ws) for ws in sockets)))
        for ws in sockets:
            await ws.close()
    return {"subscribers": subscribers, **summary_us(samples)}


def matching_only(n: int) -> dict[str, Any]:
    sim = SimServer(SimConfig(manual_clock=True, seed=1, balance=Decimal(10**8)))
    venue = sim.venue
    users = ["0x" + f"{i:040x}" for i in range(16)]
    wires = [{"a": 1, "b": i % 2 == 0, "p": "4000" if i % 2 == 0 else "2500", "s": "0.01", "r": False,
              "t": {"limit": {"tif": "Ioc"}}} for i in range(2)]
    t0 = time.perf_counter()
    for i in range(n):
        venue.place_orders(users[i % 16], [wires[(i // 16) % 2]], "na", "0x0")
        venue.events.clear()
    elapsed = time.perf_counter() - t0
    return {"orders": n, "orders_per_s": round(n / elapsed), "us_per_order": round(elapsed / n * 1e6, 1)}


def recover_cost(n: int, *, sdk: bool = False) -> dict[str, Any]:
    wallet = eth_account.Account.create()
    action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "60000", "s": "0.001", "r": False,
                                           "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"}
    sig = sign_l1_action(wallet, action, None, 1, None, False)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        if sdk:
            recover_agent_or_user_from_l1_action(action, sig, None, 1, None, False)
        else:
            recover_signer(action, sig, 1, None, None)
        samples.append(time.perf_counter() - t0)
    return summary_us(samples)


async def main() -> None:
    args = parse_args(__doc__ or "")
    n = 600 if args.quick else 6000
    before = run_before("sim_bench", quick=args.quick)
    figures: dict[str, Any] = {"in_flight": IN_FLIGHT, "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    figures["recover_signer_us"] = recover_cost(200 if args.quick else 2000)
    figures["recover_signer_sdk_us"] = recover_cost(200 if args.quick else 2000, sdk=True)
    figures["matching_only"] = matching_only(2000 if args.quick else 50_000)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        try:
            for mix in ("ioc", "gtc"):
                users, bodies = await asyncio.to_thread(signed_bodies, n, mix, 16)
                await fund(url, users)
                server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
                elapsed, lat, errors = await drive(url, bodies)
                server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu
                # what bounds it: each process is one thread, so orders/s <= 1 / (its CPU per order)
                figures[f"http_{mix}"] = {"orders": n, "orders_per_s": round(n / elapsed), "errors": errors,
                                          "server_cpu_us_per_order": round(server_cpu / n * 1e6),
                                          "client_cpu_us_per_order": round(client_cpu / n * 1e6),
                                          "latency": summary_us(lat)}
            figures["ws_fanout"] = await ws_fanout(url, 10 if args.quick else 50, 10 if args.quick else 50)
        finally:
            proc.terminate()
            proc.wait(10)
    figures["load_avg_1m_end"] = os.getloadavg()[0]
    if before is not None:
        figures["before"] = before
    write_results("sim_bench", figures, quick=args.quick)


if __name__ == "__main__":
    asyncio.run(main())
