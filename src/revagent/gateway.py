"""The order gateway: the only door through which an order leaves revagent.

    intent -> risk verdict -> client order ids -> journal (before sending) -> lease check -> send
           -> outcome recorded -> bus

- The risk engine rounds size and price to the lot and tick grid; the gateway sends the verdict's
  values unchanged.
- Client order ids are derived from the user action behind the order (`Action`): a retry of the
  same action reuses its ids and finds its own journal records, so it never places twice. When a
  send's outcome is unknown (timeout, lost response), the next attempt asks the exchange for the
  order by cloid before anything else, and resends only once the original can no longer land.
- The gateway mints the trade id and stores the trade's plan when it opens a trade; sync attaches
  fills and closes trades.
- Every result is a `GatewayResult` (refused with reasons, rejected by the exchange, unknown, or
  done): never an exception the caller must guess about. Only a lost lease raises (LeaseLostError):
  a process that no longer owns the wallet must stop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol, assert_never

from pydantic import BaseModel, Field

from revagent import format as fmt
from revagent.bus import Bus
from revagent.events import OrderUpdated
from revagent.exchange.hyperliquid.cloid import cloid_for
from revagent.exchange.protocol import (
    ActionOk,
    ActionRejected,
    CancelRequest,
    Exchange,
    Filled,
    LimitType,
    ModifyRequest,
    OrderRequest,
    OutcomeUnknown,
    Rejected,
    Resting,
    SendResult,
    Success,
    TriggerType,
    Waiting,
)
from revagent.models import TERMINAL_ORDER_STATUSES, OrderRecord, OrderRole, OrderStatus, Side, TradePlan, utc_now
from revagent.risk import (
    AccountView,
    AdjustMargin,
    BookLevel,
    CancelOrder,
    ClosePosition,
    EnsureStop,
    ModifyStop,
    OpenTrade,
    OrderIntent,
    Reason,
    ReasonCode,
    RiskSettings,
    RiskState,
    SetLeverage,
    SetTarget,
    Verdict,
    evaluate,
    note_order_sent,
    round_price,
)
from revagent.store.lease import Lease
from revagent.store.orders import OrderJournal, TradePlans

log = logging.getLogger(__name__)

BOOK_TIMEOUT = 2.0  # seconds to read the L2 book a market entry is sized from
STOP_SLIPPAGE = Decimal("0.10")  # a market stop's limit price, as Hyperliquid's own TP/SL uses
UNKNOWN_FINAL_AFTER = timedelta(seconds=75)  # the bridge's action TTL (60 s) plus a margin
REPAIR_SETTLED = timedelta(seconds=5)  # a repair stop resting this long and absent from the account is gone
_EXCHANGE_STATUS: dict[str, OrderStatus] = {"open": "resting", "filled": "filled", "canceled": "cancelled",
                                            "triggered": "triggered", "rejected": "rejected"}


@dataclass(frozen=True)
class Action:
    """The user action behind orders; its key seeds their client order ids.

    tool:<thread>:<call> for a tool call, cmd:<id> for a typed command, corr:<trade>:<what>:<gen>
    for a correction. Two different actions never share a key; a retry of one reuses it.
    """

    key: str
    thread_id: str | None = None
    tool_call_id: str | None = None
    # "Still wanted?": awaited just before the first irreversible step (the journal record of an
    # order, a leverage change); it raises to stop an action nobody waits for any more. The command
    # channel fills it with the command's deadline check.
    check: Callable[[], Awaitable[None]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def tool(cls, thread_id: str, tool_call_id: str) -> Action:
        return cls(f"tool:{thread_id}:{tool_call_id}", thread_id, tool_call_id)

    @classmethod
    def command(cls, command_id: str, *, check: Callable[[], Awaitable[None]] | None = None) -> Action:
        return cls(f"cmd:{command_id}", check=check)

    @classmethod
    def correction(cls, trade_id: str, what: str, generation: int) -> Action:
        return cls(f"corr:{trade_id}:{what}:{generation}")

    def sub(self, part: str) -> Action:
        """A sub-action (one market of a flatten): its own ids, same provenance."""
        return Action(f"{self.key}/{part}", self.thread_id, self.tool_call_id, self.check)

    def cloid(self, role: str) -> str:
        return cloid_for(self.key, role)


GatewayStatus = Literal["done", "refused", "rejected", "unknown", "duplicate"]


class GatewayResult(BaseModel):
    """What happened to one intent. `ok` means the exchange accepted everything that was sent."""

    status: GatewayStatus
    kind: str
    market: str
    message: str
    verdict: Verdict | None = None
    reasons: list[Reason] = Field(default_factory=list)
    orders: list[OrderRecord] = Field(default_factory=list)
    trade_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("done", "duplicate")


AccountSource = Callable[[], Awaitable[AccountView]]
SettingsSource = Callable[[], Awaitable[RiskSettings]]


class RiskStateStore(Protocol):
    """Where the gateway reads and writes the risk state (`store.risk.RiskStore` in a session)."""

    async def get(self) -> RiskState: ...

    async def update(self, change: Callable[[RiskState], RiskState]) -> RiskState: ...


class Gateway:
    """One wallet's order gateway. All public methods return a `GatewayResult`."""

    def __init__(
        self,
        *,
        exchange: Exchange,
        journal: OrderJournal,
        plans: TradePlans,
        account: AccountSource,
        settings: SettingsSource,
        risk_state: RiskStateStore,
        bus: Bus,
        lease: Lease | None,
        clock: Callable[[], datetime] = utc_now,
        ready: Callable[[], Awaitable[None]] | None = None,
        protection_account: AccountSource | None = None,
    ) -> None:
        self.exchange: Exchange = exchange
        self.journal = journal
        self.plans = plans
        self._account = account
        self._settings = settings
        self._risk_state = risk_state
        self.bus = bus
        self.lease = lease
        self.clock = clock
        self._ready = ready  # awaited before a new entry only (a sync in progress); never for protection
        # what `ensure_stop` reads: the freshest source (the sync loop's live view), not a REST read first
        self._protection_account = protection_account or account
        self._lock = asyncio.Lock()  # one intent at a time: verdicts see the effects of the previous one
        # Leverage this gateway set per market: the account view knows leverage only from positions.
        self._leverage_set: dict[str, tuple[Decimal, bool]] = {}
        # monotonic time of this gateway's last send or plan change: a view confirmed before it is stale
        self.changed_at = 0.0
        # the settings the running intent's verdict used (one intent at a time: `_lock`)
        self._intent_settings: RiskSettings | None = None

    # ------------------------------------------------------------------------------ entry point
    async def submit(self, intent: OrderIntent, action: Action, *, rationale: str = "") -> GatewayResult:
        if isinstance(intent, OpenTrade) and self._ready is not None:
            await self._ready()  # outside the lock: a protective intent never queues behind this wait
        result = await self._submit(intent, action, rationale)
        if (self._ready is not None and not isinstance(intent, OpenTrade) and result.status == "refused"
                and any(r.code == ReasonCode.NOT_SYNCED for r in result.reasons)):
            # Any other intent that adds risk (a looser stop) is gated on `consistent` too: the same
            # wait (a one-shot reconciles once), then once more. A refusal sent nothing: retrying is safe.
            await self._ready()
            result = await self._submit(intent, action, rationale)
        return result

    async def _submit(self, intent: OrderIntent, action: Action, rationale: str) -> GatewayResult:
        async with self._lock:  # exhaustive: a new intent kind without a handler fails mypy here
            match intent:
                case OpenTrade():
                    return await self._open(intent, action, rationale)
                case ClosePosition():
                    return await self._close(intent, action)
                case ModifyStop() | EnsureStop():
                    return await self._stop(intent, action)
                case SetTarget():
                    return await self._target(intent, action)
                case CancelOrder():
                    return await self._cancel(intent, action)
                case SetLeverage():
                    return await self._leverage(intent, action)
                case AdjustMargin():
                    return await self._margin(intent, action)
                case _:
                    assert_never(intent)

    async def preview(self, intent: OrderIntent) -> Verdict:
        """The risk verdict for an intent against the current account, without trading."""
        if isinstance(intent, OpenTrade) and self._ready is not None:
            await self._ready()
        return await self._verdict(intent, await self._account())

    async def ensure_stop(self, market: str, *, stop_px: Decimal | None = None) -> GatewayResult:
        """The one idempotent way to (re)place a missing protective stop. Allowed in every state and
        mode. A no-op when the position already has a stop covering its size."""
        async with self._lock:
            account = await self._protection_account()
            position = account.position(market)
            if position is None:
                return GatewayResult(status="done", kind="ensure_stop", market=market,
                                     message=f"no {market} position: nothing to protect")
            closing = "sell" if position.size > 0 else "buy"
            covered = sum((t.size for t in account.triggers
                           if t.market == market and t.kind == "stop" and t.side == closing), Decimal(0))
            if covered >= abs(position.size):
                return GatewayResult(status="done", kind="ensure_stop", market=market,
                                     message=f"{market} stop already in place at {position.stop_px}")
            plan = await self.plans.open_for(market)
            trade_id = plan.trade_id if plan else f"untracked-{market}"
            generation = plan.stop_generation if plan else 1
            wanted = stop_px or (plan.stop_px if plan else None)
            live = position.stop_px
            if wanted is not None and live is not None and (live - wanted) * position.direction > 0:
                wanted = live  # an ensure never loosens the live stop (the engine refuses it)
            intent = EnsureStop(market=market, origin="system", stop_px=wanted)
            live_oids = {t.oid for t in account.triggers}
            for repair in range(1, 100):
                action = Action.correction(trade_id, f"stop-r{repair}", generation)
                existing = await self.journal.get(action.cloid("stop"))
                if existing is None:
                    break
                if existing.status in TERMINAL_ORDER_STATUSES:
                    continue
                gone = (existing.status in ("resting", "triggered") and existing.oid is not None
                        and existing.oid not in live_oids and self.clock() - existing.updated_at > REPAIR_SETTLED)
                if not gone:  # in flight or in place: retrying this action resolves it, never places twice
                    break
            return await self._stop(intent, action, account=account)

    async def probe(self, market: str, *, price: Decimal, size: Decimal, action: Action) -> GatewayResult:
        """The doctor's round trip: a far-off post-only buy of `size` at `price`, journalled (role
        probe) before it is sent and cancelled at once. Refused, with nothing sent, while the risk
        state refuses new orders (HALTED, LOCKED). `done` means placed and cancelled."""
        from revagent.risk import TradingState, trading_state

        async with self._lock:
            prior = await self._prior(action, "probe", market)
            if prior is not None:
                return prior
            settings, state, now = await self._settings(), await self._risk_state.get(), self.clock()
            ts = trading_state(state, now, settings)
            if ts in (TradingState.HALTED, TradingState.LOCKED):
                reason = Reason(code=ReasonCode.HALTED if ts is TradingState.HALTED else ReasonCode.LOCKED,
                                message=f"trading is {ts.value.upper()}"
                                + (f" (by {state.halted_by})" if ts is TradingState.HALTED and state.halted_by
                                   else f" until {state.locked_until.isoformat()}" if state.locked_until else "")
                                + ": no probe order is sent")
                return GatewayResult(status="refused", kind="probe", market=market, reasons=[reason],
                                     message=reason.message)
            order = OrderRequest(market, True, size, price, LimitType("Alo"), False, action.cloid("probe"))
            records = await self._send_orders(action, [(order, "probe")], None)
            placed = records[0]
            if placed.status == "unknown":
                placed = await self._resolve(placed)
            if placed.status not in ("resting", "sent", "unknown"):
                return self._finished("probe", market, [placed], None, None, f"probe {placed.status}")
            cancels = await self._send_cancels(action, [(CancelRequest(market, cloid=placed.cloid), placed.oid)], None)
            if cancels and cancels[0].status == "cancelled":
                placed = placed.model_copy(update={"status": "cancelled", "updated_at": self.clock()})
                await self.journal.record(placed)
            return self._finished("probe", market, [placed, *cancels], None, None, "placed and cancelled")

    async def flatten(self, action: Action) -> list[GatewayResult]:
        """Close every position and cancel every entry order; stops stay until their positions are gone."""
        account = await self._account()
        results = []
        for e in account.entries:
            results.append(await self.submit(CancelOrder(market=e.market, origin="human", oid=e.oid, cloid=None),
                                              action.sub(f"cancel-{e.oid}")))
        for p in account.positions:
            results.append(await self.submit(ClosePosition(market=p.market, origin="human"),
                                              action.sub(f"close-{p.market}")))
        return results

    async def expire_entries(self) -> list[GatewayResult]:
        """Cancel every limit entry still resting after its plan's `entry_expires_at` (the alert
        scheduler calls this at each trade refresh). Each cancel is a correction action of the plan
        (`corr:<trade>:entry-expired:1`: journaled, sent once); the plan is then cancelled when no
        position came of it, else it keeps the part that filled with no expiry left."""
        now = self.clock()
        due = [p for p in await self.plans.all()
               if p.entry_expires_at is not None and p.entry_expires_at <= now and p.status in ("opening", "open")]
        if not due:
            return []
        account = await self._account()
        orders = await self.journal.all()
        results: list[GatewayResult] = []
        for plan in due:
            mine = {o.cloid for o in orders if o.trade_id == plan.trade_id and o.role == "entry"}
            resting = [e for e in account.entries if e.market == plan.market and e.cloid in mine]
            action = Action.correction(plan.trade_id, "entry-expired", 1)
            cancels = [await self.submit(CancelOrder(market=plan.market, origin="system", oid=entry.oid,
                                                     cloid=None if entry.oid else entry.cloid),
                                         action if n == 0 else action.sub(f"entry-{n}"))
                       for n, entry in enumerate(resting)]
            results += cancels
            if any(r.status not in ("done", "duplicate") for r in cancels):
                continue  # not (yet) cancelled: the next refresh retries the same actions
            position = account.position(plan.market)
            update: dict[str, Any] = {"entry_expires_at": None}
            if position is None:
                update.update(status="cancelled", closed_at=now)
            log.info("limit entry of %s %s expired at %s: %d order(s) cancelled", plan.trade_id, plan.market,
                     plan.entry_expires_at, len(resting))
            await self.plans.save(plan.model_copy(update=update))
        return results

    # ------------------------------------------------------------------------------- open trade
    async def _open(self, intent: OpenTrade, action: Action, rationale: str) -> GatewayResult:
        # the market's open plan is read together with the precheck's reads (nothing there writes plans)
        plan_read = asyncio.ensure_future(self.plans.open_for(intent.market))
        try:
            checked = await self._precheck(intent, action, "open")
            stored = await plan_read
        finally:
            if not plan_read.done():
                plan_read.cancel()
                await asyncio.gather(plan_read, return_exceptions=True)
        if isinstance(checked, GatewayResult):
            return checked
        account, verdict = checked
        assert verdict.size is not None and verdict.price is not None and verdict.stop_px is not None
        is_buy = intent.side == "long"
        existing = await self._live_plan(intent.market, account, stored)
        now = self.clock()
        if existing is not None and existing.side.value == intent.side:
            plan = existing.model_copy(update={"risk_usd": existing.risk_usd + (verdict.risk_usd or Decimal(0)),
                                               "stop_px": verdict.stop_px,
                                               "stop_generation": existing.stop_generation + 1,
                                               "thesis": intent.thesis or existing.thesis,
                                               "invalidation": intent.invalidation or existing.invalidation})
        else:
            plan = TradePlan(
                trade_id="tr_" + hashlib.sha256(action.key.encode()).hexdigest()[:10],
                market=intent.market, side=Side(intent.side), stop_px=verdict.stop_px, target_px=verdict.target_px,
                take_profit_px=verdict.take_profit_px, conviction=intent.conviction,
                risk_usd=verdict.risk_usd or intent.risk_usd, origin=intent.origin, thread_id=action.thread_id,
                tool_call_id=action.tool_call_id, rationale=rationale[:2000], thesis=intent.thesis,
                invalidation=intent.invalidation, opened_at=now,
                entry_expires_at=now + intent.entry_ttl if intent.entry_ttl and intent.entry_px else None)
        rules = account.markets[intent.market]
        entry_type = LimitType("Gtc") if intent.entry_px is not None else LimitType("Ioc")
        orders: list[tuple[OrderRequest, OrderRole]] = [
            (OrderRequest(intent.market, is_buy, verdict.size, verdict.price, entry_type, False, action.cloid("entry")),
             "entry"),
            (OrderRequest(intent.market, not is_buy, verdict.size, self._stop_limit(verdict.stop_px, is_buy,
                                                                                    rules.sz_decimals),
                          TriggerType(verdict.stop_px, True, "sl"), True, action.cloid("stop")), "stop"),
        ]
        if verdict.take_profit_px is not None:
            orders.append((OrderRequest(intent.market, not is_buy, verdict.size, verdict.take_profit_px,
                                        TriggerType(verdict.take_profit_px, False, "tp"), True, action.cloid("tp")),
                           "take_profit"))
        is_cross = (verdict.margin_mode or "cross") == "cross"
        current = (rules.leverage, is_cross) if rules.leverage is not None else self._leverage_set.get(intent.market)
        if verdict.leverage is not None and current != (verdict.leverage, is_cross):
            await self._still_wanted(action)
            lev = await self._send_leverage(intent.market, int(verdict.leverage), is_cross)
            if lev is not None:
                return GatewayResult(status="rejected", kind="open", market=intent.market, verdict=verdict,
                                     message=f"could not set {intent.market} leverage: {lev}")
        # An add moves the whole position to the new stop (`_consolidate_stops`): one journaled stop move
        # from the send to the consolidated stop, so no reader of the stop reports it missing or wrong
        # meanwhile (issue 14.3)
        adding = existing is not None and existing.side.value == intent.side
        move = None if not adding else await self.journal.begin_stop_move(
            trade_id=plan.trade_id, market=intent.market, action=action.key, old_stop=existing.stop_px if existing
            else None, new_stop=verdict.stop_px, at=self.clock())
        try:
            return await self._send_open(intent, action, verdict, plan, existing, orders)
        finally:
            if move is not None:
                await self.journal.end_stop_move(move, "done", self.clock())

    async def _send_open(self, intent: OpenTrade, action: Action, verdict: Verdict, plan: TradePlan,
                         existing: TradePlan | None, orders: list[tuple[OrderRequest, OrderRole]]) -> GatewayResult:
        assert verdict.size is not None and verdict.price is not None and verdict.stop_px is not None
        records = await self._send_orders(action, orders, plan.trade_id, grouping="normalTpsl")
        entry = records[0]
        if entry.status == "rejected":
            return GatewayResult(status="rejected", kind="open", market=intent.market, verdict=verdict,
                                 orders=records, message=f"the exchange refused the entry: {entry.error}")
        status = "open" if entry.status == "filled" else plan.status
        update: dict[str, Any] = {"status": status}
        if entry.status == "filled" and entry.avg_px:
            # the trade's recorded risk is the realized one: the filled size at its average price
            fee = (self._intent_settings or await self._settings()).taker_fee_pct / 100
            filled = entry.filled_size or verdict.size
            realized = filled * (abs(entry.avg_px - verdict.stop_px) + fee * (entry.avg_px + verdict.stop_px))
            prior = existing.risk_usd if existing is not None and existing.side.value == intent.side else Decimal(0)
            update["risk_usd"] = prior + realized
        await self.plans.save(plan.model_copy(update=update))
        if existing is not None and entry.status == "filled":
            records += await self._consolidate_stops(intent.market, verdict.stop_px, action, plan.trade_id)
        return self._finished("open", intent.market, records, verdict, plan.trade_id,
                              f"{intent.side} {fmt.size(verdict.size)} {intent.market} at "
                              f"{fmt.price(entry.avg_px or verdict.price)}, stop {fmt.price(verdict.stop_px)}, "
                              f"risk {fmt.money(update.get('risk_usd', verdict.risk_usd or 0))}")

    async def _consolidate_stops(self, market: str, stop_px: Decimal, action: Action,
                                 trade_id: str) -> list[OrderRecord]:
        """After an add fills: one stop covering the whole position at the plan's stop replaces the
        stops of the separate entries (the new one is placed before the old ones are cancelled)."""
        account = await self._account()
        position = account.position(market)
        if position is None:
            return []
        closing = "sell" if position.size > 0 else "buy"
        stops = [t for t in account.triggers if t.market == market and t.kind == "stop" and t.side == closing]
        if len(stops) == 1 and stops[0].size == abs(position.size) and stops[0].trigger_px == stop_px:
            return []
        rules = account.markets[market]
        is_long = position.size > 0
        whole = OrderRequest(market, not is_long, abs(position.size), self._stop_limit(stop_px, is_long,
                                                                                      rules.sz_decimals),
                             TriggerType(stop_px, True, "sl"), True, action.cloid("stop-whole"))
        records = await self._send_orders(action, [(whole, "stop")], trade_id)
        if records[0].status in ("resting", "triggered", "filled"):
            records += await self._send_cancels(action, [(CancelRequest(market, oid=t.oid), t.oid) for t in stops
                                                         if t.oid is not None], trade_id)
        return records

    async def _live_plan(self, market: str, account: AccountView, plan: TradePlan | None) -> TradePlan | None:
        """The market's open plan (`plan`, as read), if its trade still lives (a position or a resting
        entry). A plan whose trade is gone (closed by a stop, by hand, or before sync noticed) is closed
        here, so a new trade never inherits its id or its declared risk."""
        if plan is None:
            return None
        alive = account.position(market) is not None or any(e.market == market for e in account.entries)
        if alive:
            return plan
        self.changed_at = time.monotonic()
        await self.plans.save(plan.model_copy(update={"status": "closed", "closed_at": self.clock()}))
        return None

    # ----------------------------------------------------------------------------------- close
    async def _close(self, intent: ClosePosition, action: Action) -> GatewayResult:
        checked = await self._precheck(intent, action, "close")
        if isinstance(checked, GatewayResult):
            return checked
        _, verdict = checked
        assert verdict.size is not None and verdict.price is not None
        plan = await self.plans.open_for(intent.market)
        order = OrderRequest(intent.market, verdict.side == "buy", verdict.size, verdict.price, LimitType("Ioc"), True,
                             action.cloid("close"))
        records = await self._send_orders(action, [(order, "close")], plan.trade_id if plan else None)
        if records[0].status == "filled":
            after = await self._account()
            if after.position(intent.market) is None:
                # Flat: its stop and take-profit must not linger to hit a later position.
                leftovers = [(CancelRequest(intent.market, oid=t.oid), t.oid) for t in after.triggers
                             if t.market == intent.market and t.oid is not None]
                records += await self._send_cancels(action, leftovers, plan.trade_id if plan else None)
                if plan is not None:
                    await self.plans.save(plan.model_copy(update={"status": "closed", "closed_at": self.clock()}))
        return self._finished("close", intent.market, records[:1], verdict, plan.trade_id if plan else None,
                              f"closed {fmt.size(records[0].filled_size or verdict.size)} {intent.market}")

    # ------------------------------------------------------------------------------------ stops
    async def _stop(self, intent: ModifyStop | EnsureStop, action: Action, *,
                    account: AccountView | None = None) -> GatewayResult:
        kind = intent.kind
        checked = await self._precheck(intent, action, kind, account=account)
        if isinstance(checked, GatewayResult):
            return checked
        account, verdict = checked
        assert verdict.size is not None and verdict.stop_px is not None
        position = account.position(intent.market)
        assert position is not None
        is_buy = verdict.side == "buy"
        rules = account.markets[intent.market]
        new_stop = OrderRequest(intent.market, is_buy, verdict.size,
                                self._stop_limit(verdict.stop_px, not is_buy, rules.sz_decimals),
                                TriggerType(verdict.stop_px, True, "sl"), True, action.cloid("stop"))
        closing = verdict.side
        old = [t for t in account.triggers if t.market == intent.market and t.kind == "stop" and t.side == closing]
        plan = await self.plans.open_for(intent.market)
        trade_id = plan.trade_id if plan else None
        # one journaled transition (old stop -> new stop) that every reader of the stop sees (issue 14.3)
        move = None if plan is None else await self.journal.begin_stop_move(
            trade_id=plan.trade_id, market=intent.market, action=action.key, old_stop=plan.stop_px,
            new_stop=verdict.stop_px, at=self.clock())
        if isinstance(intent, ModifyStop) and len(old) == 1 and old[0].oid is not None:
            records = await self._send_modify(action, old[0].oid, new_stop, trade_id)
        else:
            records = await self._send_orders(action, [(new_stop, "stop")], trade_id)
            if records[0].status in ("resting", "triggered", "filled") and old:
                # the new stop covers the whole position: retire the old ones
                await self._send_cancels(action, [(CancelRequest(intent.market, oid=t.oid), t.oid) for t in old
                                                  if t.oid is not None], trade_id)
        if plan is not None and move is not None and records[0].status not in ("rejected",):
            await self.plans.save(plan.model_copy(update={"stop_px": verdict.stop_px,
                                                          "stop_generation": plan.stop_generation + 1}),
                                  stop_move=move.finished("done", self.clock()))
        elif move is not None:
            await self.journal.end_stop_move(move, "failed", self.clock())
        return self._finished(kind, intent.market, records, verdict, trade_id,
                              f"{intent.market} stop at {fmt.price(verdict.stop_px)} for {fmt.size(verdict.size)}")

    # ----------------------------------------------------------------------------------- target
    async def _target(self, intent: SetTarget, action: Action) -> GatewayResult:
        checked = await self._precheck(intent, action, "set_target")
        if isinstance(checked, GatewayResult):
            return checked
        account, verdict = checked
        plan = await self.plans.open_for(intent.market)
        records: list[OrderRecord] = []
        if verdict.take_profit_px is not None and verdict.size is not None:
            is_buy = verdict.side == "buy"
            tp = OrderRequest(intent.market, is_buy, verdict.size, verdict.take_profit_px,
                              TriggerType(verdict.take_profit_px, False, "tp"), True, action.cloid("tp"))
            old = [t for t in account.triggers if t.market == intent.market and t.kind == "take_profit"]
            if len(old) == 1 and old[0].oid is not None:
                records = await self._send_modify(action, old[0].oid, tp, plan.trade_id if plan else None,
                                                  role="take_profit")
            else:
                records = await self._send_orders(action, [(tp, "take_profit")], plan.trade_id if plan else None)
        if plan is not None:
            await self.plans.save(plan.model_copy(update={
                "target_px": verdict.target_px if verdict.target_px is not None else plan.target_px,
                "take_profit_px": verdict.take_profit_px or plan.take_profit_px,
                "target_generation": plan.target_generation + 1}))
        return self._finished("set_target", intent.market, records, verdict, plan.trade_id if plan else None,
                              f"{intent.market} target {fmt.price(verdict.target_px) if verdict.target_px else '-'}"
                              + (f", take-profit order at {fmt.price(verdict.take_profit_px)}"
                                 if verdict.take_profit_px else ""))

    # ----------------------------------------------------------------------------------- cancel
    async def _cancel(self, intent: CancelOrder, action: Action) -> GatewayResult:
        checked = await self._precheck(intent, action, "cancel")
        if isinstance(checked, GatewayResult):
            return checked
        _, verdict = checked
        request = CancelRequest(intent.market, oid=verdict.oid) if verdict.oid is not None else \
            CancelRequest(intent.market, cloid=verdict.cloid)
        records = await self._send_cancels(action, [(request, verdict.oid)], None)
        return self._finished("cancel", intent.market, records, verdict, None,
                              f"cancelled {intent.market} order {verdict.oid or verdict.cloid}")

    # --------------------------------------------------------------------------------- leverage
    async def _leverage(self, intent: SetLeverage, action: Action) -> GatewayResult:
        account = await self._account()
        verdict = await self._verdict(intent, account)
        if not verdict.approved:
            return self._refused(verdict)
        assert verdict.leverage is not None
        problem = await self._send_leverage(intent.market, int(verdict.leverage),
                                            (verdict.margin_mode or "cross") == "cross")
        if problem is not None:
            return GatewayResult(status="rejected", kind="set_leverage", market=intent.market, verdict=verdict,
                                 message=problem)
        return GatewayResult(status="done", kind="set_leverage", market=intent.market, verdict=verdict,
                             message=f"{intent.market} leverage {verdict.leverage}x {verdict.margin_mode or 'cross'}")

    # ----------------------------------------------------------------------------------- margin
    async def _margin(self, intent: AdjustMargin, action: Action) -> GatewayResult:
        """Isolated margin in or out of a position: no order, so no journal record; the exchange's
        answer is the outcome (a retried tool call returns its recorded result, `engine.tools.effects`)."""
        account = await self._account()
        verdict = await self._verdict(intent, account)
        if not verdict.approved:
            return self._refused(verdict)
        await self._still_wanted(action)
        if self.lease is not None:
            await self.lease.ensure_held()
        self.changed_at = time.monotonic()
        usd = intent.usd if intent.op == "add" else -intent.usd
        result = await self.exchange.update_isolated_margin(intent.market, usd)
        if isinstance(result, ActionRejected):
            return GatewayResult(status="rejected", kind="adjust_margin", market=intent.market, verdict=verdict,
                                 message=result.message)
        if isinstance(result, OutcomeUnknown):
            return GatewayResult(status="unknown", kind="adjust_margin", market=intent.market, verdict=verdict,
                                 message=f"outcome unknown: {result.reason}")
        done = "added to" if intent.op == "add" else "removed from"
        return GatewayResult(status="done", kind="adjust_margin", market=intent.market, verdict=verdict,
                             message=f"{fmt.money(intent.usd)} of margin {done} the isolated "
                                     f"{intent.market} position")

    # ---------------------------------------------------------------------------------- helpers
    async def _precheck(self, intent: OrderIntent, action: Action, kind: str, *,
                        account: AccountView | None = None) -> GatewayResult | tuple[AccountView, Verdict]:
        """What every intent goes through first: a retried action answers with its own orders; a
        refused one with every reason. Otherwise the account and the approved verdict."""
        # the reads go out together (each a round trip): the action's earlier records, the account
        # (unless given), the settings and the risk state; a retry answers from its records alone
        reads = await _together(
            self._prior(action, kind, intent.market), _given(account) if account is not None else self._account(),
            self._settings(), self._risk_state.get())
        prior: GatewayResult | None = reads[0]
        read: AccountView = reads[1]
        if prior is not None:
            return prior
        self._intent_settings = reads[2]
        verdict = await self._verdict(intent, read, settings=reads[2], state=reads[3])
        if not verdict.approved:
            return self._refused(verdict)
        return read, verdict

    async def _verdict(self, intent: OrderIntent, account: AccountView, *, settings: RiskSettings | None = None,
                       state: RiskState | None = None) -> Verdict:
        """`evaluate` on `account` (with the market's book for a market entry), the settings and the
        risk state (read here, together with the book, unless given)."""
        if settings is None or state is None:
            account, settings, state = await _together(self._with_book(intent, account), self._settings(),
                                                       self._risk_state.get())
        else:
            account = await self._with_book(intent, account)
        return evaluate(intent, account, settings, state, self.clock())

    async def _with_book(self, intent: OrderIntent, account: AccountView) -> AccountView:
        """A market entry is sized at its expected fill from the current L2 book (`risk.evaluate`):
        the book is read here and put in the market's rules. Without it (the read fails, or no answer
        within BOOK_TIMEOUT) the entry is sized at the slippage bound."""
        if not isinstance(intent, OpenTrade) or intent.entry_px is not None:
            return account
        rules = account.markets.get(intent.market)
        if rules is None:
            return account
        try:
            book = await asyncio.wait_for(self.exchange.l2_book(intent.market), BOOK_TIMEOUT)
            bids, asks = (tuple(BookLevel(px=lv.px, sz=lv.sz) for lv in side if lv.px > 0 and lv.sz > 0)
                          for side in book.levels)
        except Exception as exc:  # any failure falls back to the bound, which is safe
            log.info("no %s book for sizing (%s): sizing at the slippage bound", intent.market, exc)
            return account
        from revagent.risk.account import share_aggregates  # the book changes none of the risk sums

        markets = {**account.markets, intent.market: rules.model_copy(update={"bids": bids, "asks": asks})}
        return share_aggregates(account, account.model_copy(update={"markets": markets}))

    def _refused(self, verdict: Verdict) -> GatewayResult:
        return GatewayResult(status="refused", kind=verdict.kind, market=verdict.market, verdict=verdict,
                             reasons=list(verdict.reasons),
                             message="refused by the risk engine: " + "; ".join(r.message for r in verdict.reasons))

    def _finished(self, kind: str, market: str, records: list[OrderRecord], verdict: Verdict | None,
                  trade_id: str | None, message: str) -> GatewayResult:
        if any(r.status == "unknown" for r in records):
            return GatewayResult(status="unknown", kind=kind, market=market, verdict=verdict, orders=records,
                                 trade_id=trade_id, message="the exchange's answer was lost; the order will be "
                                 "checked by its client id before any retry (retrying the same action is safe)")
        rejected = [r for r in records if r.status == "rejected"]
        if rejected:
            return GatewayResult(status="rejected", kind=kind, market=market, verdict=verdict, orders=records,
                                 trade_id=trade_id, message="; ".join(f"{r.role}: {r.error}" for r in rejected))
        return GatewayResult(status="done", kind=kind, market=market, verdict=verdict, orders=records,
                             trade_id=trade_id, message=message)

    @staticmethod
    def _stop_limit(stop_px: Decimal, position_is_long: bool, sz_decimals: int) -> Decimal:
        """The limit of a market stop: the trigger moved 10% against the exit, on the tick grid."""
        factor = (1 - STOP_SLIPPAGE) if position_is_long else (1 + STOP_SLIPPAGE)
        return round_price(stop_px * factor, sz_decimals, is_buy=not position_is_long)

    async def _prior(self, action: Action, kind: str, market: str) -> GatewayResult | None:
        """A retry of an action that already sent orders: report them, resolving unknown outcomes."""
        records = await self.journal.for_action(action.key)
        if not records:
            return None
        resolved = [await self._resolve(r) for r in records]
        unresolved = [r for r in resolved if r.status in ("pending", "sent", "unknown")]
        if unresolved and all(self.clock() - r.updated_at > UNKNOWN_FINAL_AFTER for r in unresolved):
            # The originals can no longer land: resend them, same client ids.
            log.warning("resending %d order(s) of %s whose first send never reached the exchange",
                        len(unresolved), action.key)
            return None
        return GatewayResult(status="unknown" if unresolved else "duplicate", kind=kind, market=market,
                             orders=resolved, trade_id=resolved[0].trade_id,
                             message="already sent for this action"
                             + (" (outcome still unknown)" if unresolved else ""))

    async def _resolve(self, record: OrderRecord) -> OrderRecord:
        if record.status not in ("pending", "sent", "unknown") or record.role in ("cancel", "leverage"):
            return record
        status = await self.exchange.order_status_by_cloid(record.cloid)
        entry = status.order
        if not status.known or entry is None:  # `known` implies an entry; the check lets mypy see it
            return record
        mapped: OrderStatus = _EXCHANGE_STATUS.get(entry.status, "cancelled")
        updated = record.model_copy(update={"status": mapped, "oid": entry.order.oid, "updated_at": self.clock()})
        await self.journal.record(updated)
        return updated

    async def _send_orders(self, action: Action, orders: Sequence[tuple[OrderRequest, OrderRole]],
                           trade_id: str | None, *,
                           grouping: Literal["na", "normalTpsl"] = "na") -> list[OrderRecord]:
        now = self.clock()
        records = [OrderRecord(cloid=o.cloid or action.cloid(role), action=action.key, role=role, market=o.coin,
                               is_buy=o.is_buy, size=o.size, price=o.limit_px,
                               trigger_px=o.order_type.trigger_px if isinstance(o.order_type, TriggerType) else None,
                               reduce_only=o.reduce_only, trade_id=trade_id, status="pending", created_at=now,
                               updated_at=now) for o, role in orders]
        await self._still_wanted(action)
        await self.journal.record(*records)  # before sending: a crash from here on is recoverable by cloid
        await self._ensure_held()
        result = await self.exchange.place_orders([o for o, _ in orders], grouping=grouping)
        # the order's mark in the risk state and the outcome's journal write go out together
        applied: list[OrderRecord] = (await _together(self._note_sent(), self._apply(records, result)))[1]
        return applied

    async def _send_modify(self, action: Action, oid: int, order: OrderRequest, trade_id: str | None, *,
                           role: OrderRole = "stop") -> list[OrderRecord]:
        now = self.clock()
        record = OrderRecord(cloid=order.cloid or action.cloid(role), action=action.key, role=role, market=order.coin,
                             is_buy=order.is_buy, size=order.size, price=order.limit_px,
                             trigger_px=order.order_type.trigger_px if isinstance(order.order_type, TriggerType)
                             else None, reduce_only=True, trade_id=trade_id, oid=oid, created_at=now, updated_at=now)
        await self._still_wanted(action)
        await self.journal.record(record)
        await self._ensure_held()
        result = await self.exchange.modify_orders([ModifyRequest(oid, order)])
        records: list[OrderRecord] = (await _together(self._note_sent(), self._apply([record], result)))[1]
        if records[0].status == "resting" and records[0].oid == oid:
            # batchModify answers success without the new oid: ask for it by cloid
            records = [await self._resolve(records[0].model_copy(update={"status": "sent"}))]
        return records

    async def _send_cancels(self, action: Action, cancels: Sequence[tuple[CancelRequest, int | None]],
                            trade_id: str | None) -> list[OrderRecord]:
        now = self.clock()
        records = [OrderRecord(cloid=action.cloid(f"cancel-{c.oid or c.cloid}"), action=action.key, role="cancel",
                               market=c.coin, is_buy=False, size=Decimal(0), trade_id=trade_id, oid=oid,
                               created_at=now, updated_at=now) for c, oid in cancels]
        if not records:
            return []
        await self._still_wanted(action)
        await self.journal.record(*records)
        await self._ensure_held()
        result = await self.exchange.cancel_orders([c for c, _ in cancels])
        return await self._apply(records, result)

    async def _ensure_held(self) -> None:
        """The lease check just before a send (and the send's mark, `changed_at`). A journal fenced by
        the same lease has just checked it in Redis in the write of the records (and renewed it if this
        process was paused past the TTL): the journal write is the check then, no second round trip."""
        if self.lease is not None and self.journal.lease is not self.lease:
            await self.lease.ensure_held()
        self.changed_at = time.monotonic()

    @staticmethod
    async def _still_wanted(action: Action) -> None:
        """The last check before an irreversible step; raises (nothing done) if the action's asker
        no longer wants it."""
        if action.check is not None:
            await action.check()

    async def _send_leverage(self, market: str, leverage: int, is_cross: bool) -> str | None:
        if self.lease is not None:
            await self.lease.ensure_held()
        self.changed_at = time.monotonic()
        result = await self.exchange.update_leverage(market, leverage, is_cross=is_cross)
        if isinstance(result, ActionOk):
            self._leverage_set[market] = (Decimal(leverage), is_cross)
            return None
        if isinstance(result, ActionRejected):
            return result.message
        return f"outcome unknown: {result.reason}"

    async def _note_sent(self) -> None:
        now = self.clock()
        await self._risk_state.update(lambda state: note_order_sent(state, now))

    async def _apply(self, records: list[OrderRecord], result: SendResult) -> list[OrderRecord]:
        now = self.clock()
        out: list[OrderRecord] = []
        if isinstance(result, ActionRejected):
            out = [r.model_copy(update={"status": "rejected", "error": result.message, "updated_at": now})
                   for r in records]
        elif isinstance(result, OutcomeUnknown):
            out = [r.model_copy(update={"status": "unknown", "error": result.reason, "updated_at": now})
                   for r in records]
        else:
            statuses = list(result.statuses)
            for i, r in enumerate(records):
                item = statuses[i] if i < len(statuses) else None
                out.append(r.model_copy(update={**_outcome_fields(item, r), "updated_at": now}))
        await self.journal.record(*out)
        for r in out:
            self.bus.publish(OrderUpdated(market=r.market, oid=r.oid, cloid=r.cloid, status=r.status,
                                          detail={"role": r.role, "size": str(r.size), "error": r.error}))
        return out


async def _given(account: AccountView) -> AccountView:
    return account


async def _together(*steps: Awaitable[Any]) -> list[Any]:
    """Run `steps` concurrently (their round trips overlap) and return their results in order. The
    first failure cancels the others and is raised as it is (no ExceptionGroup: callers catch the
    exchange's and the lease's own errors)."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _outcome_fields(item: Any, record: OrderRecord) -> dict[str, Any]:
    if item is None:
        return {"status": "resting" if record.role == "modify" else "sent"}
    if isinstance(item, Resting):
        return {"status": "resting", "oid": item.oid}
    if isinstance(item, Filled):
        return {"status": "filled", "oid": item.oid, "filled_size": item.total_sz, "avg_px": item.avg_px}
    if isinstance(item, Waiting):  # a child on the exchange waiting for its trigger rests like any stop
        return {"status": "resting" if item.kind == "waitingForTrigger" else "waiting"}
    if isinstance(item, Rejected):
        return {"status": "rejected", "error": item.message}
    if isinstance(item, Success):
        return {"status": "cancelled" if record.role == "cancel" else "resting"}
    return {"status": "sent"}
