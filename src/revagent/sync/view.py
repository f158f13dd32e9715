"""The live account: the exchange's state as last seen (REST snapshot) plus what the websocket and the
gateway's acknowledgements said since, projected into the risk engine's `AccountView`.

Pure and synchronous (no I/O, no clock): the sync service feeds it and reads `view(phase, now)`.

- `apply_snapshot` replaces everything with the exchange's answer (the exchange wins) and returns the
  drift between what the session believed and that answer, plus the optimistic changes it confirmed
  or rolled back;
- `apply_fills` moves positions at once from the fills' `startPosition` (exact, no arithmetic on
  stale state), `apply_order_updates` adds and removes open orders, `apply_ack` records an optimistic
  order the gateway just placed or cancelled: all of them wait for the next snapshot to confirm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from revagent.events import DriftKind
from revagent.exchange.types import (
    AssetCtx,
    AssetPosition,
    ClearinghouseState,
    Fill,
    FrontendOpenOrder,
    Leverage,
    Meta,
    Position,
    WsOrderUpdate,
)
from revagent.models import OrderRecord, TradePlan
from revagent.risk import AccountView, SyncPhase
from revagent.sync.fills import end_position
from revagent.sync.projection import flatten_orders, project_account

_ZERO = Decimal(0)
_GONE = frozenset({"filled", "canceled", "cancelled", "rejected", "triggered", "marginCanceled",
                   "reduceOnlyCanceled", "siblingFilledCanceled", "delistedCanceled", "liquidatedCanceled",
                   "scheduledCancel", "vaultWithdrawalCanceled", "openInterestCapCanceled",
                   "selfTradeCanceled", "tickRejected", "minTradeNtlRejected",
                   "perpMarginRejected", "reduceOnlyRejected", "badAloPxRejected", "iocCancelRejected",
                   "badTriggerPxRejected", "marketOrderNoLiquidityRejected", "insufficientSpotBalanceRejected"})


@dataclass(frozen=True)
class Drift:
    """One difference between the session's view and a snapshot (see `events.DriftKind`)."""

    kind: DriftKind
    market: str
    detail: str
    matters: bool


@dataclass
class SnapshotOutcome:
    drift: list[Drift] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    rolled_back: list[int] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def _order_from_record(record: OrderRecord, oid: int, timestamp: int) -> FrontendOpenOrder:
    trigger = record.trigger_px is not None
    order_type = {"stop": "Stop Market", "take_profit": "Take Profit Market"}.get(record.role, "Limit")
    return FrontendOpenOrder(
        coin=record.market, limit_px=record.price or record.trigger_px or Decimal(1), oid=oid,
        side="B" if record.is_buy else "A", sz=record.size, timestamp=timestamp, orig_sz=record.size,
        cloid=record.cloid, is_trigger=trigger, order_type=order_type if trigger else "Limit",
        reduce_only=record.reduce_only, trigger_px=record.trigger_px,
        trigger_condition="Triggered" if not trigger else "N/A")


def _positions(state: ClearinghouseState | None) -> dict[str, Decimal]:
    if state is None:
        return {}
    return {ap.position.coin: ap.position.szi for ap in state.asset_positions if ap.position.szi != 0}


def account_doc(state: ClearinghouseState, orders: Iterable[FrontendOpenOrder]) -> dict[str, Any]:
    """What sync remembers of the account between snapshots and between runs (JSON-ready): positions
    (market -> signed size) and open orders (oid -> market, side, size, trigger price, kind)."""
    return {
        "positions": {coin: str(sz) for coin, sz in _positions(state).items()},
        "orders": {str(o.oid): {"coin": o.coin, "side": o.side, "sz": str(o.sz),
                                "trigger_px": str(o.trigger_px) if o.trigger_px is not None else None,
                                "kind": ("stop" if "stop" in o.order_type.lower() else "take_profit")
                                if o.is_trigger else "limit"}
                   for o in flatten_orders(orders)},
        "time": state.time,
    }


def diff_docs(before: Mapping[str, Any], after: Mapping[str, Any], *, expected_added: Iterable[int] = (),
              expected_removed: Iterable[int] = ()) -> list[Drift]:
    """The drift from `before` to `after` (two `account_doc`s). Orders in `expected_added` /
    `expected_removed` (optimistic changes) are not drift."""
    out: list[Drift] = []
    was_pos: Mapping[str, str] = before.get("positions", {})
    now_pos: Mapping[str, str] = after.get("positions", {})
    for coin in sorted(was_pos.keys() | now_pos.keys()):
        was, now = Decimal(was_pos.get(coin, "0")), Decimal(now_pos.get(coin, "0"))
        if was == now:
            continue
        if was == 0:
            out.append(Drift("position_appeared", coin, f"{coin} {now} appeared on the exchange", True))
        elif now == 0:
            out.append(Drift("position_vanished", coin, f"{coin} {was} is no longer on the exchange", True))
        else:
            out.append(Drift("position_changed", coin, f"{coin} is {now} on the exchange, not {was}", False))
    was_orders: Mapping[str, Any] = before.get("orders", {})
    now_orders: Mapping[str, Any] = after.get("orders", {})
    added_ok = {str(o) for o in expected_added}
    removed_ok = {str(o) for o in expected_removed}
    for oid in sorted(was_orders.keys() - now_orders.keys() - added_ok):
        o = was_orders[oid]
        stop = o.get("kind") == "stop"
        what = f"stop at {o.get('trigger_px')}" if stop else f"{o.get('kind')} order"
        out.append(Drift("order_vanished", o["coin"], f"{o['coin']} {what} {oid} is no longer open",
                         stop and o["coin"] in now_pos))
    for oid in sorted(now_orders.keys() - was_orders.keys() - removed_ok):
        o = now_orders[oid]
        out.append(Drift("order_appeared", o["coin"], f"{o['coin']} {o.get('kind')} order {oid} is open on the "
                         "exchange", False))
    return out


class LiveAccount:
    """The inputs of the account view and the view built from them (rebuilt only when they change)."""

    def __init__(self) -> None:
        self.state: ClearinghouseState | None = None
        self.orders: dict[int, FrontendOpenOrder] = {}
        self.meta: Meta | None = None
        self.ctxs: list[AssetCtx] | None = None
        self.mids: dict[str, Decimal] = {}
        self.mids_at: datetime | None = None
        self.snapshot_at: datetime | None = None
        self.plans: list[TradePlan] = []
        self.journal: dict[str, OrderRecord] = {}
        self.leverage_seen: dict[str, Leverage] = {}
        self.opened: dict[str, datetime] = {}  # market -> first fill of its open trade (from the ledger)
        self.optimistic_added: set[int] = set()
        self.optimistic_removed: set[int] = set()
        self._view: AccountView | None = None
        self._view_key: tuple[object, ...] | None = None
        self.dirty = True

    @property
    def ready(self) -> bool:
        return self.state is not None and self.meta is not None

    # ------------------------------------------------------------------------------ snapshot
    def apply_snapshot(self, state: ClearinghouseState, orders: Sequence[FrontendOpenOrder], meta: Meta,
                       ctxs: Sequence[AssetCtx] | None, mids: Mapping[str, Decimal] | None,
                       at: datetime) -> SnapshotOutcome:
        """The exchange's answer replaces the view. Returns the drift and the optimistic changes settled."""
        out = SnapshotOutcome()
        new_orders = {o.oid: o for o in flatten_orders(orders)}
        if self.state is not None:
            before = account_doc(self.state, self.orders.values())
            out.drift = diff_docs(before, account_doc(state, new_orders.values()),
                                  expected_added=self.optimistic_added, expected_removed=self.optimistic_removed)
        out.confirmed = sorted(o for o in self.optimistic_added if o in new_orders) + sorted(
            o for o in self.optimistic_removed if o not in new_orders)
        out.rolled_back = sorted(o for o in self.optimistic_added if o not in new_orders) + sorted(
            o for o in self.optimistic_removed if o in new_orders)
        self.optimistic_added.clear()
        self.optimistic_removed.clear()
        if self.state is None or _positions(self.state) != _positions(state) or \
                state.margin_summary.account_value != self.state.margin_summary.account_value:
            out.changed.extend(["positions", "equity"])
        if set(new_orders) != set(self.orders) or out.rolled_back:
            out.changed.append("orders")
        for ap in state.asset_positions:
            self.leverage_seen[ap.position.coin] = ap.position.leverage
        self.state = state
        self.orders = new_orders
        self.meta = meta
        if ctxs is not None:
            self.ctxs = list(ctxs)
        if mids:
            self.mids.update(mids)
            self.mids_at = at
        self.snapshot_at = at
        self.dirty = True
        return out

    # ------------------------------------------------------------------------------ websocket
    def apply_fills(self, fills: Iterable[Fill]) -> list[str]:
        """Move positions to where each fill (newer than the snapshot) left them. Returns the markets moved."""
        if self.state is None:
            return []
        snap_ms = self.state.time
        latest: dict[str, Fill] = {}
        for f in sorted(fills, key=lambda f: f.time):
            if snap_ms is not None and f.time < snap_ms:  # older than the snapshot: already in it
                continue
            latest[f.coin] = f
        if not latest:
            return []
        positions = {ap.position.coin: ap for ap in self.state.asset_positions}
        for coin, f in latest.items():
            size = end_position(f)
            held = positions.get(coin)
            old = held.position if held is not None else None
            if size == 0:
                positions.pop(coin, None)
                continue
            entry = f.px
            if old is not None and old.szi != 0 and old.entry_px is not None and (old.szi > 0) == (size > 0):
                if abs(size) > abs(old.szi):  # an add: average the entry
                    entry = (old.entry_px * abs(old.szi) + f.px * (abs(size) - abs(old.szi))) / abs(size)
                else:
                    entry = old.entry_px
            mark = self._mark(coin) or f.px
            leverage = old.leverage if old is not None else self.leverage_seen.get(coin) or Leverage(type="cross",
                                                                                                      value=1)
            positions[coin] = AssetPosition(position=Position(
                coin=coin, szi=size, entry_px=entry, position_value=abs(size) * mark,
                unrealized_pnl=(mark - entry) * size, return_on_equity=_ZERO,
                liquidation_px=old.liquidation_px if old is not None else None,
                margin_used=old.margin_used if old is not None else _ZERO, leverage=leverage,
                max_leverage=old.max_leverage if old is not None else None))
        self.state = self.state.model_copy(update={"asset_positions": list(positions.values())})
        self.dirty = True
        return sorted(latest)

    def apply_order_updates(self, updates: Iterable[WsOrderUpdate]) -> bool:
        """Open orders from the `orderUpdates` channel: added, resized or removed. True when anything changed."""
        changed = False
        for u in updates:
            o = u.order
            if u.status in _GONE or u.status.endswith(("Canceled", "Rejected")):
                changed |= self.orders.pop(o.oid, None) is not None
                continue
            if u.status != "open":
                continue
            known = self.orders.get(o.oid)
            if known is not None:
                record = self.journal.get(o.cloid or "")
                if record is not None and self._relabel(record):
                    changed = True
                    known = self.orders[o.oid]
                if known.sz != o.sz:
                    self.orders[o.oid] = known.model_copy(update={"sz": o.sz})
                    changed = True
                continue
            record = self.journal.get(o.cloid or "")
            if record is not None:
                self.orders[o.oid] = _order_from_record(record, o.oid, o.timestamp).model_copy(
                    update={"sz": o.sz, "limit_px": o.limit_px})
            else:
                self.orders[o.oid] = FrontendOpenOrder(
                    coin=o.coin, limit_px=o.limit_px, oid=o.oid, side=o.side, sz=o.sz, timestamp=o.timestamp,
                    orig_sz=o.orig_sz, cloid=o.cloid, reduce_only=bool(o.reduce_only))
            changed = True
        if changed:
            self.dirty = True
        return changed

    def unknown_cloids(self, updates: Iterable[WsOrderUpdate]) -> list[str]:
        """Client order ids of newly open orders whose journal record this view does not hold yet. The
        gateway journals every order before sending it, so the caller looks them up (`learn`) before
        `apply_order_updates`: a moved stop's new order, which `orderUpdates` shows as a plain order and
        often before the gateway's ack, is then labelled by its journal role from the first update."""
        return sorted({u.order.cloid for u in updates
                       if u.status == "open" and u.order.cloid and u.order.cloid not in self.journal
                       and u.order.oid not in self.orders})

    def learn(self, record: OrderRecord) -> None:
        """A journal record read for an order the websocket announced (see `unknown_cloids`)."""
        self.journal[record.cloid] = record

    def apply_ack(self, record: OrderRecord) -> bool:
        """The gateway's own acknowledgement: a resting order shows at once, a cancel removes it at once."""
        self.journal[record.cloid] = record
        if record.role == "cancel":
            if record.status == "cancelled" and record.oid is not None and record.oid in self.orders:
                del self.orders[record.oid]
                self.optimistic_removed.add(record.oid)
                self.dirty = True
                return True
            return False
        if self._relabel(record):
            return True
        if record.status == "resting" and record.oid is not None and record.oid not in self.orders:
            stamp = int(record.updated_at.timestamp() * 1000)
            self.orders[record.oid] = _order_from_record(record, record.oid, stamp)
            self.optimistic_added.add(record.oid)
            self.dirty = True
            return True
        return False

    def _relabel(self, record: OrderRecord) -> bool:
        """An open order the websocket announced before its journal record was known (a moved stop's new
        order, which `orderUpdates` shows as a plain order) takes its role from the journal: a stop is
        labelled a stop by its role, never guessed from its side. Matched by client order id."""
        if record.role not in ("stop", "take_profit") or record.trigger_px is None:
            return False
        changed = False
        for oid, o in list(self.orders.items()):
            if o.cloid != record.cloid or o.is_trigger:
                continue
            self.orders[oid] = _order_from_record(record, oid, o.timestamp).model_copy(update={"sz": o.sz})
            changed = True
        if changed:
            self.dirty = True
        return changed

    def set_opened(self, opened: Mapping[str, datetime]) -> None:
        """When each market's open trade began (the ledger's first fill), for positions without a plan."""
        if opened != self.opened:
            self.opened = dict(opened)
            self.dirty = True

    def apply_mids(self, mids: Mapping[str, Decimal], at: datetime) -> None:
        self.mids.update(mids)
        self.mids_at = at
        self.dirty = True

    def set_plans(self, plans: Sequence[TradePlan], journal: Iterable[OrderRecord] = ()) -> None:
        """The open trade plans and the journal records still in flight (replacing the previous ones, so
        the view never carries the whole history of orders)."""
        self.plans = list(plans)
        self.journal = {r.cloid: r for r in journal}
        self.dirty = True

    def _mark(self, coin: str) -> Decimal | None:
        if self.meta is not None and self.ctxs is not None:
            for i, asset in enumerate(self.meta.universe):
                if asset.name == coin and i < len(self.ctxs):
                    return self.ctxs[i].mark_px
        return self.mids.get(coin)

    # ------------------------------------------------------------------------------ projection
    def doc(self) -> dict[str, Any] | None:
        """The current `account_doc` (None before the first snapshot)."""
        return account_doc(self.state, self.orders.values()) if self.state is not None else None

    def view(self, phase: SyncPhase, now: datetime) -> AccountView | None:
        """The account view (None before the first snapshot); rebuilt only when an input changed."""
        if self.state is None or self.meta is None:
            return None
        key = (phase,)
        if self._view is not None and not self.dirty and key == self._view_key:
            return self._view
        price_time = self.mids_at or self.snapshot_at or now
        self._view = project_account(self.state, list(self.orders.values()), self.meta, self.ctxs, self.mids,
                                     plans=self.plans, journal=list(self.journal.values()), price_time=price_time,
                                     as_of=now, phase=phase, opened=self.opened)
        self._view_key = key
        self.dirty = False
        return self._view
