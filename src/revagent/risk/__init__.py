"""The risk engine: pure verdicts on order intents. No I/O, no clock of its own (`now` is passed in).

Imports nothing of revagent but `revagent.models`, `revagent.errors` and itself.

The names below load on first use (PEP 562): `revagent.config` needs only `risk.settings`, and a
one-shot shell command should not pay for the whole engine's pydantic models at start-up.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revagent.risk.account import (
        AccountView,
        BookLevel,
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
        AdjustMargin,
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

_HOME: dict[str, str] = {
    "AccountView": "revagent.risk.account",
    "BookLevel": "revagent.risk.account",
    "MarketRules": "revagent.risk.account",
    "PositionView": "revagent.risk.account",
    "RestingEntry": "revagent.risk.account",
    "SyncPhase": "revagent.risk.account",
    "TriggerOrder": "revagent.risk.account",
    "Correction": "revagent.risk.corrections",
    "corrections": "revagent.risk.corrections",
    "MIN_ORDER_USD": "revagent.risk.evaluate",
    "evaluate": "revagent.risk.evaluate",
    "Caps": "revagent.risk.exposure",
    "MarketUsage": "revagent.risk.exposure",
    "RiskUsage": "revagent.risk.exposure",
    "effective_caps": "revagent.risk.exposure",
    "estimate_liquidation_px": "revagent.risk.exposure",
    "open_risk": "revagent.risk.exposure",
    "position_after_fill": "revagent.risk.exposure",
    "risk_usage": "revagent.risk.exposure",
    "AdjustMargin": "revagent.risk.intents",
    "CancelOrder": "revagent.risk.intents",
    "ClosePosition": "revagent.risk.intents",
    "EnsureStop": "revagent.risk.intents",
    "ModifyStop": "revagent.risk.intents",
    "OpenTrade": "revagent.risk.intents",
    "OrderIntent": "revagent.risk.intents",
    "Origin": "revagent.risk.intents",
    "SetLeverage": "revagent.risk.intents",
    "SetTarget": "revagent.risk.intents",
    "is_on_lot": "revagent.risk.rounding",
    "is_on_tick": "revagent.risk.rounding",
    "max_price_decimals": "revagent.risk.rounding",
    "round_price": "revagent.risk.rounding",
    "round_size_down": "revagent.risk.rounding",
    "round_size_up": "revagent.risk.rounding",
    "RiskSettings": "revagent.risk.settings",
    "RiskState": "revagent.risk.state",
    "RiskStatus": "revagent.risk.state",
    "TradingState": "revagent.risk.state",
    "current_penalty": "revagent.risk.state",
    "halt": "revagent.risk.state",
    "multiplier": "revagent.risk.state",
    "note_order_sent": "revagent.risk.state",
    "resume": "revagent.risk.state",
    "status": "revagent.risk.state",
    "target_penalty": "revagent.risk.state",
    "trading_state": "revagent.risk.state",
    "unlock": "revagent.risk.state",
    "update_state": "revagent.risk.state",
    "Reason": "revagent.risk.verdict",
    "ReasonCode": "revagent.risk.verdict",
    "Verdict": "revagent.risk.verdict",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


class _RiskPackage(types.ModuleType):
    """Two submodules share a name with a function they define (`evaluate`, `corrections`): importing
    the submodule must not rebind the package's name to the module (as the eager imports ensured)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _HOME.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _RiskPackage


__all__ = [
    "MIN_ORDER_USD",
    "AccountView",
    "AdjustMargin",
    "BookLevel",
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
