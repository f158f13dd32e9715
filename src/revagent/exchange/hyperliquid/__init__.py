"""The Hyperliquid bridge: async HTTP + websocket client of one wallet, signing through the SDK.

Public API: `HyperliquidBridge` (reads, signed actions, `check_agent`, `stream`), `HyperliquidStream`
(typed websocket events), `cloid_for`, `NonceSource`, `RateBudget` / `LocalRateBudget` and the
weights, `RetryPolicy`. Request, result and event types are in `revagent.exchange.protocol`,
response models in `revagent.exchange.types`.
"""

from revagent.exchange.hyperliquid.bridge import MAINNET_API_URL, TESTNET_API_URL, HyperliquidBridge
from revagent.exchange.hyperliquid.cloid import cloid_for, is_cloid
from revagent.exchange.hyperliquid.http import RetryPolicy
from revagent.exchange.hyperliquid.nonces import NonceSource, wall_clock_ms
from revagent.exchange.hyperliquid.rate_budget import (
    HYPERLIQUID_WEIGHT_PER_MINUTE,
    LocalRateBudget,
    RateBudget,
    action_weight,
    info_weight,
)
from revagent.exchange.hyperliquid.ws import HyperliquidStream, ws_url_for

__all__ = [
    "HYPERLIQUID_WEIGHT_PER_MINUTE",
    "MAINNET_API_URL",
    "TESTNET_API_URL",
    "HyperliquidBridge",
    "HyperliquidStream",
    "LocalRateBudget",
    "NonceSource",
    "RateBudget",
    "RetryPolicy",
    "action_weight",
    "cloid_for",
    "info_weight",
    "is_cloid",
    "wall_clock_ms",
    "ws_url_for",
]
