"""The turn engine's settings, resolved from a wallet's config (`[llm]` and `[modes]`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from revagent.engine.tools.base import Mode

if TYPE_CHECKING:
    from revagent.config import ResolvedWallet


@dataclass(frozen=True)
class EngineSettings:
    """`max_steps`: model calls per turn (the tool loop's bound). Budgets in USD; 0 disables one.
    `context_budget_tokens`: the history is compacted when its estimate exceeds 80% of it."""

    model: str = "claude-sonnet-4-6"
    max_tokens: int = 4096
    temperature: float | None = 0.3
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

    @classmethod
    def from_wallet(cls, wallet: ResolvedWallet) -> EngineSettings:
        llm = wallet.llm
        return cls(model=llm.model, max_tokens=llm.max_tokens, temperature=llm.temperature,
                   context_budget_tokens=llm.context_budget_tokens,
                   max_usd_per_alert_turn=llm.max_usd_per_alert_turn, max_usd_per_day=llm.max_usd_per_day,
                   chat_mode=wallet.chat_mode(), alert_mode=wallet.alert_mode(),
                   proposal_timeout=wallet.modes.proposal_timeout)

    @property
    def compaction_threshold_tokens(self) -> int:
        return int(self.context_budget_tokens * 0.8)
