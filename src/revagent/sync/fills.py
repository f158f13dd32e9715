"""Fills, funding payments and transfers as ledger facts: their identity keys and signed amounts.

Pure helpers shared by the ledger store, the trade book and the reconciler.

Identity (what makes a fact "the same" when it is seen twice, from REST and from the websocket):
- a fill is keyed by the exchange's trade id `tid` when it has one (`t:<tid>`); older records (the
  recorded fixtures) have no `tid`, and their `hash` and even `hash`+`oid` repeat, so the key is a
  digest of the fill's whole content (`c:<sha256>`);
- a funding payment by (time, coin): the websocket's `user.funding` carries no hash;
- a non-funding ledger update (deposit, withdrawal, transfer) by (time, hash, type) plus its content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from revagent.exchange.types import Fill, LedgerUpdate, UserFunding, UserFundingDelta, WsUserFunding

_ZERO = Decimal(0)

# Non-funding ledger update types that move money in (+) or out (-) of the perp account.
_IN = frozenset({"deposit", "vaultWithdraw", "rewardsClaim"})
_OUT = frozenset({"withdraw", "vaultDeposit", "vaultCreate"})
_TRANSFERS = frozenset({"internalTransfer", "subAccountTransfer", "send"})


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def fill_key(fill: Fill) -> str:
    """The fill's identity: `t:<tid>` or, without a tid, `c:<digest of the whole fill>`."""
    if fill.tid is not None:
        return f"t:{fill.tid}"
    return "c:" + _digest(fill.model_dump(mode="json", by_alias=True, exclude_none=True))


def funding_key(payment: UserFunding) -> str:
    """One payment per market per funding time: the websocket's copy (no hash) and REST's are the same."""
    return f"f:{payment.time}:{payment.delta.coin}"


def transfer_key(update: LedgerUpdate) -> str:
    return "x:" + _digest(update.model_dump(mode="json", by_alias=True, exclude_none=True))


def signed_size(fill: Fill) -> Decimal:
    """The fill's signed size in coins: + for a buy ("B"), - for a sell ("A")."""
    return fill.sz if fill.side == "B" else -fill.sz


def end_position(fill: Fill) -> Decimal:
    """The position on the fill's market right after it (its `startPosition` plus its signed size)."""
    return fill.start_position + signed_size(fill)


def transfer_amount(update: LedgerUpdate, master: str | None = None) -> Decimal | None:
    """The signed USD that `update` moved into (+) or out of (-) the perp account, or None when it is not
    a transfer (a liquidation, a spot-only movement). A withdrawal counts its fee too: it leaves the
    account as well. `master` (lowercase) decides the direction of transfers between accounts."""
    delta = update.delta
    usdc = delta.usdc
    extra = delta.model_extra or {}
    if usdc is None:
        return None
    if delta.type in _IN:
        return usdc
    if delta.type in _OUT:
        fee = Decimal(str(extra.get("fee", "0") or "0"))
        return -(usdc + fee)
    if delta.type == "accountClassTransfer":
        return usdc if extra.get("toPerp") else -usdc
    if delta.type in _TRANSFERS:
        destination = str(extra.get("destination", "")).lower()
        if master is not None and destination == master.lower():
            return usdc
        return -usdc
    return None


def net_transfers(updates: Iterable[LedgerUpdate], master: str | None = None) -> Decimal:
    """The sum of `transfer_amount` over `updates` (non-transfers count zero)."""
    return sum((a for a in (transfer_amount(u, master) for u in updates) if a is not None), _ZERO)


def funding_from_ws(event: WsUserFunding) -> UserFunding:
    """The websocket's funding payment in the REST shape (no transaction hash on the websocket)."""
    return UserFunding(time=event.time, hash="", delta=UserFundingDelta(
        coin=event.coin, usdc=event.usdc, szi=event.szi, funding_rate=event.funding_rate))
