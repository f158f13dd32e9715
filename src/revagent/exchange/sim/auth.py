"""Who signed an `/exchange` request: recovery through the SDK's own helpers, on the exact JSON received.

The action must be the `json.loads` of the raw body (key order and int types preserved): the L1 hash is the
msgpack of that object. Signatures are checked as the SDK signs for any non-mainnet URL (testnet domain),
unless the venue is configured as mainnet.

L1 actions (orders, cancels, modifies: nearly every request) are recovered on a fast path that computes the
same EIP-712 digest as the SDK (`action_hash` -> phantom agent -> typed-data digest) with pycryptodome's C
keccak and recovers the key with libsecp256k1 through coincurve, without eth-account's generic typed-data
encoder (about 4x less time per request). Anything the fast path does not take (a `v` other than 27/28, an
`r`/`s` that is not a number below the curve order) goes through the SDK's own helper, which decides.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import coincurve
import msgpack
from Crypto.Hash import keccak as _keccak
from Crypto.Util import _raw_api
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


def _keccak_public(data: bytes) -> bytes:
    return _keccak.new(data=data, digest_bits=256).digest()


class _KeccakState(threading.local):
    """One reusable Keccak-256 state per thread in pycryptodome's C library, called directly: its `keccak.new`
    wrapper builds a new state and ctypes buffers every time (about 3x the cost of the hash itself here)."""

    def __init__(self) -> None:
        lib: Any = getattr(_keccak, "_raw_keccak_lib")  # noqa: B009 (not in pycryptodome's stubs)
        state = _raw_api.VoidPointer()
        if lib.keccak_init(state.address_of(), _raw_api.c_size_t(64), _C_UBYTE(24)):  # capacity 64 B, 24 rounds
            raise RuntimeError("keccak_init failed")
        self.lib = lib
        self.ptr = state.get()
        self.out = _raw_api.create_string_buffer(32, None)
        self.digest_len, self.padding = _raw_api.c_size_t(32), _C_UBYTE(0x01)  # Keccak's padding (SHA3: 0x06)
        weakref.finalize(self, lib.keccak_destroy, self.ptr)


_C_UBYTE: Any = getattr(_raw_api, "c_ubyte", None)  # not in pycryptodome's stubs
_STATE: _KeccakState


def _keccak_direct(data: bytes) -> bytes:
    st = _STATE  # per thread (threading.local)
    st.lib.keccak_reset(st.ptr)
    st.lib.keccak_absorb(st.ptr, _raw_api.c_uint8_ptr(data), _raw_api.c_size_t(len(data)))
    st.lib.keccak_digest(st.ptr, st.out, st.digest_len, st.padding)
    return _raw_api.get_raw_buffer(st.out)


def _pick_keccak() -> Callable[[bytes], bytes]:
    """The direct call when pycryptodome's library answers it exactly as its public API does, else the API."""
    global _STATE
    try:
        _STATE = _KeccakState()
        probe = b"revagent"
        if _keccak_direct(probe) == _keccak_public(probe) and _keccak_direct(b"") == _keccak_public(b""):
            return _keccak_direct
    except Exception:  # another pycryptodome layout: the public API
        pass
    return _keccak_public


keccak256 = _pick_keccak()


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# The L1 payload's EIP-712 domain (name "Exchange", version "1", chainId 1337, verifyingContract zero) and
# the `Agent(string source,bytes32 connectionId)` type, as `hyperliquid.utils.signing.l1_payload` builds them.
_DOMAIN_SEPARATOR = keccak256(
    keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    + keccak256(b"Exchange") + keccak256(b"1") + (1337).to_bytes(32, "big") + bytes(32))
_AGENT_TYPEHASH = keccak256(b"Agent(string source,bytes32 connectionId)")
_SOURCE_HASH = {True: keccak256(b"a"), False: keccak256(b"b")}  # mainnet "a", testnet "b"


def l1_digest(action: Any, vault: Any, nonce: int, expires_after: Any, is_mainnet: bool) -> bytes:
    """The 32-byte EIP-712 digest an L1 action's signature signs (the SDK's `action_hash` and `l1_payload`)."""
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    if vault is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault[2:] if vault.startswith("0x") else vault)
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    struct_hash = keccak256(_AGENT_TYPEHASH + _SOURCE_HASH[is_mainnet] + keccak256(data))
    return keccak256(b"\x19\x01" + _DOMAIN_SEPARATOR + struct_hash)


def _scalar(value: Any) -> int | None:
    """An r or s as eth-account reads it (an int, or a hex string), when it is a valid curve scalar."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            return None
    if not isinstance(value, int) or not 0 < value < SECP256K1_N:
        return None
    return value


def _fast_l1_signer(action: dict[str, Any], signature: dict[str, Any], vault: Any, nonce: int,
                    expires_after: Any, is_mainnet: bool) -> str | None:
    """The signer of an L1 action through coincurve, or None when the SDK's helper should decide."""
    v, r, s = signature["v"], _scalar(signature["r"]), _scalar(signature["s"])
    if r is None or s is None or isinstance(v, bool) or v not in (27, 28):
        return None
    if vault is not None and not isinstance(vault, str):
        return None
    if expires_after is not None and not isinstance(expires_after, int):
        return None
    digest = l1_digest(action, vault, nonce, expires_after, is_mainnet)
    rsv = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v - 27,))
    key = coincurve.PublicKey.from_signature_and_message(rsv, digest, hasher=None)
    return "0x" + keccak256(key.format(compressed=False)[1:])[-20:].hex()


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
            address = _fast_l1_signer(action, signature, vault, nonce, expires_after, is_mainnet)
            if address is None:
                address = recover_agent_or_user_from_l1_action(action, signature, vault, nonce, expires_after,
                                                               is_mainnet)
    except SignatureError:
        raise
    except Exception as exc:  # malformed r/s/v, unpackable action: the exchange cannot recover a signer
        raise SignatureError("Unable to recover signer.") from exc
    return str(address).lower()


def recover_signer_sdk(action: dict[str, Any], signature: Any, nonce: int, vault: Any, expires_after: Any,
                       *, is_mainnet: bool = False) -> str:
    """The reference: the same recovery entirely through the SDK's helpers (tests and benchmarks compare)."""
    if not isinstance(signature, dict) or not {"r", "s", "v"} <= signature.keys():
        raise SignatureError("Unable to recover signer.")
    try:
        address = recover_agent_or_user_from_l1_action(action, signature, vault, nonce, expires_after, is_mainnet)
    except Exception as exc:
        raise SignatureError("Unable to recover signer.") from exc
    return str(address).lower()
