"""Hyperliquid's IP rate limit, optional (`SimConfig.ip_weight_per_minute`): a budget of request weight per
minute per client address, refilled continuously; a request over budget gets HTTP 429.

Weights as published: an `/exchange` action weighs 1 + floor(batch length / 40); `/info` l2Book, allMids,
clearinghouseState, orderStatus, spotClearinghouseState and exchangeStatus weigh 2, userRole 60, others 20.
The venue's own `revagentPriceSource` (not the exchange's) weighs nothing: sessions ask it every few seconds.
"""

from __future__ import annotations

from typing import Any

LIGHT_INFO = {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}


def request_weight(path: str, body: Any) -> int:
    if not isinstance(body, dict):
        return 20
    if path == "/exchange":
        action = body.get("action")
        n = 1
        if isinstance(action, dict):
            for key in ("orders", "cancels", "modifies"):
                if isinstance(action.get(key), list):
                    n = len(action[key])
        return 1 + n // 40
    kind = body.get("type")
    if kind == "revagentPriceSource":
        return 0
    if kind in LIGHT_INFO:
        return 2
    return 60 if kind == "userRole" else 20


class IpBudget:
    """Per-address token buckets of `per_minute` weight. `take` is called with the loop's monotonic time."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def take(self, address: str, weight: int, now: float) -> bool:
        tokens, at = self._buckets.get(address, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60.0)
        if tokens < weight:
            self._buckets[address] = (tokens, now)
            return False
        self._buckets[address] = (tokens - weight, now)
        return True
