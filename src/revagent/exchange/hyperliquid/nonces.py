"""Nonces for signed actions: strictly increasing per signer, even for calls within one millisecond.

Hyperliquid keeps the 100 highest nonces of each signer and wants every new one unused and within
(now - 2 days, now + 1 day) in milliseconds. `NonceSource.next()` returns `max(now_ms, last + 1)`:
the wall clock when it moves, one more than the last otherwise. One source per signer (agent key);
the bridge owns it. Safe to call from the event loop and from threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wall_clock_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class NonceSource:
    """Strictly increasing epoch-millisecond nonces for one signer."""

    def __init__(self, clock_ms: Callable[[], int] = wall_clock_ms, *, last: int = 0) -> None:
        self._clock_ms = clock_ms
        self._last = last
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            nonce = max(self._clock_ms(), self._last + 1)
            self._last = nonce
            return nonce

    @property
    def last(self) -> int:
        """The last nonce handed out (0 before the first)."""
        return self._last
