"""The capability table covers every model the installed SDK knows, and prices what it should."""

from __future__ import annotations

import typing
from decimal import Decimal

import pytest

from revagent.engine.providers.base import Usage
from revagent.engine.providers.capabilities import DEFAULT_MODEL, MODELS, capabilities_for
from revagent.engine.providers.pricing import cost_usd, parse_price, pricing_for


def sdk_model_ids() -> list[str]:
    from anthropic.types import Model

    def flat(t: object) -> list[str]:
        out: list[str] = []
        for a in typing.get_args(t):
            out += [a] if isinstance(a, str) else flat(a)
        return out

    return [m for m in flat(Model) if m.startswith("claude-")]


def test_every_claude_model_of_the_installed_sdk_has_a_row() -> None:
    ids = sdk_model_ids()
    assert len(ids) >= 10  # the Literal was read (not an empty union)
    missing = [m for m in ids if m not in MODELS]
    assert not missing, f"add capability rows (engine/providers/capabilities.py) for {missing}"


def test_rows_are_consistent() -> None:
    for row in MODELS.values():
        assert row.max_output <= row.context_window
        assert row.default_effort is None or row.default_effort in row.efforts
        assert row.min_cache_tokens in (512, 1024, 2048, 4096)
        if row.thinks_by_default:  # the 5.x family takes no sampling parameters
            assert not row.temperature
        if row.pricing is not None:
            assert row.pricing.cache_read < row.pricing.input < row.pricing.cache_write


def test_the_default_model_is_the_newest_sonnet_in_the_table() -> None:
    def version(model_id: str) -> tuple[int, ...]:
        return tuple(int(p) for p in model_id.removeprefix("claude-sonnet-").split("-") if len(p) < 3)

    sonnets = [m for m in MODELS if m.startswith("claude-sonnet-")]
    assert max(sonnets, key=version) == DEFAULT_MODEL


def test_dated_ids_resolve_and_unknown_models_have_no_made_up_price() -> None:
    row = capabilities_for("claude-sonnet-5-5-20261001")
    assert row is not None and row.id == "claude-sonnet-5-5"
    assert capabilities_for("claude-sonnet-5-50") is None
    assert pricing_for("some-future-model") is None
    assert cost_usd(Usage(1000, 100, model="some-future-model")) is None
    assert pricing_for("claude-mythos-preview") is None  # a row, but no published price
    configured = parse_price("15/75")
    assert configured is not None and not configured.known
    assert cost_usd(Usage(1_000_000, 0, model="some-future-model"), unknown=configured) == Decimal(15)
    with pytest.raises(ValueError, match="INPUT/OUTPUT"):
        parse_price("cheap")


def test_haiku_5_5_prices_long_prompts_at_the_higher_rate() -> None:
    short = cost_usd(Usage(50_000, 1_000, model="claude-haiku-5-5"))
    long = cost_usd(Usage(150_000, 1_000, model="claude-haiku-5-5"))
    assert short == (Decimal("0.10") * 50_000 + Decimal("0.50") * 1_000) / 1_000_000
    assert long == (Decimal("0.50") * 150_000 + Decimal("2.50") * 1_000) / 1_000_000


def test_the_config_default_is_the_table_default() -> None:
    from revagent.config import LLMSettings

    assert LLMSettings().model == DEFAULT_MODEL


def test_thinking_settings_resolve_per_model() -> None:
    from revagent.engine.providers.capabilities import plan_thinking

    sonnet = plan_thinking("claude-sonnet-5-5", "lowest", "max", 200_000)
    assert sonnet.thinking == {"type": "between_tools"} and sonnet.effort == "high" and sonnet.max_tokens == 128_000
    off = plan_thinking("claude-opus-5-5", "off", "medium", 16_000)  # Opus 5.5 cannot turn thinking off
    assert off.thinking == {"type": "adaptive", "display": "summarized"} and off.effort == "low" and off.warnings
    haiku = plan_thinking("claude-haiku-4-5", "adaptive", "high", 16_000)  # extended thinking, no effort
    assert haiku.thinking == {"type": "enabled", "budget_tokens": 8000} and haiku.effort is None
    unknown = plan_thinking("claude-next", "adaptive", "medium", 16_000)
    assert unknown.thinking is None and unknown.effort is None and unknown.warnings
