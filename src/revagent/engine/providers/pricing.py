"""Model prices and the cost of a call, in USD.

Source: Anthropic's pricing page, https://platform.claude.com/docs/en/about-claude/pricing, table
"Model pricing" (columns: base input, 5m cache writes, cache hits & refreshes, output), read on
2026-11-24. Prompt caching here always uses the default 5-minute TTL, so the 5m cache-write price
applies. A model id matches the longest table prefix (`claude-sonnet-4-5-20250929` matches
`claude-sonnet-4-5`). An unknown model is priced at the most expensive row (`UNKNOWN_MODEL_PRICING`,
Opus 4.1's) so a budget never under-counts; `pricing_for(...).known` tells the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from revagent.engine.providers.base import Usage

MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal
    known: bool = True


def _p(inp: str, out: str, write: str, read: str) -> Pricing:
    return Pricing(Decimal(inp), Decimal(out), Decimal(write), Decimal(read))


_OPUS_45 = _p("5", "25", "6.25", "0.50")
_OPUS_41 = _p("15", "75", "18.75", "1.50")
_SONNET_4 = _p("3", "15", "3.75", "0.30")

PRICES: dict[str, Pricing] = {
    "claude-opus-5": _OPUS_45,
    "claude-opus-4-8": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_41,
    "claude-opus-4-0": _OPUS_41,
    "claude-opus-4": _OPUS_41,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-4-5": _p("1", "5", "1.25", "0.10"),
    "claude-3-5-haiku": _p("0.80", "4", "1", "0.08"),
    "claude-3-haiku": _p("0.25", "1.25", "0.30", "0.03"),
    "offline": _p("0", "0", "0", "0"),
}

UNKNOWN_MODEL_PRICING = Pricing(
    _OPUS_41.input, _OPUS_41.output, _OPUS_41.cache_write, _OPUS_41.cache_read, known=False
)

_BY_LENGTH = sorted(PRICES, key=len, reverse=True)


def pricing_for(model: str) -> Pricing:
    """The price row of `model` (longest matching prefix), or the conservative unknown-model row."""
    for prefix in _BY_LENGTH:
        if model == prefix or model.startswith((prefix + "-", prefix + "@")):
            return PRICES[prefix]
    return UNKNOWN_MODEL_PRICING


def cost_usd(usage: Usage, model: str | None = None) -> Decimal:
    """The USD cost of `usage`, priced for `model` (default: the model the usage is tagged with)."""
    p = pricing_for(model if model is not None else usage.model)
    total = (
        p.input * usage.input_tokens
        + p.output * usage.output_tokens
        + p.cache_write * usage.cache_creation_input_tokens
        + p.cache_read * usage.cache_read_input_tokens
    )
    return total / MILLION
