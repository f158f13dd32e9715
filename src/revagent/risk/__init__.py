"""The risk engine: pure verdicts on order intents. No I/O, no clock of its own (`now` is passed in).

Imports nothing of revagent but `revagent.models`, `revagent.errors` and itself.
"""

from revagent.risk.account import (
    AccountView,
    MarketRules,
    PositionView,
    RestingEntry,
    SyncPhase,
    TriggerOrder,
)
from revagent.risk.corrections import Correction, corrections
from revagent.risk.evaluate import MIN_ORDER_USD, evaluate
from revagent.risk.exposure import (
    Caps,
    MarketUsage,
    RiskUsage,
    effective_caps,
    estimate_liquidation_px,
    open_risk,
    position_after_fill,
    risk_usage,
)
from revagent.risk.intents import (
    CancelOrder,
    ClosePosition,
    EnsureStop,
    ModifyStop,
    OpenTrade,
    OrderIntent,
    Origin,
    SetLeverage,
    SetTarget,
)
from revagent.risk.rounding import (
    is_on_lot,
    is_on_tick,
    max_price_decimals,
    round_price,
    round_size_down,
    round_size_up,
)
from revagent.risk.settings import RiskSettings
from revagent.risk.state import (
    RiskState,
    RiskStatus,
    TradingState,
    current_penalty,
    halt,
    multiplier,
    note_order_sent,
    resume,
    status,
    target_penalty,
    trading_state,
    unlock,
    update_state,
)
from revagent.risk.verdict import Reason, ReasonCode, Verdict

__all__ = [
    "MIN_ORDER_USD",
    "AccountView",
    "CancelOrder",
    "Caps",
    "ClosePosition",
    "Correction",
    "EnsureStop",
    "MarketRules",
    "MarketUsage",
    "ModifyStop",
    "OpenTrade",
    "OrderIntent",
    "Origin",
    "PositionView",
    "Reason",
    "ReasonCode",
    "RestingEntry",
    "RiskSettings",
    "RiskState",
    "RiskStatus",
    "RiskUsage",
    "SetLeverage",
    "SetTarget",
    "SyncPhase",
    "TradingState",
    "TriggerOrder",
    "Verdict",
    "corrections",
    "current_penalty",
    "effective_caps",
    "estimate_liquidation_px",
    "evaluate",
    "halt",
    "is_on_lot",
    "is_on_tick",
    "max_price_decimals",
    "multiplier",
    "note_order_sent",
    "open_risk",
    "position_after_fill",
    "resume",
    "risk_usage",
    "round_price",
    "round_size_down",
    "round_size_up",
    "status",
    "target_penalty",
    "trading_state",
    "unlock",
    "update_state",
]
