"""Who signed an `/exchange` request: recovery through the SDK's own helpers, on the exact JSON received.

The action must be the `json.loads` of the raw body (key order and int types preserved): the L1 hash is the
msgpack of that object. Signatures are checked as the SDK signs for any non-mainnet URL (testnet domain),
unless the venue is configured as mainnet.
"""

from __future__ import annotations

from typing import Any

from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action, recover_user_from_user_signed_action

APPROVE_AGENT_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
WITHDRAW_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "destination", "type": "string"},
    {"name": "amount", "type": "string"},
    {"name": "time", "type": "uint64"},
]
USER_SIGNED: dict[str, tuple[list[dict[str, str]], str]] = {
    "approveAgent": (APPROVE_AGENT_TYPES, "HyperliquidTransaction:ApproveAgent"),
    "withdraw3": (WITHDRAW_TYPES, "HyperliquidTransaction:Withdraw"),
}


class SignatureError(ValueError):
    pass


def recover_signer(action: dict[str, Any], signature: Any, nonce: int, vault: Any, expires_after: Any,
                   *, is_mainnet: bool = False) -> str:
    """The lowercase address that signed; raises SignatureError when no address can be recovered."""
    if not isinstance(signature, dict) or not {"r", "s", "v"} <= signature.keys():
        raise SignatureError("Unable to recover signer.")
    try:
        kind = USER_SIGNED.get(str(action.get("type")))
        if kind is not None:
            payload = dict(action)
            if payload.get("type") == "approveAgent" and "agentName" not in payload:
                payload["agentName"] = ""  # the SDK signs an unnamed agent with "" and then deletes the key
            if "signatureChainId" not in payload:
                raise SignatureError("Unable to recover signer.")
            address = recover_user_from_user_signed_action(payload, signature, kind[0], kind[1], is_mainnet)
        else:
            address = recover_agent_or_user_from_l1_action(action, signature, vault, nonce, expires_after, is_mainnet)
    except SignatureError:
        raise
    except Exception as exc:  # malformed r/s/v, unpackable action: the exchange cannot recover a signer
        raise SignatureError("Unable to recover signer.") from exc
    return str(address).lower()
