"""The doctor's probe order, a session command (`doctor.probe_order`): a far-off post-only buy placed
and cancelled through the session's gateway, to prove the keys work (paper and testnet only).

`revagent doctor` sends it to the wallet's owner, or runs it under a one-shot lease (see `doctor.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from revagent.errors import NotFoundError, UsageError
from revagent.models import Emit
from revagent.runtime.commands import Session, channel_check

PROBE_COMMAND = "doctor.probe_order"
PROBE_DISCOUNT = Decimal("0.6")
"""The probe buys at 60% of the mid: far from any fill, within Hyperliquid's 80% price band."""
PROBE_NOTIONAL_USD = Decimal("12")
"""Just above Hyperliquid's $10 minimum order value."""


def register_doctor_commands(session: Session) -> None:
    """Add `doctor.probe_order` to a session (the session registers it beside the trading commands)."""

    async def handler(args: dict[str, Any], emit: Emit) -> Any:
        return await probe_order(session, args)

    session.register_command(PROBE_COMMAND, handler)


async def probe_order(session: Session, args: dict[str, Any], *,
                      clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """Place a far-off post-only buy and cancel it, through the session's gateway (paper and testnet
    only): journalled before it is sent, lease-checked, and not sent at all while the risk state
    refuses orders (HALTED, LOCKED: `skipped`).

    Arguments: `action_id` (required; seeds the cloid, so a retry reuses it) and `market` (default
    BTC). Returns `ok` (placed and cancelled), `skipped`, `message`, `market`, `price`, `size`,
    `cloid`, `oid`, `round_trip_ms`. An exchange refusal is `ok: false`, not an exception; an
    unknown outcome is settled by cloid before the cancel.
    """
    from revagent.gateway import Action
    from revagent.risk.rounding import round_price, round_size_up

    if session.wallet.network == "mainnet":
        raise UsageError("the doctor's probe order runs on paper and testnet only")
    action_id = str(args.get("action_id") or "")
    if not action_id:
        raise UsageError("internal: the probe carries no action id")
    await session.start_trading()
    bridge = session.bridge
    assert bridge is not None
    market = str(args.get("market") or "BTC").upper()
    _asset, info = await bridge.asset(market)
    mid = (await bridge.all_mids()).get(market)
    if mid is None or mid <= 0:
        raise NotFoundError(f"no mid price for {market}")
    price = round_price(mid * PROBE_DISCOUNT, info.sz_decimals, is_buy=True)
    size = round_size_up(PROBE_NOTIONAL_USD / price, info.sz_decimals)
    action = Action(f"probe:{action_id}", check=channel_check())
    assert session.gateway is not None
    doc: dict[str, Any] = {"market": market, "price": str(price), "size": str(size), "cloid": action.cloid("probe"),
                           "oid": None, "ok": False, "skipped": False, "message": "", "round_trip_ms": None}
    started = clock()
    result = await session.gateway.probe(market, price=price, size=size, action=action)
    probe = next((r for r in result.orders if r.role == "probe"), None)
    doc["oid"] = probe.oid if probe is not None else None
    if result.status == "refused":  # the risk state refuses orders: nothing was sent
        doc.update(skipped=True, message=result.message)
        return doc
    doc["round_trip_ms"] = round((clock() - started) * 1000, 1)
    if probe is not None and probe.status == "filled":  # cannot happen for a post-only order 40% under the mid
        doc["message"] = "the probe FILLED: check the account"
    elif result.status == "done" and probe is not None and probe.status == "cancelled":
        doc.update(ok=True, message="placed and cancelled")
    elif result.status == "unknown":
        doc["message"] = f"the probe's outcome is unknown; cloid {doc['cloid']} may still rest"
    else:
        doc["message"] = result.message
    return doc
