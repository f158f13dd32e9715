"""Risk settings: every limit the risk engine enforces, with the defaults a cautious trader starts from.

Percentages are written in percent (`max_drawdown_pct = 15` means 15%); the engine turns them into
fractions. Durations are strings with units in config and JSON (`24h`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from revagent.models import MAX_USD, Duration

Usd = Annotated[Decimal, Field(gt=0, le=MAX_USD, allow_inf_nan=False)]
Pct = Annotated[Decimal, Field(ge=0, le=100)]


class RiskSettings(BaseModel):
    """The risk limits of one wallet. Unknown keys are refused (a typo must not silently do nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_risk_per_trade_usd: Usd = Decimal("25")
    max_portfolio_risk_usd: Usd = Decimal("100")
    max_market_risk_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("40")
    min_reward_risk: Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False)] = Decimal("1.0")
    max_leverage: Annotated[Decimal, Field(ge=1, le=100)] = Decimal("5")
    max_order_notional_usd: Usd = Decimal("10000")
    max_slippage_pct: Annotated[Decimal, Field(gt=0, le=20)] = Decimal("1")
    max_price_age: Duration = timedelta(seconds=10)
    max_drawdown_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("15")
    penalty_start_pct: Pct = Decimal("5")
    penalty_floor: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.25")
    penalty_half_life: Duration = timedelta(hours=24)
    lockout: Duration = timedelta(hours=24)
    max_daily_loss_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("5")
    cooldown_after_losses: Annotated[int, Field(ge=0, le=1000)] = 3
    cooldown: Duration = timedelta(minutes=60)
    max_orders_per_minute: Annotated[int, Field(ge=1, le=100000)] = 30
    margin_mode: Literal["cross", "isolated"] = "cross"
    stop_grace: Duration = timedelta(seconds=10)
    taker_fee_pct: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.045")
    maker_fee_pct: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.015")

    @model_validator(mode="after")
    def _coherent(self) -> RiskSettings:
        if self.penalty_start_pct >= self.max_drawdown_pct:
            raise ValueError(
                f"penalty_start_pct ({self.penalty_start_pct}) must be below "
                f"max_drawdown_pct ({self.max_drawdown_pct})"
            )
        if self.max_risk_per_trade_usd > self.max_portfolio_risk_usd:
            raise ValueError(
                f"max_risk_per_trade_usd ({self.max_risk_per_trade_usd}) cannot exceed "
                f"max_portfolio_risk_usd ({self.max_portfolio_risk_usd})"
            )
        if self.penalty_half_life <= timedelta(0):
            raise ValueError("penalty_half_life must be positive")
        return self
