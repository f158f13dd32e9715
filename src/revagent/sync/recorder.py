"""The one way facts enter the ledger: record in Redis (exactly once), fold into the trade book,
publish, and keep the trade plans' lifecycle in step. Both the reconciler (REST pages) and the
running loop (websocket) call it; a lock keeps the book's updates in order.

It also accumulates what the risk state needs between two updates: transfers (signed USD) and the
net PnL of the trades closed since (`drain_for_risk`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from revagent.bus import Bus
from revagent.events import FillRecorded
from revagent.exchange.types import Fill, LedgerUpdate, UserFunding
from revagent.models import TradePlan, utc_now
from revagent.store.ledger import LedgerEvent, LedgerStore
from revagent.store.orders import OrderJournal, TradePlans
from revagent.sync.fills import transfer_amount
from revagent.sync.trades import Trade, TradeBook, build_trades

log = logging.getLogger(__name__)


class LedgerRecorder:
    """Owns the in-memory trade book of one wallet, kept equal to what the ledger holds."""

    def __init__(self, ledger: LedgerStore, plans: TradePlans, journal: OrderJournal, bus: Bus, *,
                 master: str | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.ledger = ledger
        self.plans = plans
        self.journal = journal
        self.bus = bus
        self.master = master
        self.clock = clock
        self.book = TradeBook()
        self.loaded = False
        self._lock = asyncio.Lock()
        self._transfers: list[tuple[int, int | None, Decimal]] = []  # (seq, time if backfilled, amount)
        self.transfer_seq = 0  # how many transfers were recorded by this process
        self.live = False  # set by the service after its first reconciliation
        self._closed: list[Decimal] = []

    async def load(self) -> None:
        """Build the book from everything recorded (once, at start)."""
        async with self._lock:
            if self.loaded:
                return
            fills, funding = await self.ledger.fills(), await self.ledger.funding()
            plans, journal = await self.plans.all(), await self.journal.all()
            self.book = build_trades(fills, funding, plans, journal)
            self.loaded = True

    async def _learn_orders(self, fills: Sequence[Fill]) -> None:
        """Teach the book the journal records (and plans) behind fills of orders it does not know yet."""
        known = self.book.known_orders()
        cloids = sorted({f.cloid for f in fills if f.cloid and f.cloid not in known})
        if not cloids:
            return
        records = [r for r in [await self.journal.get(c) for c in cloids] if r is not None]
        plans = [p for p in [await self.plans.get(t) for t in {r.trade_id for r in records if r.trade_id}]
                 if p is not None]
        self.book.set_plans(plans, records)

    async def fills(self, fills: Sequence[Fill], *, source: str) -> list[Fill]:
        """Record `fills`; returns those that were new (each is published once as FillRecorded)."""
        if not fills:
            return []
        async with self._lock:
            new = await self.ledger.record_fills(fills)
            if not new:
                return []
            await self._learn_orders(new)
            closed = self.book.add_fills(new)
            opened = self.book.open_trades()
            for f in new:
                trade = opened.get(f.coin)
                self.bus.publish(FillRecorded(market=f.coin, side=f.side, px=f.px, sz=f.sz, fee=f.fee,
                                              closed_pnl=f.closed_pnl, trade_id=trade.trade_id if trade else None))
            for t in closed:
                self._closed.append(t.net_pnl)
                await self.ledger.record_event(LedgerEvent(
                    kind="trade_closed", market=t.market, at=self.clock(),
                    reason=f"{t.market} {t.side} closed: net {t.net_pnl:.2f} USD"
                           + ("" if t.complete else f" (incomplete: {t.incomplete_reason})"),
                    data={"trade_id": t.trade_id, "net_pnl": str(t.net_pnl), "source": source}))
            touched = {f.coin for f in new}  # plans exist only for the gateway's trades (not `x_...`)
            await self._update_plans([t for t in closed if not t.trade_id.startswith("x_")],
                                     {m: t for m, t in opened.items()
                                      if m in touched and not t.trade_id.startswith("x_")})
            log.debug("recorded %d new fill(s) from %s", len(new), source)
            return new

    async def _update_plans(self, closed: list[Trade], opened: dict[str, Trade]) -> None:
        now = self.clock()
        for t in closed:
            plan = await self.plans.get(t.trade_id)
            if plan is not None and plan.status in ("opening", "open"):
                await self._save_plan(plan.model_copy(update={"status": "closed", "closed_at": t.closed_at or now}),
                                      f"{t.market} is flat: trade {t.trade_id} closed")
        for t in opened.values():
            plan = await self.plans.get(t.trade_id)
            if plan is not None and plan.status == "opening":
                await self._save_plan(plan.model_copy(update={"status": "open"}),
                                      f"{t.market} entry filled: trade {t.trade_id} open")

    async def _save_plan(self, plan: TradePlan, reason: str) -> None:
        await self.plans.save(plan)
        self.book.set_plans([plan])
        await self.ledger.record_event(LedgerEvent(kind="plan", market=plan.market, at=self.clock(), reason=reason,
                                                   data={"trade_id": plan.trade_id, "status": plan.status}))

    async def funding(self, payments: Sequence[UserFunding]) -> list[UserFunding]:
        if not payments:
            return []
        async with self._lock:
            new = await self.ledger.record_funding(payments)
            self.book.add_funding(new)
            return new

    async def transfers(self, updates: Sequence[LedgerUpdate]) -> list[LedgerUpdate]:
        if not updates:
            return []
        async with self._lock:
            new = await self.ledger.record_transfers(updates)
            for u in new:
                amount = transfer_amount(u, self.master)
                if amount is not None:
                    self.transfer_seq += 1
                    self._transfers.append((self.transfer_seq, None if self.live else u.time, amount))
            return new

    def drain_for_risk(self, seen_until: datetime | None, released: int) -> tuple[list[Decimal], list[Decimal]]:
        """(transfers, closed trades' net PnL) since the last call, for `risk.update_state`.

        Only transfers numbered up to `released` are handed over: those recorded before the snapshot whose
        equity the caller passes was requested (so the equity already includes them); the rest wait for
        the next snapshot. Transfers found by the start-up backfill and stamped at or before `seen_until`
        (the risk state's last update; None for a new state) are already in the equity the state saw, so
        they are dropped rather than counted twice; those recorded while running always count."""
        cutoff = None if seen_until is None else seen_until.timestamp() * 1000
        ready = [e for e in self._transfers if e[0] <= released]
        self._transfers = [e for e in self._transfers if e[0] > released]
        transfers = [a for _, ms, a in ready if ms is None or (cutoff is not None and ms > cutoff)]
        closed = self._closed
        self._closed = []
        return transfers, closed
