"""What trade management reads of the session: open trades with their positions, and the exchange's
trigger orders; plus `Protect`, the stop repair the scheduler calls at once.

`AccountTradeBook` adapts the session's parts (trade plans, the account view, the bridge's
`frontendOpenOrders`); tests and other venues can give any object with the `TradeBook` methods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from revagent.alerts.trade_alerts import ManagedTrade, TriggerOrder, trigger_orders_from_open_orders
from revagent.errors import ExchangeUnavailableError
from revagent.exchange.types import ExchangeResponseError, FrontendOpenOrder
from revagent.models import TradePlan
from revagent.risk.account import AccountView

log = logging.getLogger(__name__)

LAST_VIEW_AFTER_S = 1.0  # with a last live view to fall back on, how long a stop check's REST read may take
_REST_FAILED = (ExchangeUnavailableError, ExchangeResponseError, ConnectionError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """One open trade as trade management sees it: its plan and the position it holds."""

    plan: TradePlan
    trade: ManagedTrade
    opened_at: datetime | None = None

    @property
    def trade_id(self) -> str:
        return self.plan.trade_id


class TradeBook(Protocol):
    """Where the scheduler reads open trades and the exchange's trigger orders (both may do I/O).
    A book may also offer `async stop_moves() -> dict[trade_id, StopMove]` (the journal's stop-move
    transitions, `store.orders.StopMove`): the stop check then never reports a stop that is moving;
    and `async protective_trigger_orders() -> list[TriggerOrder]`: the trigger orders read on the rate
    budget's `protect` lane, which the stop check uses while the websocket is down (it polls then)."""

    async def open_trades(self) -> list[OpenTrade]: ...

    async def trigger_orders(self) -> list[TriggerOrder]: ...


Protect = Callable[[TradePlan], Awaitable[object]]
"""`protect(plan)`: (re)place the trade's protective stop at once (the gateway's `ensure_stop`)."""


class AccountTradeBook:
    """A `TradeBook` over the session's parts: trade plans, the account view and the bridge's open orders.

    `plans()` gives the open plans (`TradePlans.open_trades`), `account()` the current `AccountView`
    (positions: entry, size, liquidation price), `open_orders()` the exchange's `frontendOpenOrders`.
    A plan without a position (an entry not filled yet) or without a stop is not managed.
    """

    def __init__(
        self,
        plans: Callable[[], Awaitable[list[TradePlan]]],
        account: Callable[[], Awaitable[Any]],
        open_orders: Callable[[], Awaitable[list[FrontendOpenOrder]]],
        stop_moves: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        live_triggers: Callable[[], list[TriggerOrder] | None] | None = None,
        protect_orders: Callable[[], Awaitable[list[FrontendOpenOrder]]] | None = None,
        last_triggers: Callable[[], list[TriggerOrder] | None] | None = None,
    ) -> None:
        self._plans = plans
        self._account = account
        self._open_orders = open_orders
        self._stop_moves = stop_moves
        self._live_triggers = live_triggers
        self._protect_orders = protect_orders
        self._last_triggers = last_triggers  # the live view's triggers even when not fresh (REST failing)

    async def open_trades(self) -> list[OpenTrade]:
        plans = [p for p in await self._plans() if p.status in ("opening", "open")]
        if not plans:
            return []
        account = await self._account()
        positions = {p.market: p for p in account.positions if p.size != 0}
        out: list[OpenTrade] = []
        for plan in plans:
            position = positions.get(plan.market)
            if position is None:
                continue
            trade = managed_trade(plan, entry=position.entry_px, size=abs(position.size),
                                  liquidation_px=position.liquidation_px)
            if trade is not None:
                out.append(OpenTrade(plan, trade, position.opened_at or plan.opened_at))
        return out

    async def trigger_orders(self) -> list[TriggerOrder]:
        """The exchange's trigger orders: the sync loop's live view of them while it is fresh
        (`live_triggers`: the websocket's order updates keep it current, so no REST read and no wait
        on REST retries: protection needs no REST), else over REST (the websocket is down, or came
        back and no REST read has confirmed the view since)."""
        return await self._trigger_orders(self._open_orders)

    async def protective_trigger_orders(self) -> list[TriggerOrder]:
        """As `trigger_orders`, read with `protect_orders` (the rate budget's `protect` lane) when given:
        the stop check's poll while the websocket is down, ahead of every read waiting on the budget."""
        return await self._trigger_orders(self._protect_orders or self._open_orders)

    async def _trigger_orders(self, read: Callable[[], Awaitable[list[FrontendOpenOrder]]]) -> list[TriggerOrder]:
        live = self._live_triggers() if self._live_triggers is not None else None
        if live is not None:
            return live
        if self._last_triggers is None or self._last_triggers() is None:
            return trigger_orders_from_open_orders(await read())
        # a live view not confirmed by REST since a websocket gap (or frozen by an outage): REST gets a
        # short time, and if it fails the stop check reads the view as it last was, the stream's updates
        # since the gap included (a stop the stream reported cancelled is gone), rather than no check
        # at all until REST is back (issue 12 item 3)
        try:
            async with asyncio.timeout(LAST_VIEW_AFTER_S):
                return trigger_orders_from_open_orders(await read())
        except _REST_FAILED as exc:
            last = self._last_triggers()
            if last is None:
                raise
            log.warning("the stop check reads the last live view: the exchange did not answer: %s", exc)
            return last

    async def stop_moves(self) -> dict[str, Any]:
        """The journal's last stop move per trade (`OrderJournal.stop_moves`); empty without a journal."""
        return {} if self._stop_moves is None else await self._stop_moves()


def live_trigger_orders(view: AccountView | None) -> list[TriggerOrder] | None:
    """The trigger orders of a live account view, as stop verification reads them (None without one)."""
    if view is None:
        return None
    return [TriggerOrder(oid=t.oid, market=t.market, is_buy=t.side == "buy", trigger_px=t.trigger_px, size=t.size,
                         reduce_only=t.reduce_only, is_stop=t.kind == "stop")
            for t in view.triggers if t.oid is not None]


def managed_trade(plan: TradePlan, *, entry: Decimal, size: Decimal,
                  liquidation_px: Decimal | None = None) -> ManagedTrade | None:
    """The `ManagedTrade` of a plan and its position; None without a stop (nothing to manage against).

    Its generation is `stop_generation + target_generation - 1`: it grows whenever either moves, so the
    early and liquidation warnings get a new trigger key then; the profit target follows
    `target_generation` alone. A target on the wrong side of the fill is dropped.
    """
    if plan.stop_px is None or plan.stop_px <= 0 or entry <= 0 or size <= 0:
        return None
    generation = plan.stop_generation + plan.target_generation - 1
    liq = liquidation_px if liquidation_px is not None and liquidation_px > 0 else None
    try:
        return ManagedTrade(plan.trade_id, plan.market, plan.side, entry, plan.stop_px, size,
                            plan.target_px, liq, generation, plan.target_generation)
    except ValueError:
        return ManagedTrade(plan.trade_id, plan.market, plan.side, entry, plan.stop_px, size, None, liq, generation)
