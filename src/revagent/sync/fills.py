"""Fills, funding payments and transfers as ledger facts: their signed amounts.

Pure helpers shared by the trade book and the reconciler. Their identity keys (`fill_key`,
`funding_key`, `transfer_key`) live with the ledger store that records them (`store/ledger.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from revagent.exchange.types import Fill, LedgerUpdate, UserFunding, UserFundingDelta, WsUserFunding

_ZERO = Decimal(0)

# Non-funding ledger update types that move money in (+) or out (-) of the perp account.
_IN = frozenset({"deposit", "vaultWithdraw", "rewardsClaim"})
_OUT = frozenset({"withdraw", "vaultDeposit", "vaultCreate"})
_TRANSFERS = frozenset({"internalTransfer", "subAccountTransfer", "send"})


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
