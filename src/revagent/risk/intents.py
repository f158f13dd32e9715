"""Order intents: what someone wants done, before the risk engine sizes, prices and judges it.

Every intent carries an `origin`: "agent" (the LLM through a tool), "human" (shell or slash command)
or "system" (sync's corrections, the offline policy). An agent's `OpenTrade` must declare a target
and a conviction; a human's may omit them (then there is no reward:risk check).

Intents are pydantic models (tools parse them from JSON); `OrderIntent` is their tagged union
(`kind` is the tag), so `TypeAdapter(OrderIntent).validate_python({...})` picks the right one.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from revagent.models import BoundedPrice, BoundedUsd
from revagent.risk.account import Direction, MarginMode

Origin = Literal["agent", "human", "system"]
Fraction = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)]
Leverage = Annotated[Decimal, Field(gt=0, le=1000, allow_inf_nan=False)]
Price = BoundedPrice
"""Every price of an intent: positive, finite, at most `models.MAX_PRICE` (bounded where it enters)."""


class _Intent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    market: str
    origin: Origin = "agent"


class OpenTrade(_Intent):
    """Open (or add to) a position. Size is never chosen: it is derived from `risk_usd` and the stop.

    `entry_px` None means a market order (priced at the slippage bound); otherwise a limit order.
    `target_px` is the plan's target (drives the profit alert, not an order); `take_profit_px` places
    a real take-profit. `leverage` None means the market's current leverage, capped by the settings;
    `margin_mode` None means the settings' default. `thesis` and `invalidation` are not judged:
    the gateway keeps them in the trade plan (the agent's tool requires them). `entry_ttl`: a limit
    entry still resting after it is cancelled (the plan records when: `entry_expires_at`).
    """

    kind: Literal["open"] = "open"
    side: Direction
    stop_px: Price
    risk_usd: BoundedUsd
    entry_px: Price | None = None
    target_px: Price | None = None
    conviction: Annotated[int, Field(ge=0, le=100)] | None = None
    take_profit_px: Price | None = None
    leverage: Leverage | None = None
    margin_mode: MarginMode | None = None
    thesis: Annotated[str, Field(max_length=1000)] = ""
    invalidation: Annotated[str, Field(max_length=1000)] = ""
    entry_ttl: Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=30))] | None = None


class ClosePosition(_Intent):
    """Reduce-only close of `fraction` of the position (1 = all), at market. Always allowed."""

    kind: Literal["close"] = "close"
    fraction: Fraction = Decimal(1)


class ModifyStop(_Intent):
    """Move the position's protective stop. Tightening always passes; loosening is new risk."""

    kind: Literal["modify_stop"] = "modify_stop"
    stop_px: Price


class EnsureStop(_Intent):
    """Place a missing protective stop (or complete one that covers too little). Always allowed.

    `stop_px` None means: at the effective per-trade cap from the position's entry.
    """

    kind: Literal["ensure_stop"] = "ensure_stop"
    stop_px: Price | None = None


class SetTarget(_Intent):
    """Change the plan's target and/or place a take-profit order (reduce-only)."""

    kind: Literal["set_target"] = "set_target"
    target_px: Price | None = None
    take_profit_px: Price | None = None


class CancelOrder(_Intent):
    """Cancel a resting order by exchange id or client id (at least one)."""

    kind: Literal["cancel"] = "cancel"
    oid: int | None = None
    cloid: str | None = None


class SetLeverage(_Intent):
    """Change the account's leverage (and optionally margin mode) on a market."""

    kind: Literal["set_leverage"] = "set_leverage"
    leverage: Leverage
    margin_mode: MarginMode | None = None


class AdjustMargin(_Intent):
    """Add isolated margin to a position (moves its liquidation away: protective) or remove some
    (moves it closer: new risk). `usd` is the amount moved."""

    kind: Literal["adjust_margin"] = "adjust_margin"
    op: Literal["add", "remove"]
    usd: BoundedUsd


OrderIntent = Annotated[
    OpenTrade | ClosePosition | ModifyStop | EnsureStop | SetTarget | CancelOrder | SetLeverage | AdjustMargin,
    Field(discriminator="kind"),
]
"""Any intent, tagged by `kind`."""
