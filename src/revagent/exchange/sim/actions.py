"""`POST /exchange`: envelope checks, signer recovery, agent mapping, nonces, then the action itself.

Answers as Hyperliquid does: `{"status":"ok","response":{...}}`, or `{"status":"err","response":"text"}` when
the whole request fails; a body that is not an exchange request gets HTTP 422 with plain text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from revagent.exchange.sim.auth import USER_SIGNED, SignatureError, recover_signer
from revagent.exchange.sim.nonces import NonceBook
from revagent.exchange.sim.numbers import parse_wire
from revagent.exchange.sim.venue import Venue

DESERIALIZE = "Failed to deserialize the JSON body into the target type"
AGENT_DEFAULT_VALIDITY_MS = 180 * 24 * 3600 * 1000
_VALID_UNTIL = re.compile(r"\bvalid_until (\d+)\b")
GROUPINGS = ("na", "normalTpsl", "positionTpsl")
# Real Hyperliquid actions this venue does not model (transfers, spot, vaults, sub-accounts, staking, deploys):
# refused as the exchange refuses an action, `{"status":"err","response":...}`, not with a 422.
UNSUPPORTED = frozenset({
    "usdSend", "spotSend", "sendAsset", "usdClassTransfer", "vaultTransfer", "createVault", "vaultModify",
    "vaultDistribute", "createSubAccount", "subAccountTransfer", "subAccountSpotTransfer", "subAccountModify",
    "approveBuilderFee", "setReferrer", "registerReferrer", "tokenDelegate", "cDeposit", "cWithdraw", "twapOrder",
    "twapCancel", "spotUser", "convertToMultiSigUser", "multiSig", "spotDeploy", "perpDeploy",
    "userSetAbstraction", "agentSetAbstraction", "evmUserModify", "claimRewards", "validatorL1Stream",
    "reserveRequestWeight", "userDexAbstraction", "agentEnableDexAbstraction", "linkStakingUser",
})


def err(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def ok(response: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "response": response}


DEFAULT = {"type": "default"}


class ExchangeHandler:
    """Stateless apart from the nonce book; `auto_fund` lets an unknown signer trade (it gets the balance).
    Without it (the exchange's rule) only funded accounts and their approved agents may act: accounts are
    funded explicitly (`Venue.deposit`, the paper wallet's set-up through `POST /_paper/fund`)."""

    def __init__(self, venue: Venue, nonces: NonceBook, *, auto_fund: bool = True, is_mainnet: bool = False) -> None:
        self.venue = venue
        self.nonces = nonces
        self.auto_fund = auto_fund
        self.is_mainnet = is_mainnet

    def handle(self, body: Any, wall_ms: int) -> tuple[int, dict[str, Any] | str]:
        """(HTTP status, JSON document or plain text) for one request body (already `json.loads`-ed)."""
        if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
            return 422, f"{DESERIALIZE}: missing field `action`"
        action: dict[str, Any] = body["action"]
        nonce = body.get("nonce")
        if not isinstance(nonce, int) or isinstance(nonce, bool) or nonce < 0:
            return 422, f"{DESERIALIZE}: missing field `nonce`"
        kind = action.get("type")
        if isinstance(kind, str) and kind in UNSUPPORTED:
            return 200, err(f"Action {kind} is not supported on this venue (paper trading covers perpetuals only).")
        if not isinstance(kind, str) or kind not in HANDLERS:
            return 422, f"{DESERIALIZE}: unknown variant `{kind}`"
        vault, expires = body.get("vaultAddress"), body.get("expiresAfter")
        if expires is not None and (not isinstance(expires, int) or expires < wall_ms):
            return 200, err(f"Action expired: expiresAfter {expires} is before the current time {wall_ms}")
        try:
            signer = recover_signer(action, body.get("signature"), nonce, vault, expires, is_mainnet=self.is_mainnet)
        except SignatureError as exc:
            return 200, err(str(exc))
        user_signed = kind in USER_SIGNED
        if user_signed and action.get("nonce", action.get("time")) != nonce:
            return 200, err("Invalid nonce: the action's nonce differs from the request's")
        agent = self.venue.agents.get(signer)
        if agent is not None:
            if user_signed or agent.valid_until < wall_ms:
                return 200, err(f"User or API Wallet {signer} does not exist.")
            user = agent.master
        elif signer in self.venue.accounts or self.auto_fund:
            user = signer
        elif user_signed:  # a master that never deposited (paper: never funded by the wallet's set-up)
            return 200, err(f"Must deposit before performing actions. User: {signer}")
        else:  # an unknown key, or one signed for another chain (it recovers to a stranger's address)
            return 200, err(f"User or API Wallet {signer} does not exist.")
        if vault is not None:
            return 200, err(f"Vault or sub-account {vault} does not exist.")
        nonce_error = self.nonces.check_and_use(signer, nonce, wall_ms)
        if nonce_error is not None:
            return 200, err(nonce_error)
        acct = self.venue.account(user)
        acct.n_requests += 1 + _batch_size(action) // 40
        return 200, HANDLERS[kind](self, user, action, wall_ms)

    # actions -------------------------------------------------------------------------------------------------
    def order(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        orders, grouping = action.get("orders"), action.get("grouping", "na")
        if not isinstance(orders, list) or not (grouping in GROUPINGS or isinstance(grouping, dict)):
            return err("Invalid order action.")
        statuses = self.venue.place_orders(user, orders, grouping, self.venue.new_hash())
        return ok({"type": "order", "data": {"statuses": statuses}})

    def cancel(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        cancels = action.get("cancels")
        if not isinstance(cancels, list):
            return err("Invalid cancel action.")
        return ok({"type": "cancel", "data": {"statuses": self.venue.cancel(user, cancels)}})

    def batch_modify(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        modifies = action.get("modifies")
        if not isinstance(modifies, list):
            return err("Invalid modify action.")
        statuses = self.venue.modify(user, modifies, self.venue.new_hash())
        return ok({"type": "order", "data": {"statuses": statuses}})

    def modify(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        statuses = self.venue.modify(user, [{"oid": action.get("oid"), "order": action.get("order")}],
                                     self.venue.new_hash())
        if isinstance(statuses[0], dict) and "error" in statuses[0]:
            return err(str(statuses[0]["error"]))
        return ok(DEFAULT)

    def update_leverage(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        e = self.venue.update_leverage(user, action.get("asset"), action.get("isCross"), action.get("leverage"))
        return err(e) if e else ok(DEFAULT)

    def update_isolated_margin(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        e = self.venue.update_isolated_margin(user, action.get("asset"), action.get("ntli"))
        return err(e) if e else ok(DEFAULT)

    def schedule_cancel(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        e = self.venue.schedule_cancel(user, action.get("time"))
        return err(e) if e else ok(DEFAULT)

    def approve_agent(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        agent = action.get("agentAddress")
        if not isinstance(agent, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", agent):
            return err("Invalid agent address.")
        name = str(action.get("agentName") or "")
        m = _VALID_UNTIL.search(name)
        valid_until = int(m.group(1)) if m else wall_ms + AGENT_DEFAULT_VALIDITY_MS
        e = self.venue.approve_agent(user, agent.lower(), name, valid_until)
        return err(e) if e else ok(DEFAULT)

    def withdraw(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        amount = parse_wire(action.get("amount"))
        if amount is None or amount <= 0:
            return err("Invalid withdraw amount.")
        e = self.venue.withdraw(user, Decimal(amount))
        return err(e) if e else ok(DEFAULT)

    def noop(self, user: str, action: dict[str, Any], wall_ms: int) -> dict[str, Any]:
        return ok(DEFAULT)


def _batch_size(action: dict[str, Any]) -> int:
    for key in ("orders", "cancels", "modifies"):
        items = action.get(key)
        if isinstance(items, list):
            return len(items)
    return 1


HANDLERS = {
    "order": ExchangeHandler.order,
    "cancel": ExchangeHandler.cancel,
    "cancelByCloid": ExchangeHandler.cancel,
    "batchModify": ExchangeHandler.batch_modify,
    "modify": ExchangeHandler.modify,
    "updateLeverage": ExchangeHandler.update_leverage,
    "updateIsolatedMargin": ExchangeHandler.update_isolated_margin,
    "scheduleCancel": ExchangeHandler.schedule_cancel,
    "approveAgent": ExchangeHandler.approve_agent,
    "withdraw3": ExchangeHandler.withdraw,
    "noop": ExchangeHandler.noop,
}
