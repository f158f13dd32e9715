"""The SDK's published signing vectors recover to the key that made them, through the simulator's recovery."""

from __future__ import annotations

import eth_account
import pytest
from hyperliquid.utils.signing import (
    float_to_int_for_hashing,
    order_request_to_order_wire,
    order_wires_to_order_action,
)
from hyperliquid.utils.types import Cloid

from revagent.exchange.sim.auth import SignatureError, recover_signer

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
SIGNER = eth_account.Account.from_key(KEY).address.lower()
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"


def _order_action(order_type: dict[str, object], cloid: Cloid | None = None) -> dict[str, object]:
    req = {"coin": "ETH", "is_buy": True, "sz": 100, "limit_px": 100, "reduce_only": False,
           "order_type": order_type, "cloid": cloid}
    return order_wires_to_order_action([order_request_to_order_wire(req, 1)])  # type: ignore[arg-type]


DUMMY = {"type": "dummy", "num": float_to_int_for_hashing(1000)}
GTC = {"limit": {"tif": "Gtc"}}
SL = {"trigger": {"triggerPx": 103, "isMarket": True, "tpsl": "sl"}}

# (action, vault, mainnet?, r, s, v) from hyperliquid-python-sdk tests/signing_test.py (nonce 0)
VECTORS = [
    (DUMMY, None, True, "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
     "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
    (DUMMY, None, False, "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
     "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28),
    (_order_action(GTC), None, True, "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
     "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
    (_order_action(GTC), None, False, "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
     "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27),
    (_order_action(GTC, Cloid.from_str("0x00000000000000000000000000000001")), None, False,
     "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
     "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28),
    (DUMMY, VAULT, False, "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
     "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", 27),
    (_order_action(SL), None, False, "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
     "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac", 28),
    ({"type": "scheduleCancel", "time": 123456789}, None, False,
     "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
     "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678", 27),
]


@pytest.mark.parametrize(("action", "vault", "mainnet", "r", "s", "v"), VECTORS)
def test_vectors_recover_the_signing_key(action: dict[str, object], vault: str | None, mainnet: bool,
                                         r: str, s: str, v: int) -> None:
    sig = {"r": r, "s": s, "v": v}
    assert recover_signer(action, sig, 0, vault, None, is_mainnet=mainnet) == SIGNER
    # the same signature over anything else recovers someone else
    assert recover_signer(action, sig, 1, vault, None, is_mainnet=mainnet) != SIGNER
    assert recover_signer(action, sig, 0, vault, None, is_mainnet=not mainnet) != SIGNER


def test_withdraw_vector_recovers_as_user_signed_action() -> None:
    action = {"type": "withdraw3", "signatureChainId": "0x66eee", "hyperliquidChain": "Testnet",
              "destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a", "amount": "1", "time": 1687816341423}
    sig = {"r": "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
           "s": "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881", "v": 28}
    assert recover_signer(action, sig, 1687816341423, None, None) == SIGNER
    assert recover_signer(dict(action, amount="2"), sig, 1687816341423, None, None) != SIGNER


def test_key_order_matters_for_l1_hash() -> None:
    """The L1 hash is over msgpack of the object as received: reordering keys changes the signer."""
    action = _order_action(GTC)
    sig = {"r": VECTORS[3][3], "s": VECTORS[3][4], "v": VECTORS[3][5]}
    reordered = {"grouping": action["grouping"], "orders": action["orders"], "type": action["type"]}
    assert recover_signer(action, sig, 0, None, None) == SIGNER
    assert recover_signer(reordered, sig, 0, None, None) != SIGNER


def test_malformed_signature_is_refused() -> None:
    with pytest.raises(SignatureError, match="Unable to recover signer"):
        recover_signer(DUMMY, {"r": "0x0", "s": "0x0", "v": 27}, 0, None, None)
    with pytest.raises(SignatureError):
        recover_signer(DUMMY, "nope", 0, None, None)
