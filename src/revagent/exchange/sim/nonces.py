"""Hyperliquid's nonce rule, per signer: the 100 highest nonces are kept; a new one must exceed the smallest
kept, never repeat, and lie within (now - 2 days, now + 1 day) of wall-clock time."""

from __future__ import annotations

import bisect

KEEP = 100
PAST_MS = 2 * 24 * 3600 * 1000
FUTURE_MS = 24 * 3600 * 1000


class NonceBook:
    def __init__(self) -> None:
        self._kept: dict[str, list[int]] = {}  # signer -> sorted nonces, at most KEEP

    def check_and_use(self, signer: str, nonce: int, wall_ms: int) -> str | None:
        """Record `nonce` for `signer`; an error text (and nothing recorded) when it breaks the rule."""
        if not wall_ms - PAST_MS < nonce < wall_ms + FUTURE_MS:
            return f"Invalid nonce: nonce {nonce} is too far from the current time {wall_ms}"
        kept = self._kept.setdefault(signer, [])
        i = bisect.bisect_left(kept, nonce)
        if i < len(kept) and kept[i] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(kept) >= KEEP and nonce < kept[0]:
            return f"Invalid nonce: nonce too low {nonce} < {kept[0]}"
        kept.insert(i, nonce)
        if len(kept) > KEEP:
            del kept[0]
        return None

    def state(self) -> dict[str, list[int]]:
        return self._kept

    def restore(self, state: dict[str, list[int]]) -> None:
        self._kept = {k: sorted(int(n) for n in v)[-KEEP:] for k, v in state.items()}
