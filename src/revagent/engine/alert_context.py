"""The offline policy's view of an alert: `AlertDescription` built from the event, the trade plan
and the live account (entry, size and stop of the position)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from revagent.engine.prompt import alert_title
from revagent.engine.providers.policy import AlertDescription, TradeRef
from revagent.risk import AccountView
from revagent.store.alert_events import AlertEvent, AlertKind
from revagent.store.orders import TradePlans

_POLICY_KIND: dict[AlertKind, str] = {
    AlertKind.STOP_LOSS_VERIFICATION: "stop_loss_verification", AlertKind.EARLY_WARNING: "early_warning",
    AlertKind.PROFIT_TARGET: "profit_target", AlertKind.LIQUIDATION_WARNING: "liquidation_warning",
    AlertKind.WATCHER: "watcher", AlertKind.TIME: "time",
}


@dataclass
class AlertDescriber:
    """Builds the offline policy's `AlertDescription` of an alert from the trade plan and the account."""

    plans: TradePlans
    account: Callable[[], Awaitable[AccountView | None]] | None
    liquidation_warning_pct: Decimal = Decimal(10)

    async def __call__(self, event: AlertEvent) -> AlertDescription:
        kind: Any = _POLICY_KIND.get(event.kind, "system")
        trade: TradeRef | None = None
        trade_id = event.context.get("trade_id") or (event.alert_id if event.alert_id.startswith("tr_") else None)
        plan = await self.plans.get(str(trade_id)) if trade_id else None
        reference = event.price
        if plan is not None:
            account = await self.account() if self.account is not None else None
            position = account.position(plan.market) if account is not None else None
            if position is not None:
                if reference is None or kind == "liquidation_warning":  # measured with the current mark
                    reference = position.mark_px
                trade = TradeRef(plan.trade_id, plan.market, "long" if position.size > 0 else "short",
                                 position.entry_px, abs(position.size), position.stop_px or plan.stop_px,
                                 plan.target_px, position.liquidation_px)
        summary = str(event.context.get("prompt") or event.context.get("thesis") or event.context.get("description")
                      or event.context.get("detail") or "")
        return AlertDescription(kind, event.alert_id, alert_title(event), trade, reference, summary,
                                trigger_key=event.trigger_key, liquidation_warning_pct=self.liquidation_warning_pct)


