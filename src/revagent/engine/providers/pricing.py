"""The cost of a model call, in USD, from the capability table's price rows (`capabilities.py`).

An unknown model (no row, or a row without a published price) never gets a made-up price:
`pricing_for` returns the configured `llm.unknown_model_price` (marked `known=False`) or None, and
`cost_usd` returns None ("?" on screen). The runner refuses a turn on a model it cannot price while a
budget is on (see `EngineSettings.unknown_model_price` and config.example.toml).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from revagent.engine.providers.base import Usage
from revagent.engine.providers.capabilities import Pricing, capabilities_for

MILLION = Decimal(1_000_000)
OFFLINE_PRICING = Pricing(Decimal(0), Decimal(0), Decimal(0), Decimal(0))

__all__ = ["MILLION", "OFFLINE_PRICING", "Pricing", "cost_usd", "parse_price", "pricing_for"]


def parse_price(text: str) -> Pricing | None:
    """`"INPUT/OUTPUT"` in USD per million tokens (cache write 1.25x and cache read 0.1x the input, the
    API's multipliers) as an unknown-model price; '' is None. Raises ValueError on anything else."""
    text = text.strip()
    if not text:
        return None
    parts = text.split("/")
    try:
        inp, out = (Decimal(p.strip().lstrip("$")) for p in parts) if len(parts) == 2 else (None, None)
    except InvalidOperation:
        inp = out = None
    if inp is None or out is None or inp < 0 or out < 0:
        raise ValueError(f"llm.unknown_model_price: expected 'INPUT/OUTPUT' USD per million tokens, got {text!r}")
    return Pricing(inp, out, inp * Decimal("1.25"), inp * Decimal("0.1"), known=False)


def pricing_for(model: str, unknown: Pricing | None = None) -> Pricing | None:
    """The price row of `model`; else `unknown` (the configured unknown-model price); else None."""
    if model == "offline":
        return OFFLINE_PRICING
    row = capabilities_for(model)
    if row is not None and row.pricing is not None:
        return row.pricing
    return unknown


def cost_usd(usage: Usage, model: str | None = None, *, unknown: Pricing | None = None) -> Decimal | None:
    """The USD cost of `usage`, priced for `model` (default: the model the usage is tagged with);
    None when the model has no price (and no `unknown` price is configured)."""
    p = pricing_for(model if model is not None else usage.model, unknown)
    if p is None:
        return None
    if p.over is not None and usage.prompt_tokens > p.over_tokens:
        p = p.over
    total = (
        p.input * usage.input_tokens
        + p.output * usage.output_tokens
        + p.cache_write * usage.cache_creation_input_tokens
        + p.cache_read * usage.cache_read_input_tokens
    )
    return total / MILLION
