"""Approving an agent wallet for a master account (`approveAgent`, a user-signed action).

The master key signs once; it is never stored by revagent for live wallets (typed at a hidden
prompt). Paper wallets keep a generated master key in the data dir and approve their agent at
first use, so paper trading exercises the same agent-wallet model as live trading.
`AgentCheckCache` keeps a positive approval check in the store for a while.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import aiohttp

from revagent.config.keys import SecretKey
from revagent.errors import ExchangeUnavailableError, RefusedError
from revagent.exchange.protocol import AgentCheck


def approve_agent_payload(master: SecretKey, agent_address: str, name: str, *, is_mainnet: bool,
                          nonce_ms: int | None = None) -> dict[str, Any]:
    """The signed `/exchange` body approving `agent_address` for the master key's account."""
    from eth_utils.address import to_checksum_address
    from hyperliquid.utils.signing import sign_agent

    nonce = nonce_ms if nonce_ms is not None else int(time.time() * 1000)
    action: dict[str, Any] = {"type": "approveAgent", "agentAddress": to_checksum_address(agent_address),
                              "agentName": name, "nonce": nonce}
    signature = sign_agent(master.account(), action, is_mainnet)
    if not name:
        del action["agentName"]  # as the SDK does for an unnamed agent
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}


async def approve_agent(base_url: str, master: SecretKey, agent_address: str, name: str, *, is_mainnet: bool,
                        timeout_s: float = 10.0) -> None:
    """POST the approval; raises RefusedError with the exchange's text if it refuses."""
    body = approve_agent_payload(master, agent_address, name, is_mainnet=is_mainnet)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http, \
                http.post(base_url.rstrip("/") + "/exchange", json=body) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ExchangeUnavailableError(f"cannot reach {base_url} to approve the agent: {exc}") from None
    if resp.status >= 400 or '"err"' in text:
        raise RefusedError(f"the exchange refused to approve agent {agent_address}: {text[:300]}")


async def fund_paper_account(base_url: str, master_address: str, *, timeout_s: float = 10.0) -> bool:
    """The paper wallet's deposit: ask the local paper venue to fund `master_address` with its starting
    balance (once; an existing account is left alone). True when it was funded now. The venue, like the
    exchange, refuses every action of an account that never deposited."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http, \
                http.post(base_url.rstrip("/") + "/_paper/fund", json={"user": master_address}) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ExchangeUnavailableError(f"cannot reach the paper venue {base_url} to fund {master_address}: "
                                       f"{exc}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if resp.status >= 400 or not isinstance(doc, dict) or doc.get("status") != "ok":
        raise RefusedError(f"the paper venue refused to fund {master_address}: {text[:300]}")
    return bool(doc.get("funded"))


async def approve_paper_agent(base_url: str, master: SecretKey, agent_address: str, name: str, *,
                              timeout_s: float = 10.0) -> None:
    """A paper wallet's set-up: fund its master on the paper venue (explicitly, as a deposit would), then
    approve its agent with the master key (the same agent-wallet model as live trading)."""
    await fund_paper_account(base_url, master.address(), timeout_s=timeout_s)
    await approve_agent(base_url, master, agent_address, name, is_mainnet=False, timeout_s=timeout_s)


class AgentCheckCache:
    """Approved-agent checks kept in the store for `ttl_s` (never past the approval's own expiry), so a
    one-shot command does not pay two `userRole` and one `extraAgents` (140 weight) each time. Only
    an `ok` answer is kept: a refusal is asked again. Keys are host-wide, per network, master and
    agent (`rev:agentcheck:...`). Pass it to `HyperliquidBridge(agent_checks=...)`."""

    def __init__(self, redis: Any, network: str, *, ttl_s: float = 6 * 3600) -> None:
        self.redis = redis
        self.network = network
        self.ttl_ms = int(ttl_s * 1000)

    def _key(self, master: str, agent: str) -> str:
        return f"rev:agentcheck:{self.network}:{master.lower()}:{agent.lower()}"

    async def get(self, master: str, agent: str) -> AgentCheck | None:
        raw = await self.redis.get(self._key(master, agent))
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            check = AgentCheck(master=str(doc["master"]), agent=str(doc["agent"]), ok=bool(doc["ok"]),
                               problem=doc.get("problem"), agent_name=doc.get("agent_name"),
                               valid_until_ms=doc.get("valid_until_ms"))
        except (ValueError, KeyError, TypeError):
            return None
        if not check.ok or (check.valid_until_ms is not None and check.valid_until_ms <= int(time.time() * 1000)):
            return None
        return check

    async def put(self, check: AgentCheck) -> None:
        if not check.ok:
            await self.redis.delete(self._key(check.master, check.agent))
            return
        ttl = self.ttl_ms
        if check.valid_until_ms is not None:
            ttl = min(ttl, check.valid_until_ms - int(time.time() * 1000))
        if ttl > 0:
            await self.redis.set(self._key(check.master, check.agent), json.dumps(dataclasses.asdict(check)), px=ttl)

    async def forget(self, master: str, agent: str) -> None:
        await self.redis.delete(self._key(master, agent))
