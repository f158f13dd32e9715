"""Golden signing tests: our wire + the SDK's signing reproduce Hyperliquid's published vectors, and the
signer recovers from a signed `/exchange` body exactly as a server would recover it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import eth_account
import pytest
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
    recover_agent_or_user_from_l1_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from revagent.exchange.hyperliquid.wire import (
    cancel_action,
    decimal_wire,
    modify_action,
    order_action,
    signed_payload,
    update_leverage_action,
)
from revagent.exchange.protocol import CancelRequest, LimitType, ModifyRequest, OrderRequest, TriggerType

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"


@pytest.fixture
def wallet() -> Any:
    return eth_account.Account.from_key(KEY)


# Vectors from hyperliquid-python-sdk tests/signing_test.py (asset 1 = ETH, nonce 0, no vault).
def test_order_with_cloid_matches_published_vectors(wallet: Any) -> None:
    order = OrderRequest(
        "ETH", True, Decimal(100), Decimal(100), LimitType("Gtc"), cloid="0x00000000000000000000000000000001"
    )
    action = order_action([order], [1], "na")
    testnet = signed_payload(wallet, action, 0, is_mainnet=False)["signature"]
    assert testnet == {
        "r": "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
        "s": "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988",
        "v": 28,
    }
    mainnet = signed_payload(wallet, action, 0, is_mainnet=True)["signature"]
    assert mainnet["r"] == "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3"
    assert mainnet["v"] == 27


def test_trigger_order_matches_published_vectors(wallet: Any) -> None:
    order = OrderRequest("ETH", True, Decimal(100), Decimal(100), TriggerType(Decimal(103), True, "sl"))
    action = order_action([order], [1], "na")
    mainnet = signed_payload(wallet, action, 0, is_mainnet=True)["signature"]
    assert mainnet == {
        "r": "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
        "s": "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405",
        "v": 27,
    }


def test_our_action_is_the_sdks_action_and_signature(wallet: Any) -> None:
    cloid = "0x" + "ab" * 16
    ours = [
        OrderRequest("BTC", True, Decimal("0.0123"), Decimal("60123.5"), LimitType("Ioc"), cloid=cloid),
        OrderRequest(
            "BTC",
            False,
            Decimal("0.0123"),
            Decimal("58000"),
            TriggerType(Decimal("58100"), True, "sl"),
            reduce_only=True,
        ),
    ]
    sdk_requests: list[Any] = [
        {
            "coin": "BTC",
            "is_buy": True,
            "sz": 0.0123,
            "limit_px": 60123.5,
            "order_type": {"limit": {"tif": "Ioc"}},
            "reduce_only": False,
            "cloid": Cloid.from_str(cloid),
        },
        {
            "coin": "BTC",
            "is_buy": False,
            "sz": 0.0123,
            "limit_px": 58000.0,
            "order_type": {"trigger": {"triggerPx": 58100.0, "isMarket": True, "tpsl": "sl"}},
            "reduce_only": True,
        },
    ]
    sdk_action = order_wires_to_order_action(
        [order_request_to_order_wire(r, 0) for r in sdk_requests], None, "normalTpsl"
    )
    action = order_action(ours, [0, 0], "normalTpsl")
    assert json.dumps(action) == json.dumps(sdk_action)  # same keys, same order, same strings
    nonce = 1_700_000_000_123
    assert signed_payload(wallet, action, nonce, is_mainnet=False)["signature"] == sign_l1_action(
        wallet, sdk_action, None, nonce, None, False
    )


@pytest.mark.parametrize("is_mainnet", [False, True])
def test_signer_recovers_from_the_posted_body(wallet: Any, is_mainnet: bool) -> None:
    agent = eth_account.Account.create()
    actions = [
        order_action(
            [OrderRequest("SOL", False, Decimal("1.25"), Decimal("150.02"), cloid="0x" + "0" * 31 + "7")], [5], "na"
        ),
        cancel_action([CancelRequest("SOL", oid=42)], [5]),
        cancel_action([CancelRequest("SOL", cloid="0x" + "1" * 32)], [5]),
        modify_action([ModifyRequest(42, OrderRequest("SOL", True, Decimal(1), Decimal(140)))], [5]),
        update_leverage_action(5, 3, is_cross=False),
    ]
    for nonce, action in enumerate(actions, start=1_700_000_000_000):
        body = json.loads(json.dumps(signed_payload(agent, action, nonce, is_mainnet=is_mainnet)))
        recovered = recover_agent_or_user_from_l1_action(
            body["action"], body["signature"], body["vaultAddress"], body["nonce"], body["expiresAfter"], is_mainnet
        )
        assert recovered.lower() == agent.address.lower()
        wrong_net = recover_agent_or_user_from_l1_action(
            body["action"], body["signature"], None, body["nonce"], None, not is_mainnet
        )
        assert wrong_net.lower() != agent.address.lower()
    assert wallet.address != agent.address


def test_wire_shapes() -> None:
    assert cancel_action([CancelRequest("SOL", oid=42)], [5]) == {"type": "cancel", "cancels": [{"a": 5, "o": 42}]}
    assert cancel_action([CancelRequest("SOL", cloid="0x" + "1" * 32)], [5]) == {
        "type": "cancelByCloid",
        "cancels": [{"asset": 5, "cloid": "0x" + "1" * 32}],
    }
    with pytest.raises(ValueError, match="either all by oid or all by cloid"):
        cancel_action([CancelRequest("SOL", oid=1), CancelRequest("SOL", cloid="0x" + "1" * 32)], [5, 5])
    with pytest.raises(ValueError, match="exactly one"):
        CancelRequest("SOL")
    modify = modify_action([ModifyRequest("0x" + "2" * 32, OrderRequest("SOL", True, Decimal(1), Decimal(140)))], [5])
    assert modify["modifies"][0]["oid"] == "0x" + "2" * 32
    assert update_leverage_action(3, 10, is_cross=True) == {
        "type": "updateLeverage",
        "asset": 3,
        "isCross": True,
        "leverage": 10,
    }


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (Decimal("60000.0"), True),
        (Decimal("0.00012345"), True),
        (Decimal("0.000123456"), False),
        (Decimal("123456.12345678"), True),
        (Decimal("NaN"), False),
        (Decimal("Infinity"), False),
    ],
)
def test_decimal_wire_is_exact_or_refused(value: Decimal, ok: bool) -> None:
    if ok:
        assert Decimal(repr(decimal_wire(value, what="price"))) == value
    else:
        with pytest.raises(ValueError, match="price"):
            decimal_wire(value, what="price")


@pytest.mark.parametrize("bad", ["0x" + "A" * 32, "0x" + "1" * 30, "1" * 34, "0xzz" + "1" * 30])
def test_malformed_cloid_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cloid"):
        order_action([OrderRequest("SOL", True, Decimal(1), Decimal(1), cloid=bad)], [5], "na")


def test_non_positive_size_is_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        order_action([OrderRequest("SOL", True, Decimal(0), Decimal(1))], [5], "na")
