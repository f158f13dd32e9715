"""Approving an agent wallet for a master account (`approveAgent`, a user-signed action).

The master key signs once; it is never stored by revagent for live wallets (typed at a hidden
prompt). Paper wallets keep a generated master key in the data dir and approve their agent at
first use, so paper trading exercises the same agent-wallet model as live trading.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from revagent.errors import ExchangeUnavailableError, RefusedError
from revagent.keys import SecretKey


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
