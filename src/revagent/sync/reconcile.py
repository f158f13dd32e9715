"""Reconciliation: make the session's records agree with the exchange, in visible phases.

    checking     pull the clearinghouse state, open orders (with triggers), market contexts and mids,
                 and every fill, funding payment and transfer since the newest one recorded (paged by
                 time windows: nothing already recorded is fetched again, except its boundary millisecond)
    reconciling  record the new facts exactly once; diff the exchange with what the session believed
                 (the stored snapshot at start, the live view after a reconnect); the exchange wins:
                 trade plans without a position or an order are closed, journal records of orders that
                 are no longer open get their final status (asked by cloid); every correction is a
                 ledger event with its reason
    verifying    read the state again (and any fill that landed meanwhile; funding and transfers wait for
                 the next snapshot): the positions the recorded
                 fills lead to must be the exchange's; otherwise another round, up to `verify_rounds`
    consistent   done: new entries may be placed
    failed       (raised as `ReconcileFailed`) the caller retries with backoff

Who calls it: the sync service (at start, after every reconnect, and on `revagent sync`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from revagent.exchange.types import (
    AssetCtx,
    ClearinghouseState,
    Fill,
    FrontendOpenOrder,
    LedgerUpdate,
    Meta,
    OrderStatusResponse,
    UserFunding,
)
from revagent.models import TERMINAL_ORDER_STATUSES, OrderRecord, OrderStatus, utc_now
from revagent.risk import SyncPhase
from revagent.store.ledger import LedgerEvent, Stream
from revagent.sync.options import SyncOptions
from revagent.sync.projection import flatten_orders
from revagent.sync.recorder import LedgerRecorder
from revagent.sync.view import Drift, account_doc, diff_docs

log = logging.getLogger(__name__)

FILLS_LIMIT = 2000  # userFillsByTime answers at most this many per request
FUNDING_LIMIT = 500
LEDGER_LIMIT = 2000
MAX_STATUS_QUERIES = 50  # order statuses asked per reconciliation
_EXCHANGE_STATUS: dict[str, OrderStatus] = {"open": "resting", "filled": "filled", "canceled": "cancelled",
                                            "triggered": "triggered", "rejected": "rejected"}
T = TypeVar("T")


class SyncVenue(Protocol):
    """What sync reads from the exchange (the Hyperliquid bridge, pointed anywhere)."""

    @property
    def master(self) -> str: ...

    async def account_state(self) -> ClearinghouseState: ...

    async def open_orders(self) -> list[FrontendOpenOrder]: ...

    async def meta_and_asset_ctxs(self) -> tuple[Meta, list[AssetCtx]]: ...

    async def all_mids(self) -> dict[str, Decimal]: ...

    async def fills_since(self, start_ms: int, end_ms: int | None = None) -> list[Fill]: ...

    async def user_funding(self, start_ms: int, end_ms: int | None = None) -> list[UserFunding]: ...

    async def ledger_updates(self, start_ms: int, end_ms: int | None = None) -> list[LedgerUpdate]: ...

    async def order_status_by_cloid(self, cloid: str) -> OrderStatusResponse: ...


class ReconcileFailed(Exception):
    """Reconciliation could not reach a consistent state; `reason` says why (shown with phase `failed`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Snapshot:
    """The exchange's account at one moment, as reconciliation (or a periodic snapshot) read it."""

    state: ClearinghouseState
    orders: list[FrontendOpenOrder]
    meta: Meta
    ctxs: list[AssetCtx]
    mids: dict[str, Decimal]
    at: datetime


@dataclass
class ReconcileReport:
    snapshot: Snapshot
    phases: list[tuple[SyncPhase, float]] = field(default_factory=list)  # phase, seconds since the start
    corrections: list[LedgerEvent] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    new_fills: int = 0
    new_funding: int = 0
    new_transfers: int = 0
    requests: int = 0
    rounds: int = 0
    seconds: float = 0.0


async def page_by_time(fetch: Callable[[int, int | None], Awaitable[list[T]]], start_ms: int, end_ms: int,
                       limit: int, time_of: Callable[[T], int]) -> tuple[list[T], int]:
    """Everything `fetch(start, end)` has in [start_ms, end_ms], whichever end of a full page the venue
    returns (Hyperliquid pages forward; a venue may return the newest first): a full page is split at the
    times it covered and the uncovered windows are asked again. Returns (items, requests made); items of
    a boundary millisecond may repeat (the ledger drops duplicates)."""
    out: list[T] = []
    windows = [(start_ms, end_ms)]
    requests = 0
    while windows:
        lo, hi = windows.pop()
        page = await fetch(lo, hi)
        requests += 1
        out.extend(page)
        if len(page) < limit:
            continue
        first, last = min(time_of(x) for x in page), max(time_of(x) for x in page)
        if first > lo:
            windows.append((lo, first))
        if last < hi:
            windows.append((last, hi))
        if first == lo and last == hi and first == last:
            log.warning("more than %d items in one millisecond at %d: some may be missing", limit, lo)
    return out, requests


class Reconciler:
    """One reconciliation at a time for one wallet; `run()` returns a report or raises ReconcileFailed."""

    def __init__(self, venue: SyncVenue, recorder: LedgerRecorder, *, options: SyncOptions | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.venue = venue
        self.recorder = recorder
        self.ledger = recorder.ledger
        self.options = options or SyncOptions()
        self.clock = clock

    async def run(self, *, baseline: dict[str, Any] | None,
                  on_phase: Callable[[SyncPhase, str], None] = lambda phase, reason: None,
                  on_snapshot: Callable[[Snapshot], None] | None = None) -> ReconcileReport:
        """Reconcile. `baseline`: what the session believed (an `account_doc`; None = the stored snapshot).
        `on_phase` is called on every phase change (the service publishes it); `on_snapshot` with each
        snapshot read (the service shows the account before reconciliation ends)."""
        t0 = time.perf_counter()
        phases: list[tuple[SyncPhase, float]] = []

        def phase(p: SyncPhase, reason: str = "") -> None:
            phases.append((p, time.perf_counter() - t0))
            on_phase(p, reason)

        await self.recorder.load()
        if baseline is None:
            baseline = await self.ledger.load_snapshot()
        corrections: list[LedgerEvent] = []
        drift: list[Drift] = []
        counts = {"fills": 0, "funding": 0, "transfers": 0, "requests": 0}
        problem = ""
        for round_ in range(1, self.options.verify_rounds + 1):
            phase("checking", "" if round_ == 1 else f"round {round_}: {problem}")
            snap = await self.fetch_snapshot()
            counts["requests"] += 4
            if on_snapshot is not None:
                on_snapshot(snap)
            await self.pull_facts(counts)
            phase("reconciling")
            after = account_doc(snap.state, snap.orders)
            if round_ == 1 and baseline is not None:
                own = await self._journalled_oids(snap.orders)  # this wallet's own orders are not drift
                drift, adopted = await self._adopt_planned(diff_docs(baseline, after, expected_removed=own),
                                                           after["positions"])
                corrections.extend(adopted)
                for d in drift:
                    corrections.append(await self._event("drift", d.market, f"the exchange wins: {d.detail}",
                                                         {"drift": d.kind}))
            corrections.extend(await self._settle_journal(snap.orders))
            corrections.extend(await self._settle_plans(snap))
            await self.ledger.save_snapshot(after)
            phase("verifying")
            state = await self.venue.account_state()
            counts["requests"] += 1
            fresh = await self.pull_facts(counts, ("fills",))  # positions move by fills only: 20 weight, not 60
            problem = self._verify(state)
            if not problem and not fresh and account_doc(state, [])["positions"] == after["positions"]:
                snap.state = state
                phase("consistent")
                return ReconcileReport(snapshot=snap, phases=phases, corrections=corrections, drift=drift,
                                       new_fills=counts["fills"], new_funding=counts["funding"],
                                       new_transfers=counts["transfers"], requests=counts["requests"],
                                       rounds=round_, seconds=time.perf_counter() - t0)
            if not problem:
                problem = "the account changed while it was being reconciled"
        raise ReconcileFailed(problem)

    async def fetch_snapshot(self) -> Snapshot:
        """State, open orders, market contexts and mids, fetched in parallel."""
        state, orders, (meta, ctxs), mids = await asyncio.gather(
            self.venue.account_state(), self.venue.open_orders(), self.venue.meta_and_asset_ctxs(),
            self.venue.all_mids())
        return Snapshot(state=state, orders=orders, meta=meta, ctxs=ctxs, mids=mids, at=self.clock())

    async def _start_ms(self, stream: Stream) -> int:
        last = await self.ledger.last_time_ms(stream)
        if last is not None:
            return last
        return int((self.clock() - self.options.history).timestamp() * 1000)

    async def pull_facts(self, counts: dict[str, int] | None = None,
                         streams: tuple[Stream, ...] = ("fills", "funding", "transfers")) -> bool:
        """Fetch and record every fill, funding payment and transfer (of `streams`) since the newest
        recorded. True when anything new was recorded. `counts` accumulates what was done."""
        counts = counts if counts is not None else {}
        end = int((self.clock() + timedelta(minutes=1)).timestamp() * 1000)

        async def none() -> tuple[list[Any], int]:
            return [], 0

        (fills, n1), (funding, n2), (updates, n3) = await asyncio.gather(
            page_by_time(self.venue.fills_since, await self._start_ms("fills"), end, FILLS_LIMIT, lambda f: f.time)
            if "fills" in streams else none(),
            page_by_time(self.venue.user_funding, await self._start_ms("funding"), end, FUNDING_LIMIT,
                         lambda p: p.time) if "funding" in streams else none(),
            page_by_time(self.venue.ledger_updates, await self._start_ms("transfers"), end, LEDGER_LIMIT,
                         lambda u: u.time) if "transfers" in streams else none())
        counts["requests"] = counts.get("requests", 0) + n1 + n2 + n3
        new_fills = await self.recorder.fills(sorted(fills, key=lambda f: f.time), source="rest")
        new_funding = await self.recorder.funding(funding)
        new_transfers = await self.recorder.transfers(updates)
        for key, new in (("fills", new_fills), ("funding", new_funding), ("transfers", new_transfers)):
            counts[key] = counts.get(key, 0) + len(new)
        return bool(new_fills or new_funding or new_transfers)

    def _verify(self, state: ClearinghouseState) -> str:
        """'' when the recorded fills lead to the exchange's positions, else what differs."""
        exchange = {ap.position.coin: ap.position.szi for ap in state.asset_positions}
        problems = []
        for coin, recorded in sorted(self.recorder.book.positions().items()):
            actual = exchange.get(coin, Decimal(0))
            if actual != recorded:
                problems.append(f"the recorded fills leave {coin} at {recorded}, the exchange has {actual}")
        return "; ".join(problems)

    async def _event(self, kind: str, market: str | None, reason: str, data: dict[str, Any]) -> LedgerEvent:
        event = LedgerEvent(kind=kind, market=market, reason=reason, at=self.clock(), data=data)
        await self.ledger.record_event(event)
        return event

    async def _settle_journal(self, orders: Sequence[FrontendOpenOrder]) -> list[LedgerEvent]:
        """Journal records of orders that are not open any more get the exchange's final status."""
        open_cloids = {o.cloid for o in flatten_orders(orders) if o.cloid}
        open_oids = {o.oid for o in flatten_orders(orders)}
        journal = self.recorder.journal
        out = await self._settle_open(orders)
        pending: list[OrderRecord] = [
            r for r in await journal.all()
            if r.status not in TERMINAL_ORDER_STATUSES and r.role not in ("cancel", "leverage", "modify")
            and r.cloid not in open_cloids and (r.oid is None or r.oid not in open_oids)]
        for record in pending[:MAX_STATUS_QUERIES]:
            oid: int | None
            status = await self.venue.order_status_by_cloid(record.cloid)
            if status.known and status.order is not None:
                mapped: OrderStatus = _EXCHANGE_STATUS.get(status.order.status, "cancelled")
                if mapped == record.status:
                    continue
                oid = status.order.order.oid
            elif record.status in ("resting", "waiting", "triggered") or \
                    self.clock() - record.updated_at > timedelta(seconds=75):
                mapped, oid = "cancelled", record.oid  # unknown to the exchange and past its expiry: never landed
            else:
                continue  # may still land: the gateway resolves it by cloid
            await journal.record(record.model_copy(update={"status": mapped, "oid": oid, "updated_at": self.clock()}))
            out.append(await self._event("journal", record.market,
                                         f"order {record.cloid} ({record.role}) is {mapped} on the exchange, "
                                         f"not {record.status}", {"cloid": record.cloid, "status": mapped}))
        return out

    async def _journalled_oids(self, orders: Sequence[FrontendOpenOrder]) -> list[int]:
        """Open orders the journal knows by their client id (placed by any process of this wallet)."""
        journal = self.recorder.journal
        return [o.oid for o in flatten_orders(orders) if o.cloid and await journal.get(o.cloid) is not None]

    async def _adopt_planned(self, drift: list[Drift],
                             positions: dict[str, str]) -> tuple[list[Drift], list[LedgerEvent]]:
        """A position that appeared since the baseline and matches an open trade plan (same market and
        side: a trade opened by another process of this wallet, e.g. a one-shot shell command) is the
        session's own trade: adopted, with a ledger event, not reported as drift."""
        appeared = [d for d in drift if d.kind == "position_appeared"]
        if not appeared:
            return drift, []
        plans = {p.market: p for p in await self.recorder.plans.open_trades()}
        kept: list[Drift] = []
        adopted: list[LedgerEvent] = []
        for d in drift:
            plan = plans.get(d.market) if d.kind == "position_appeared" else None
            size = Decimal(positions.get(d.market, "0"))
            if plan is None or size == 0 or (size > 0) != (plan.side.value == "long"):
                kept.append(d)
                continue
            adopted.append(await self._event("adopted", d.market,
                                             f"{d.market} {size} belongs to trade {plan.trade_id} (opened by "
                                             f"{plan.origin} at {plan.opened_at.isoformat(timespec='seconds')}): "
                                             "adopted", {"trade_id": plan.trade_id}))
        return kept, adopted

    async def _settle_open(self, orders: Sequence[FrontendOpenOrder]) -> list[LedgerEvent]:
        """Journal records of orders that are open on the exchange but recorded as not yet there (a lost
        answer: `unknown`; a stop that waited for its entry's fill: `waiting`) become `resting`."""
        journal = self.recorder.journal
        top = {o.oid for o in orders}  # a child still listed only under its unfilled parent is still waiting
        out = []
        for order in flatten_orders(orders):
            record = await journal.get(order.cloid) if order.cloid else None
            if record is None or record.status not in ("pending", "sent", "unknown", "waiting") \
                    or record.role in ("cancel", "leverage", "modify") \
                    or (record.status == "waiting" and order.oid not in top):
                continue
            await journal.record(record.model_copy(update={"status": "resting", "oid": order.oid,
                                                           "updated_at": self.clock()}))
            out.append(await self._event("journal", record.market,
                                         f"order {record.cloid} ({record.role}) is open on the exchange, "
                                         f"not {record.status}", {"cloid": record.cloid, "status": "resting"}))
        return out

    async def _settle_plans(self, snap: Snapshot) -> list[LedgerEvent]:
        """Open plans without a position and without a live order of theirs are over: closed (if the
        trade filled) or cancelled (if it never did)."""
        plans = self.recorder.plans
        open_plans = await plans.open_trades()
        if not open_plans:
            return []
        held = {ap.position.coin for ap in snap.state.asset_positions if ap.position.szi != 0}
        live_trades = set()
        for o in flatten_orders(snap.orders):
            record = await self.recorder.journal.get(o.cloid) if o.cloid and not o.is_trigger else None
            if record is not None:
                live_trades.add(record.trade_id)
        traded = self.recorder.book.trade_ids()
        out = []
        for plan in open_plans:
            if plan.market in held or plan.trade_id in live_trades:
                continue
            trade = next((t for t in self.recorder.book.trades() if t.trade_id == plan.trade_id), None) \
                if plan.trade_id in traded else None
            status = "closed" if trade is not None else "cancelled"
            closed_at = trade.closed_at if trade is not None and trade.closed_at else self.clock()
            await plans.save(plan.model_copy(update={"status": status, "closed_at": closed_at}))
            self.recorder.book.set_plans([plan])
            why = "its trade is flat" if trade is not None else "its entry never filled and no order is left"
            out.append(await self._event("plan", plan.market, f"trade {plan.trade_id} {status}: {plan.market} has no "
                                         f"position on the exchange and {why}",
                                         {"trade_id": plan.trade_id, "status": status}))
        return out
