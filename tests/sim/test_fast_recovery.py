"""The fast L1 signer recovery (coincurve + C keccak, issue 18.5) agrees with the SDK's own helper on every
signature the SDK makes, and on tampered and malformed ones."""

from __future__ import annotations

from typing import Any

import eth_account
from hyperliquid.utils.signing import sign_l1_action
from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.exchange.sim.auth import SignatureError, _fast_l1_signer, recover_signer, recover_signer_sdk

KEYS = [eth_account.Account.create() for _ in range(3)]

orders = st.fixed_dictionaries({
    "a": st.integers(0, 200), "b": st.booleans(),
    "p": st.decimals(min_value=1, max_value=100_000, places=2).map(str),
    "s": st.decimals(min_value=0, max_value=100, places=3).map(str), "r": st.booleans(),
    "t": st.sampled_from([{"limit": {"tif": "Gtc"}}, {"limit": {"tif": "Ioc"}},
                          {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}}]),
})
actions = st.one_of(
    st.builds(lambda os: {"type": "order", "orders": os, "grouping": "na"}, st.lists(orders, min_size=1, max_size=3)),
    st.builds(lambda a, o: {"type": "cancel", "cancels": [{"a": a, "o": o}]}, st.integers(0, 9), st.integers(0, 2**40)),
    st.builds(lambda t: {"type": "scheduleCancel", "time": t}, st.integers(0, 2**45)),
)
vaults = st.one_of(st.none(), st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()))
expiries = st.one_of(st.none(), st.integers(0, 2**50))


def outcome(fn: Any, *args: Any, **kw: Any) -> str:
    try:
        return str(fn(*args, **kw))
    except SignatureError as exc:
        return f"error: {exc}"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(KEYS), actions, st.integers(0, 2**50), vaults, expiries, st.booleans())
def test_fast_path_recovers_what_the_sdk_recovers(key: Any, action: dict[str, Any], nonce: int, vault: str | None,
                                                  expires: int | None, mainnet: bool) -> None:
    sig = sign_l1_action(key, action, vault, nonce, expires, mainnet)
    assert _fast_l1_signer(action, sig, vault, nonce, expires, mainnet) == key.address.lower()  # taken, not skipped
    assert recover_signer(action, sig, nonce, vault, expires, is_mainnet=mainnet) == key.address.lower()
    # signed for the other chain, or another nonce: both paths recover the same stranger
    for args in ((nonce, vault, expires, not mainnet), (nonce + 1, vault, expires, mainnet)):
        n, va, ex, m = args
        assert (outcome(recover_signer, action, sig, n, va, ex, is_mainnet=m)
                == outcome(recover_signer_sdk, action, sig, n, va, ex, is_mainnet=m) != key.address.lower())


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["r", "s", "v"]),
       st.one_of(st.integers(-5, 2**257), st.text(max_size=70), st.sampled_from(
           ["0x0", "0x" + "f" * 64, "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", "zz", "", 0,
            27, 28, 29, 35, 37, True]), st.none()))
def test_malformed_signatures_answer_as_the_sdk_does(field: str, value: Any) -> None:
    action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "100", "s": "1", "r": False,
                                           "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"}
    sig = dict(sign_l1_action(KEYS[0], action, None, 7, None, False))
    sig[field] = value
    fast = outcome(recover_signer, action, sig, 7, None, None)
    assert fast == outcome(recover_signer_sdk, action, sig, 7, None, None)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_the_direct_keccak_is_keccak256_on_every_thread(data: bytes) -> None:
    import threading

    from eth_utils import keccak

    from revagent.exchange.sim import auth

    assert auth.keccak256 is auth._keccak_direct  # pycryptodome's library is called directly here
    assert auth.keccak256(data) == keccak(data)
    got: list[bytes] = []
    worker = threading.Thread(target=lambda: got.append(auth.keccak256(data)))
    worker.start()
    worker.join()
    assert got == [keccak(data)]
