"""The turn engine's settings, resolved from a wallet's config (`[llm]` and `[modes]`)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from revagent.engine.providers.capabilities import (
    DEFAULT_MODEL,
    Pricing,
    ThinkingPlan,
    ThinkingSetting,
    plan_thinking,
)
from revagent.engine.providers.pricing import parse_price, pricing_for
from revagent.engine.tools.base import Mode

if TYPE_CHECKING:
    from revagent.config import ResolvedWallet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSettings:
    """`max_steps`: model calls per turn (the tool loop's bound). Budgets in USD; 0 disables one.
    `context_budget_tokens`: the history is compacted when the prompt (tools, system, history, turn
    context; in tokens from the API, see `TurnRunner._prompt_tokens`) exceeds 80% of it.
    `thinking` / `effort` are the chat threads' settings, `alert_thinking` / `alert_effort` the alert
    threads' (short turns: medium effort by default); `model_plan(kind)` resolves them against the
    model's capability row. `unknown_model_price`: the price of a model without a row (None: turns on
    such a model are refused while a budget is on)."""

    model: str = DEFAULT_MODEL
    max_tokens: int = 16000
    temperature: float | None = None
    max_steps: int = 8
    context_budget_tokens: int = 120_000
    keep_turns: int = 3
    max_usd_per_alert_turn: Decimal = Decimal("0.50")
    max_usd_per_day: Decimal = Decimal("10")
    chat_mode: Mode = "autonomous"
    alert_mode: Mode = "autonomous"
    proposal_timeout: timedelta = timedelta(minutes=10)
    snapshot_budget_chars: int = 12_000
    liquidation_warning_pct: Decimal = Decimal("10")  # `alerts.liquidation_warning_pct`: the offline policy's target
    thinking: ThinkingSetting = "adaptive"
    alert_thinking: ThinkingSetting = "adaptive"
    effort: str = ""
    alert_effort: str = "medium"
    unknown_model_price: Pricing | None = None

    @classmethod
    def from_wallet(cls, wallet: ResolvedWallet) -> EngineSettings:
        llm = wallet.llm
        return cls(model=llm.model, max_tokens=llm.max_tokens, temperature=llm.temperature,
                   context_budget_tokens=llm.context_budget_tokens,
                   max_usd_per_alert_turn=llm.max_usd_per_alert_turn, max_usd_per_day=llm.max_usd_per_day,
                   chat_mode=wallet.chat_mode(), alert_mode=wallet.alert_mode(),
                   proposal_timeout=wallet.modes.proposal_timeout, thinking=llm.thinking,
                   alert_thinking=llm.alert_thinking, effort=llm.effort, alert_effort=llm.alert_effort,
                   unknown_model_price=parse_price(llm.unknown_model_price))

    @property
    def compaction_threshold_tokens(self) -> int:
        return int(self.context_budget_tokens * 0.8)

    def model_plan(self, kind: str) -> ThinkingPlan:
        """Thinking, effort and max_tokens for a thread of `kind` (`chat` or `alert`)."""
        if kind == "alert":
            return _plan(self.model, self.alert_thinking, self.alert_effort, self.max_tokens)
        return _plan(self.model, self.thinking, self.effort, self.max_tokens)

    def model_warnings(self) -> list[str]:
        """What the configured model does not take (or does not price), for a warning at start."""
        out = [*self.model_plan("chat").warnings, *self.model_plan("alert").warnings]
        if pricing_for(self.model, self.unknown_model_price) is None:
            out.append(f"model {self.model!r} has no price row: cost is shown as '?'; set llm.unknown_model_price "
                       "to keep the budgets on")
        return list(dict.fromkeys(out))

    @property
    def priced(self) -> bool:
        """Whether the model's calls can be priced (a row, or a configured unknown-model price)."""
        return pricing_for(self.model, self.unknown_model_price) is not None


@functools.lru_cache(maxsize=64)
def _plan(model: str, setting: ThinkingSetting, effort: str, max_tokens: int) -> ThinkingPlan:
    plan = plan_thinking(model, setting, effort, max_tokens)
    for w in plan.warnings:
        log.warning("llm: %s", w)
    return plan
