"""Reading the account straight from the exchange (REST), projected into an `AccountView`.

The gateway uses this before every verdict until the sync loop keeps a live view; `revagent risk
check`, `positions` and `orders` use it from the shell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from revagent.models import utc_now
from revagent.risk import AccountView
from revagent.store.orders import OrderJournal, TradePlans
from revagent.sync.projection import project_account


class BridgeAccountReader:
    """`await reader()` -> a fresh AccountView (4 requests in parallel: state, orders, contexts, mids)."""

    def __init__(self, bridge: Any, plans: TradePlans | None = None, journal: OrderJournal | None = None, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.bridge = bridge
        self.plans = plans
        self.journal = journal
        self.clock = clock

    async def __call__(self) -> AccountView:
        state, orders, (meta, ctxs), mids = await asyncio.gather(
            self.bridge.account_state(), self.bridge.open_orders(), self.bridge.meta_and_asset_ctxs(),
            self.bridge.all_mids())
        plans = await self.plans.open_trades() if self.plans is not None else []
        now = self.clock()
        return project_account(state, orders, meta, ctxs, mids, plans=plans, price_time=now, as_of=now)
