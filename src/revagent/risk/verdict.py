"""The risk engine's answer: approved or not, the exact order to send, and every reason at once.

`Reason.code` values are stable (tools, tests and the UI match on them); messages state the limit
and the value so an LLM can correct its intent in one retry. The verdict's `size` and `price` are
already on the lot and tick grid: the gateway sends them unchanged.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from revagent.risk.account import MarginMode


class ReasonCode(StrEnum):
    """Stable reason codes. Never rename one: tools and tests match on them."""

    HALTED = "halted"
    LOCKED = "locked"
    COOLDOWN = "cooldown"
    STALE_PRICE = "stale_price"
    NOT_SYNCED = "not_synced"
    UNKNOWN_MARKET = "unknown_market"
    TARGET_REQUIRED = "target_required"
    CONVICTION_REQUIRED = "conviction_required"
    STOP_WRONG_SIDE = "stop_wrong_side"
    STOP_BEYOND_LIQUIDATION = "stop_beyond_liquidation"
    TARGET_WRONG_SIDE = "target_wrong_side"
    TAKE_PROFIT_WRONG_SIDE = "take_profit_wrong_side"
    REWARD_RISK = "reward_risk"
    RISK_PER_TRADE = "risk_per_trade"
    PORTFOLIO_RISK = "portfolio_risk"
    MARKET_RISK = "market_risk"
    LEVERAGE = "leverage"
    LEVERAGE_NOT_WHOLE = "leverage_not_whole"
    ISOLATED_ONLY = "isolated_only"
    ORDER_NOTIONAL = "order_notional"
    MIN_NOTIONAL = "min_notional"
    MARGIN = "margin"
    RATE_LIMIT = "rate_limit"
    OPPOSITE_POSITION = "opposite_position"
    NO_POSITION = "no_position"
    UNKNOWN_ORDER = "unknown_order"
    CANCEL_PROTECTIVE_STOP = "cancel_protective_stop"
    STOP_LOOSER = "stop_looser"
    INVALID_NUMBER = "invalid_number"
    INVALID_PRICE = "invalid_price"
    # warnings (never refuse on their own)
    UNPROTECTED = "unprotected"
    BELOW_MIN_NOTIONAL = "below_min_notional"


class Reason(BaseModel):
    """One reason: a stable `code` and a message for a human or an LLM that states the numbers."""

    model_config = ConfigDict(frozen=True)

    code: ReasonCode
    message: str

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class Verdict(BaseModel):
    """The engine's decision on one intent.

    For an approved order: `size` (units, on the lot grid), `price` (limit price, on the tick grid;
    for market orders the slippage bound), `reduce_only`, and for opens the `stop_px` and
    `take_profit_px` to place (on the grid), `leverage`, `margin_mode`, `notional` (USD at `price`),
    `risk_usd` (USD lost at the stop after rounding, round-trip taker fees included),
    `position_risk_usd` (opens: the trade's open risk once this entry fills, the whole position at
    the stop it will then have: an add moves the position to its new stop), `expected_entry_px`
    (opens: the expected average fill, from the L2 book for a market order; `risk_usd`, R:R and the
    caps are judged there), `worst_entry_px` (the order's limit: the slippage bound for a market
    order) and `risk_at_worst_usd` (the risk if it fills there), `est_fees_usd`
    (round trip at taker rates), `est_liquidation_px` (None when none applies), `reward_risk` and
    `margin_usd`. Fields that do not apply to an intent are None. `reasons` is empty when approved;
    `warnings` never refuse.
    """

    model_config = ConfigDict(frozen=True)

    approved: bool
    kind: str
    market: str
    reasons: tuple[Reason, ...] = ()
    warnings: tuple[Reason, ...] = ()
    side: str | None = None
    size: Decimal | None = None
    price: Decimal | None = None
    reduce_only: bool = False
    stop_px: Decimal | None = None
    take_profit_px: Decimal | None = None
    target_px: Decimal | None = None
    leverage: Decimal | None = None
    margin_mode: MarginMode | None = None
    notional: Decimal | None = None
    risk_usd: Decimal | None = None
    position_risk_usd: Decimal | None = None
    expected_entry_px: Decimal | None = None
    worst_entry_px: Decimal | None = None
    risk_at_worst_usd: Decimal | None = None
    est_fees_usd: Decimal | None = None
    est_liquidation_px: Decimal | None = None
    reward_risk: Decimal | None = None
    margin_usd: Decimal | None = None
    oid: int | None = None
    cloid: str | None = None

    @property
    def codes(self) -> list[str]:
        """The reason codes, in order (handy in tests and logs)."""
        return [r.code.value for r in self.reasons]

    def explain(self) -> str:
        """One line per reason, or 'approved'."""
        if self.approved:
            return "approved"
        return "refused: " + "; ".join(str(r) for r in self.reasons)
