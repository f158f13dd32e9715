"""Action wire formats and L1 signing, through `hyperliquid.utils.signing` (never hand-rolled EIP-712).

Pure functions, no I/O; CPU only (signing one action takes ~0.2 ms with coincurve installed, see
benchmarks/signing_bench.py), so the bridge calls them inline on the event loop.

Prices and sizes arrive as `Decimal`s on the exchange grid. The SDK's wire helpers take floats and
`float_to_wire` keeps 8 decimals; `decimal_wire` checks that the float round trip gives back the
exact decimal, so a value is either sent exactly or refused with a ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from hyperliquid.utils.signing import (
    float_to_wire,
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from revagent.exchange.hyperliquid.cloid import is_cloid
from revagent.exchange.protocol import CancelRequest, Grouping, LimitType, ModifyRequest, OrderRequest

JsonDict = dict[str, Any]


def decimal_wire(value: Decimal, *, what: str) -> float:
    """`value` as the float the SDK wants, after checking the wire string equals it exactly."""
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}")
    as_float = float(value)
    try:
        wire = float_to_wire(as_float)
    except ValueError:
        raise ValueError(f"{what} {value} has more than 8 decimals") from None
    if Decimal(wire) != value:
        raise ValueError(f"{what} {value} cannot be sent exactly (the wire would carry {wire})")
    return as_float


def _check_cloid(cloid: str | None) -> Cloid | None:
    if cloid is None:
        return None
    if not is_cloid(cloid):
        raise ValueError(f"cloid {cloid!r} is not 0x + 32 lowercase hex digits")
    return Cloid.from_str(cloid)


def order_wire(order: OrderRequest, asset: int) -> JsonDict:
    """The wire form `{"a","b","p","s","r","t","c"?}` of one order on asset id `asset`."""
    if order.size <= 0:
        raise ValueError(f"order size must be positive, got {order.size}")
    if order.limit_px <= 0:
        raise ValueError(f"order price must be positive, got {order.limit_px}")
    order_type: JsonDict
    if isinstance(order.order_type, LimitType):
        order_type = {"limit": {"tif": order.order_type.tif}}
    else:
        trigger = order.order_type
        order_type = {
            "trigger": {
                "triggerPx": decimal_wire(trigger.trigger_px, what="trigger price"),
                "isMarket": trigger.is_market,
                "tpsl": trigger.tpsl,
            }
        }
    request: JsonDict = {
        "coin": order.coin,
        "is_buy": order.is_buy,
        "sz": decimal_wire(order.size, what="size"),
        "limit_px": decimal_wire(order.limit_px, what="price"),
        "order_type": order_type,
        "reduce_only": order.reduce_only,
    }
    cloid = _check_cloid(order.cloid)
    if cloid is not None:
        request["cloid"] = cloid
    wire: JsonDict = order_request_to_order_wire(request, asset)
    return wire


def order_action(orders: Sequence[OrderRequest], assets: Sequence[int], grouping: Grouping) -> JsonDict:
    """`{"type":"order","orders":[...],"grouping":...}` for `orders` (assets[i] is the asset of orders[i])."""
    wires = [order_wire(order, asset) for order, asset in zip(orders, assets, strict=True)]
    action: JsonDict = order_wires_to_order_action(wires, None, grouping)
    return action


def cancel_action(cancels: Sequence[CancelRequest], assets: Sequence[int]) -> JsonDict:
    """`cancel` (by oid) or `cancelByCloid`; one batch must use one kind of id."""
    if all(c.oid is not None for c in cancels):
        return {
            "type": "cancel",
            "cancels": [{"a": asset, "o": c.oid} for c, asset in zip(cancels, assets, strict=True)],
        }
    if all(c.cloid is not None for c in cancels):
        items = []
        for c, asset in zip(cancels, assets, strict=True):
            cloid = _check_cloid(c.cloid)
            assert cloid is not None
            items.append({"asset": asset, "cloid": cloid.to_raw()})
        return {"type": "cancelByCloid", "cancels": items}
    raise ValueError("one cancel batch must cancel either all by oid or all by cloid")


def modify_action(modifies: Sequence[ModifyRequest], assets: Sequence[int]) -> JsonDict:
    """`{"type":"batchModify","modifies":[{"oid": oid-or-cloid, "order": wire}]}`."""
    items: list[JsonDict] = []
    for modify, asset in zip(modifies, assets, strict=True):
        target: int | str
        if isinstance(modify.target, str):
            cloid = _check_cloid(modify.target)
            assert cloid is not None
            target = cloid.to_raw()
        else:
            target = modify.target
        items.append({"oid": target, "order": order_wire(modify.order, asset)})
    return {"type": "batchModify", "modifies": items}


def update_leverage_action(asset: int, leverage: int, *, is_cross: bool) -> JsonDict:
    if leverage < 1:
        raise ValueError(f"leverage must be at least 1, got {leverage}")
    return {"type": "updateLeverage", "asset": asset, "isCross": is_cross, "leverage": leverage}


def update_isolated_margin_action(asset: int, usd: Decimal) -> JsonDict:
    """`updateIsolatedMargin`: `ntli` is the USD amount in millionths, positive adds, negative removes."""
    ntli = int((usd * 1_000_000).to_integral_value())
    if ntli == 0:
        raise ValueError(f"the margin change must be at least $0.000001, got {usd}")
    return {"type": "updateIsolatedMargin", "asset": asset, "isBuy": True, "ntli": ntli}


def signed_payload(
    signer: Any,
    action: JsonDict,
    nonce: int,
    *,
    is_mainnet: bool,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> JsonDict:
    """The `/exchange` body for `action`, signed by `signer` (an eth_account LocalAccount) with `nonce`."""
    signature = sign_l1_action(signer, action, vault_address, nonce, expires_after, is_mainnet)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": vault_address,
        "expiresAfter": expires_after,
    }
