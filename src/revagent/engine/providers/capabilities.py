"""What each Claude model accepts and costs: one row per model id.

Sources (platform.claude.com, read 2026-12): the model pages (`/docs/en/models/<model>/overview`:
context window, max output, thinking, default effort, prices), the pricing page (`/docs/en/about-
claude/pricing`: base input, 5-minute cache write, cache hits, output), the effort page
(`/docs/en/build-with-claude/effort`: which models take which level), the migration guides (what
answers 400: `temperature` on Opus 4.7 and later and the 5.x family, `thinking: disabled` and forced
`tool_choice` on Sonnet 5.5 / Opus 5.5 / Fable 5.1 and later), and the prompt-caching page (minimum
cacheable prompt length). Prompt caching here uses the default 5-minute TTL, so `cache_write` is the
5-minute write price. Prices are USD per million tokens.

A figure the docs did not state for a model is the conservative neighbour's (named in `note`). A
model id matches its row, or the row it extends with a date, `-latest` or `@version` (a dated id
such as `claude-haiku-4-5-20251001` has its own row when the SDK lists it). An id with no row is unknown:
`capabilities_for` returns None, and the caller warns, shows cost as "?" and prices budgets with
`llm.unknown_model_price` (see `pricing.py`).

`tests/engine/test_model_table.py` fails when the installed SDK's `Model` literal lists a `claude-*`
id without a row, so a new SDK with a new model fails CI before it reaches a trader's wallet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

ThinkingType = Literal["adaptive", "enabled", "disabled", "between_tools"]
Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "xhigh", "max")
NO_XHIGH: tuple[Effort, ...] = ("low", "medium", "high", "max")
UP_TO_HIGH: tuple[Effort, ...] = ("low", "medium", "high")
K = 1000
M = 1_000_000


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per million tokens. `over_tokens` / `over`: a higher rate for prompts longer than
    `over_tokens` (Haiku 5.5). `known` False: not Anthropic's row (a configured unknown-model price)."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal
    known: bool = True
    over_tokens: int = 0
    over: Pricing | None = None


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """One model id. `thinking_types`: the `thinking.type` values it accepts; `thinks_by_default`: it
    thinks when `thinking` is absent; `efforts`: the `output_config.effort` levels it accepts (empty:
    no effort parameter); `temperature` / `forced_tool_choice`: whether it accepts them (else 400);
    `min_cache_tokens`: the shortest prefix a cache breakpoint caches; `pricing` None: no published
    price (unknown-model pricing applies); `vision`: it reads image blocks (every Claude model in the
    table does: the models overview lists vision input for all of them)."""

    id: str
    context_window: int
    max_output: int
    thinking_types: tuple[ThinkingType, ...]
    thinks_by_default: bool
    efforts: tuple[Effort, ...]
    default_effort: Effort | None
    temperature: bool
    forced_tool_choice: bool
    min_cache_tokens: int
    pricing: Pricing | None
    note: str = ""
    vision: bool = True

    @property
    def lowest_thinking(self) -> ThinkingType | None:
        """The model's lowest thinking setting: off where it accepts off, else `between_tools`, else
        adaptive (at the lowest effort); None when it does not think at all."""
        for kind in ("disabled", "between_tools", "adaptive", "enabled"):
            if kind in self.thinking_types:
                return kind
        return None


def _p(inp: str, out: str, write: str, read: str) -> Pricing:
    return Pricing(Decimal(inp), Decimal(out), Decimal(write), Decimal(read))


_HAIKU_55_LONG = _p("0.50", "2.50", "0.625", "0.05")
_HAIKU_55 = Pricing(Decimal("0.10"), Decimal("0.50"), Decimal("0.125"), Decimal("0.01"), True, 100 * K,
                    _HAIKU_55_LONG)
_FABLE_52 = _p("8", "40", "10", "0.20")
_FABLE_51 = _p("10", "50", "12.50", "0.25")
_FABLE_5 = _p("10", "50", "12.50", "1")
_OPUS_55 = _p("4", "20", "5", "0.20")
_OPUS_45 = _p("5", "25", "6.25", "0.50")
_OPUS_41 = _p("15", "75", "18.75", "1.50")
_SONNET_55 = _p("2", "10", "2.50", "0.10")
_SONNET_5 = _p("2", "10", "2.50", "0.20")
_SONNET_4 = _p("3", "15", "3.75", "0.30")
_HAIKU_45 = _p("1", "5", "1.25", "0.10")

_ADAPTIVE_ONLY: tuple[ThinkingType, ...] = ("adaptive",)
_ADAPTIVE_OFF: tuple[ThinkingType, ...] = ("adaptive", "disabled")
_ALL_46: tuple[ThinkingType, ...] = ("adaptive", "enabled", "disabled")
_EXTENDED: tuple[ThinkingType, ...] = ("enabled", "disabled")


def _row(id: str, ctx: int, out: int, thinking: tuple[ThinkingType, ...], by_default: bool,
         efforts: tuple[Effort, ...], default: Effort | None, temperature: bool, forced: bool, min_cache: int,
         pricing: Pricing | None, note: str = "") -> ModelCapabilities:
    return ModelCapabilities(id, ctx, out, thinking, by_default, efforts, default, temperature, forced, min_cache,
                             pricing, note)


_ROWS = (
    # -- 5.x: thinking on by default; no sampling parameters; newer ones bind thinking to its prefix
    _row("claude-fable-5-2", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "high", False, False, 512, _FABLE_52,
         "prices ($8/$40, write $10, read $0.20) from third-party price lists that agree (no Anthropic page for "
         "5.2 found, checked 2026-12); min cache and efforts as Fable 5.1"),
    _row("claude-mythos-5-2", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "high", False, False, 512, _FABLE_52,
         "limited availability; as Fable 5.2 (third-party prices, unconfirmed by Anthropic's docs)"),
    _row("claude-fable-5-1", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "high", False, False, 512, _FABLE_51),
    _row("claude-mythos-5-1", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "high", False, False, 512, _FABLE_51,
         "limited availability; as Fable 5.1"),
    _row("claude-fable-5", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "high", False, False, 512, _FABLE_5,
         "thinking always on, so forced tool choice is refused"),
    _row("claude-mythos-5", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "high", False, False, 512, _FABLE_5,
         "limited availability; as Fable 5"),
    _row("claude-opus-5-5", M, 128 * K, _ADAPTIVE_ONLY, True, EFFORTS, "medium", False, False, 512, _OPUS_55,
         "min cache as Opus 5"),
    _row("claude-opus-5", M, 128 * K, _ADAPTIVE_OFF, True, EFFORTS, "high", False, True, 512, _OPUS_45,
         "thinking can be disabled only at effort high or below"),
    _row("claude-sonnet-5-5", M, 128 * K, ("adaptive", "between_tools"), True, EFFORTS, "high", False, False, 512,
         _SONNET_55, "between_tools at effort low..high only; cache read $0.10 since 2026-10-07 (dated price "
         "lists checked against the pricing page; the model page copies we found, $0.20, predate Haiku 5.5 "
         "and so the cut)"),
    _row("claude-sonnet-5", M, 128 * K, _ADAPTIVE_OFF, True, EFFORTS, "high", False, True, 1024, _SONNET_5),
    _row("claude-haiku-5-5", M, 128 * K, _ADAPTIVE_OFF, True, UP_TO_HIGH, "medium", False, False, 512, _HAIKU_55,
         "5x rates over 100K prompt tokens (Anthropic's page); cache read $0.01 / $0.05 from third-party guides "
         "(the page's copy we found is cut before it); they also list efforts up to max, kept to low..high "
         "until the effort page confirms (a level too many answers 400); min cache and forced tool choice as "
         "its generation"),
    # -- 4.x
    _row("claude-opus-4-8", M, 128 * K, _ADAPTIVE_OFF, False, EFFORTS, "high", False, True, 1024, _OPUS_45),
    _row("claude-opus-4-7", M, 128 * K, _ADAPTIVE_ONLY, False, EFFORTS, "high", False, True, 4096, _OPUS_45),
    _row("claude-mythos-preview", M, 128 * K, _ADAPTIVE_ONLY, False, NO_XHIGH, "high", False, True, 4096, None,
         "no published price: unknown-model pricing applies"),
    _row("claude-opus-4-6", M, 128 * K, _ALL_46, False, NO_XHIGH, "high", True, True, 4096, _OPUS_45),
    _row("claude-sonnet-4-6", M, 64 * K, _ALL_46, False, NO_XHIGH, "high", True, True, 2048, _SONNET_4),
    _row("claude-opus-4-5", 200 * K, 64 * K, _EXTENDED, False, UP_TO_HIGH, "high", True, True, 4096, _OPUS_45),
    _row("claude-opus-4-5-20251101", 200 * K, 64 * K, _EXTENDED, False, UP_TO_HIGH, "high", True, True, 4096,
         _OPUS_45),
    _row("claude-haiku-4-5", 200 * K, 64 * K, _EXTENDED, False, (), None, True, True, 4096, _HAIKU_45),
    _row("claude-haiku-4-5-20251001", 200 * K, 64 * K, _EXTENDED, False, (), None, True, True, 4096, _HAIKU_45),
    # -- older ids still accepted in configs
    _row("claude-sonnet-4-5", 200 * K, 64 * K, _EXTENDED, False, (), None, True, True, 1024, _SONNET_4),
    _row("claude-opus-4-1", 200 * K, 32 * K, _EXTENDED, False, (), None, True, True, 1024, _OPUS_41),
)

MODELS: dict[str, ModelCapabilities] = {r.id: r for r in _ROWS}
_BY_LENGTH = sorted(MODELS, key=len, reverse=True)

DEFAULT_MODEL = "claude-sonnet-5-5"
"""The newest Sonnet in the table (`test_model_table` checks it stays so)."""


_VERSION_SUFFIX = re.compile(r"-\d{8}|-latest|@.+")


def capabilities_for(model: str) -> ModelCapabilities | None:
    """The row of `model`: its exact id, else the row id it extends with a date (`-20261001`),
    `-latest` or a platform version (`@...`); None for anything else (`claude-sonnet-5-50` is unknown,
    never Sonnet 5's)."""
    row = MODELS.get(model)
    if row is not None:
        return row
    for prefix in _BY_LENGTH:
        if model.startswith(prefix) and _VERSION_SUFFIX.fullmatch(model[len(prefix):]):
            return MODELS[prefix]
    return None


def has_vision(model: str) -> bool:
    """Whether `model` reads images: its row's `vision`; False for an id with no row (the offline
    provider's `offline` among them), so an unknown model gets the text summary only."""
    row = capabilities_for(model)
    return row is not None and row.vision


def describe(model: str) -> str:
    """One line for `doctor` and start-up logs: the row, or why there is none."""
    row = capabilities_for(model)
    if row is None:
        return f"{model}: no capability row (unknown model: cost shown as '?')"
    p = row.pricing
    price = ("no published price" if p is None else
             f"${p.input}/${p.output} per MTok in/out, cache write ${p.cache_write}, read ${p.cache_read}")
    return (f"{row.id}: context {row.context_window:,}, max output {row.max_output:,}, thinking "
            f"{'/'.join(row.thinking_types) or 'none'}{' (on by default)' if row.thinks_by_default else ''}, "
            f"effort {'/'.join(row.efforts) or 'n/a'}, min cache {row.min_cache_tokens} tokens, {price}")


ThinkingSetting = Literal["adaptive", "lowest", "off"]
_EFFORT_RANK = {e: i for i, e in enumerate(EFFORTS)}


@dataclass(frozen=True, slots=True)
class ThinkingPlan:
    """What one thread kind sends: `thinking` (the API's object, None: the model's default), `effort`
    (`output_config.effort`, None: the model's default), `max_tokens` (capped at the model's max
    output), and `warnings` about settings the model does not take (said once at start)."""

    thinking: dict[str, object] | None
    effort: Effort | None
    max_tokens: int
    warnings: tuple[str, ...] = ()


def plan_thinking(model: str, setting: ThinkingSetting, effort: str, max_tokens: int) -> ThinkingPlan:
    """Resolve `llm.thinking` / `llm.effort` for `model` against its row (see `ThinkingSetting`):
    `adaptive` thinks when it helps (adaptive thinking, summarized so the trader can read it; a fixed
    budget of half of `max_tokens` on models with only extended thinking); `lowest` is the model's
    lowest setting (off, else `between_tools`, else adaptive at the lowest effort); `off` turns
    thinking off where the model accepts it, else falls back to `lowest` with a warning. An effort the
    model does not take is lowered to the nearest one it takes (with a warning); '' is its default."""
    row = capabilities_for(model)
    warnings: list[str] = []
    if row is None:
        warnings.append(f"model {model!r} is not in the capability table: thinking, effort and temperature are "
                        "left to the model's defaults")
        return ThinkingPlan(None, None, max_tokens, tuple(warnings))
    max_tokens = min(max_tokens, row.max_output)
    thinking: dict[str, object] | None = None
    wanted: Effort | None = effort if effort in _EFFORT_RANK else None
    if setting == "off" and "disabled" not in row.thinking_types:
        warnings.append(f"{row.id} does not accept thinking off; using its lowest setting "
                        f"({row.lowest_thinking})")
        setting = "lowest"
    if setting == "off":
        thinking = {"type": "disabled"}
    elif setting == "lowest":
        kind = row.lowest_thinking
        if kind in ("disabled", "between_tools"):
            thinking = {"type": kind}
        elif kind == "adaptive":
            thinking = {"type": "adaptive", "display": "summarized"}
            wanted = row.efforts[0] if row.efforts else None
    elif "adaptive" in row.thinking_types:
        thinking = {"type": "adaptive", "display": "summarized"}
    elif "enabled" in row.thinking_types and max_tokens > 2048:
        thinking = {"type": "enabled", "budget_tokens": max(1024, max_tokens // 2)}
    if wanted is not None and not row.efforts:
        warnings.append(f"{row.id} takes no effort parameter; llm effort {wanted!r} is ignored")
        wanted = None
    if wanted is not None and wanted not in row.efforts:
        lower = [e for e in row.efforts if _EFFORT_RANK[e] <= _EFFORT_RANK[wanted]] or [row.efforts[0]]
        warnings.append(f"{row.id} does not take effort {wanted!r}; using {lower[-1]!r}")
        wanted = lower[-1]
    if thinking is not None and thinking["type"] == "between_tools" and wanted in ("xhigh", "max"):
        warnings.append(f"{row.id}: between_tools runs at effort high at most; using 'high'")
        wanted = "high"
    return ThinkingPlan(thinking, wanted, max_tokens, tuple(warnings))
