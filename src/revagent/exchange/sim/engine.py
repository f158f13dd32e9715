"""The venue's core: state, order lifecycle, matching and fills. Single-threaded; the server calls it from the loop.

Every state change appends wire-shaped events to `self.events` (drained by the server into the websocket hub)
and marks the venue dirty for persistence. Time is always passed in (market time, ms).
`Engine` is extended by `MarketMoves` (what the market does) and `Venue` (what users ask for).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from revagent.exchange.sim import accounting as acc
from revagent.exchange.sim.book import Market
from revagent.exchange.sim.markets import MARKETS, MarketSpec, meta_json
from revagent.exchange.sim.model import Account, Agent, Order
from revagent.exchange.sim.numbers import PX_Q, ZERO, fmt, fmt_usd

HOUR = 3_600_000
MIN_NOTIONAL = Decimal(10)
MAX_CLOSED_ORDERS = 20_000
MAX_FILLS_PER_USER = 10_000
MAX_FUNDING_PER_USER = 5_000

E_TICK = "Price must be divisible by tick size."
E_MIN = "Order must have minimum value of $10."
E_MARGIN = "Insufficient margin to place order."
E_REDUCE = "Reduce only order would increase position."
E_IOC = "Order could not immediately match against any resting orders."
E_TPSL = "Invalid TP/SL price."
E_NO_LIQ = "No liquidity available for market order."
E_SIZE = "Order has invalid size."
E_CANCEL = "Order was never placed, already canceled, or filled."
E_MODIFY = "Cannot modify canceled or filled order"
E_ASSET = "Invalid asset."
E_BAND = "Order price cannot be more than 80% away from the reference price"
E_OPEN_CAP = "Too many open orders."

Event = tuple[str, str, Any]  # (kind, key: user or coin, payload)


@dataclass(slots=True)
class VenueOptions:
    """`balance`/`seed` shape the venue; the other fields are the exchange's rules, each switchable (off
    here for unit tests; `SimConfig.exchange_like()`, `revagent sim serve` and the paper venue turn them on)."""

    balance: Decimal = Decimal(10_000)
    seed: int = 0
    price_band: Decimal | None = None  # refuse order prices further than this fraction from the oracle (0.8)
    max_open_orders: int | None = None  # Hyperliquid's default cap is 1,000 open orders per user
    asset_suffix: bool = False  # order errors end with " asset=N" as on the live API
    schedule_cancel_volume: Decimal = Decimal(0)  # USD traded before scheduleCancel is allowed (1,000,000)


class Engine:
    """All exchange state, and the matching and lifecycle of orders."""

    def __init__(self, options: VenueOptions, start_ms: int, markets: Iterable[MarketSpec] = MARKETS) -> None:
        self.options = options
        self.specs: dict[str, MarketSpec] = {m.name: m for m in markets}
        self.by_asset: dict[int, MarketSpec] = {m.asset: m for m in self.specs.values()}
        self.markets: dict[str, Market] = {m.name: Market(m, m.start_px) for m in self.specs.values()}
        self.accounts: dict[str, Account] = {}
        self.agents: dict[str, Agent] = {}
        self.orders: dict[int, Order] = {}  # every order still remembered, open or closed
        self.open_by_user: dict[str, dict[int, Order]] = {}
        self.cloids: dict[tuple[str, str], int] = {}
        self.reserved_ntl: dict[str, dict[str, Decimal]] = {}  # user -> coin -> notional of opening orders
        self.funding_history: dict[str, list[dict[str, Any]]] = {m: [] for m in self.specs}
        self.next_oid = 1_000
        self.next_tid = 1
        self.last_funding_hour = start_ms // HOUR
        self.now_ms = start_ms
        self.events: list[Event] = []
        self._flat: set[tuple[str, str]] = set()
        self.dirty = False
        self.upstream_meta: dict[str, Any] | None = None
        self.upstream_spot_meta: dict[str, Any] | None = None  # served verbatim for names; spot is not traded
        self._rng = random.Random(f"hash:{options.seed}")
        for m in self.markets.values():
            m.candles.update(m.mid, start_ms)

    # accounts ------------------------------------------------------------------------------------------------
    def account(self, user: str) -> Account:
        """The account of `user` (lowercase hex), created with the starting balance on first use."""
        acct = self.accounts.get(user)
        if acct is None:
            acct = self.accounts[user] = Account(user, self.options.balance)
            acct.ledger.append(self._ledger_entry({"type": "deposit", "usdc": fmt_usd(self.options.balance)}))
            self.dirty = True
        return acct

    def view_account(self, user: str) -> Account:
        """For read-only queries: the account, or a fresh unsaved one (an agent's view is empty)."""
        acct = self.accounts.get(user)
        if acct is not None:
            return acct
        return Account(user, ZERO if user in self.agents else self.options.balance)

    def set_universe(self, specs: Iterable[MarketSpec], meta: dict[str, Any]) -> None:
        """Adopt an upstream's universe (asset ids = its indexes; `meta` is served verbatim). A market of the
        old universe that still has orders or positions stays, after the upstream's ids, unlisted."""
        new = {m.name: m for m in specs}
        used = {o.coin for o in self.orders.values() if o.status == "open"}
        used.update(c for a in self.accounts.values() for c in a.positions)
        extra = len(new)
        for name, spec in self.specs.items():
            if name not in new and name in used:
                new[name] = dataclasses.replace(spec, asset=extra)
                extra += 1
        markets: dict[str, Market] = {}
        for name, spec in new.items():
            market = self.markets.get(name)
            if market is None:
                market = Market(spec, spec.start_px)
                market.candles.update(market.mid, self.now_ms)
            else:
                market.spec = spec
            markets[name] = market
        self.specs, self.markets = new, markets
        self.by_asset = {m.asset: m for m in new.values()}
        for name in new:
            self.funding_history.setdefault(name, [])
        self.upstream_meta = meta

    def meta_json(self) -> dict[str, Any]:
        """`/info meta` of this venue's universe (an upstream's `meta` verbatim when the market mirrors one)."""
        if self.upstream_meta is not None:
            return self.upstream_meta
        return meta_json(self.specs.values())

    def marks(self) -> dict[str, Decimal]:
        return {c: m.mid for c, m in self.markets.items()}

    def summary(self, acct: Account) -> acc.Summary:
        return acc.summarize(acct, self.specs, self.marks())

    def new_hash(self) -> str:
        return "0x" + self._rng.getrandbits(256).to_bytes(32, "big").hex()

    def _ledger_entry(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"time": self.now_ms, "hash": self.new_hash(), "delta": delta}

    def _execute_limit(self, acct: Account, market: Market, order: Order, tx_hash: str) -> Any:
        """Cross what is marketable; IOC cancels the rest, GTC/ALO rest it. Returns the order's status."""
        if order.reduce_only:
            pos = acct.positions.get(order.coin)
            szi = pos.szi if pos is not None else ZERO
            if szi == 0 or (szi > 0) == order.is_buy:
                return {"error": E_REDUCE}
            order.sz = min(order.sz, abs(szi))
        filled, notional = self._take(order, market, tx_hash)
        if order.sz == 0:
            self._close(order, "filled")
            self._after_parent_fill(order)
            return {"filled": self._with_cloid(
                {"totalSz": fmt(filled), "avgPx": fmt(_avg(notional, filled)), "oid": order.oid}, order)}
        if order.tif == "Ioc":
            if filled == 0:
                self._close(order, "iocCancelRejected")
                opposite = market.asks if order.is_buy else market.bids
                empty = market.best_synthetic(not order.is_buy) is None and all(
                    o.user == order.user for o in opposite)
                return {"error": E_NO_LIQ if empty else E_IOC}
            self._close(order, "canceled")
            return {"filled": self._with_cloid(
                {"totalSz": fmt(filled), "avgPx": fmt(_avg(notional, filled)), "oid": order.oid}, order)}
        self._open(order)
        market.rest(order)
        self._order_event(order)
        return {"resting": self._with_cloid({"oid": order.oid}, order)}

    @staticmethod
    def _with_cloid(d: dict[str, Any], order: Order) -> dict[str, Any]:
        if order.cloid is not None:
            d["cloid"] = order.cloid
        return d

    def _take(self, order: Order, market: Market, tx_hash: str) -> tuple[Decimal, Decimal]:
        """Walk the opposite side (others' resting orders and synthetic levels) up to the limit price."""
        opposite = market.asks if order.is_buy else market.bids
        best = market.best_synthetic(not order.is_buy)
        if opposite:
            top = opposite[0].limit_px
            best = top if best is None else (min(best, top) if order.is_buy else max(best, top))
        if best is None or (best > order.limit_px if order.is_buy else best < order.limit_px):
            return ZERO, ZERO  # nothing marketable: do not even build the synthetic levels
        synth = market.synthetic(not order.is_buy)
        iu = is_ = 0
        left = synth[0][1] if synth else ZERO  # what remains of the synthetic level is_
        filled = notional = ZERO
        done: list[Order] = []
        while order.sz > 0:
            while iu < len(opposite) and (opposite[iu].user == order.user or opposite[iu].sz == 0):
                iu += 1
            maker = opposite[iu] if iu < len(opposite) else None
            level = synth[is_] if is_ < len(synth) else None
            if maker is None and level is None:
                break
            use_maker = maker is not None and (
                level is None or (maker.limit_px <= level[0] if order.is_buy else maker.limit_px >= level[0]))
            px = maker.limit_px if use_maker and maker is not None else level[0]  # type: ignore[index]
            if (px > order.limit_px) if order.is_buy else (px < order.limit_px):
                break
            if use_maker and maker is not None:
                qty = min(order.sz, self._maker_allowance(maker))
                if qty == 0:
                    self._cancel_order(maker, "reduceOnlyCanceled")
                    done.append(maker)
                    iu += 1
                    continue
                self._fill_pair(order, maker, px, qty, tx_hash)
                if maker.sz == 0:
                    done.append(maker)
                    iu += 1
            else:
                qty = min(order.sz, left)
                self._fill_taker(order, px, qty, tx_hash)
                if market.upstream_book is not None:  # upstream depth stays taken for this snapshot
                    market.consume(not order.is_buy, px, qty)
                left -= qty
                if left == 0:
                    is_ += 1
                    left = synth[is_][1] if is_ < len(synth) else ZERO
            filled += qty
            notional += qty * px
        for maker in done:
            market.remove(maker)
        self.settle_flat()
        return filled, notional

    def _maker_allowance(self, maker: Order) -> Decimal:
        if not maker.reduce_only:
            return maker.sz
        pos = self.accounts[maker.user].positions.get(maker.coin)
        szi = pos.szi if pos is not None else ZERO
        if szi == 0 or (szi > 0) == maker.is_buy:
            return ZERO
        return min(maker.sz, abs(szi))

    def _fill_pair(self, taker: Order, maker: Order, px: Decimal, qty: Decimal, tx_hash: str) -> None:
        tid = self._new_tid()
        self._book_fill(taker, px, qty, crossed=True, tid=tid, tx_hash=tx_hash)
        self._book_fill(maker, px, qty, crossed=False, tid=tid, tx_hash=tx_hash)
        self._trade(taker.coin, taker.is_buy, px, qty, tx_hash, tid, taker.user, maker.user)
        if maker.sz == 0:
            self._close(maker, "filled")
            self._after_parent_fill(maker)

    def _fill_taker(self, taker: Order, px: Decimal, qty: Decimal, tx_hash: str) -> None:
        tid = self._new_tid()
        self._book_fill(taker, px, qty, crossed=True, tid=tid, tx_hash=tx_hash)
        self._trade(taker.coin, taker.is_buy, px, qty, tx_hash, tid, taker.user, "0x" + "0" * 40)

    def _book_fill(self, order: Order, px: Decimal, qty: Decimal, *, crossed: bool, tid: int, tx_hash: str,
                   liquidation: dict[str, Any] | None = None) -> None:
        acct = self.accounts[order.user]
        spec = self.specs[order.coin]
        res = acc.apply_fill(acct, spec, is_buy=order.is_buy, px=px, sz=qty, crossed=crossed, time_ms=self.now_ms,
                             oid=order.oid, tid=tid, tx_hash=tx_hash, cloid=order.cloid, liquidation=liquidation)
        order.sz -= qty
        self.track_reserved(order)
        acct.fills.append(res.wire)
        if len(acct.fills) > MAX_FILLS_PER_USER:
            del acct.fills[: len(acct.fills) - MAX_FILLS_PER_USER]
        market = self.markets[order.coin]
        market.day_ntl_vlm += px * qty
        market.day_base_vlm += qty
        market.candles.update(market.mid, self.now_ms, qty, 1)
        self.events.append(("fill", order.user, res.wire))
        if res.new_szi == 0:
            self._flat.add((order.user, order.coin))  # its position TP/SL go, once the matching loop is done
        self.dirty = True

    def _trade(self, coin: str, taker_buys: bool, px: Decimal, sz: Decimal, tx_hash: str, tid: int,
               taker: str, maker: str) -> None:
        buyer, seller = (taker, maker) if taker_buys else (maker, taker)
        self.events.append(("trade", coin, {"coin": coin, "side": "B" if taker_buys else "A", "px": fmt(px),
                                            "sz": fmt(sz), "hash": tx_hash, "time": self.now_ms, "tid": tid,
                                            "users": [buyer, seller]}))

    # order lifecycle -----------------------------------------------------------------------------------------
    def _new_oid(self) -> int:
        self.next_oid += 1
        return self.next_oid

    def _new_tid(self) -> int:
        self.next_tid += 1
        return self.next_tid

    def _open(self, order: Order) -> None:
        order.status = "open"
        self.open_by_user.setdefault(order.user, {})[order.oid] = order
        self.track_reserved(order)

    def track_reserved(self, order: Order) -> None:
        """Keep the user's per-coin notional of open orders that would open exposure up to date."""
        counts = order.status == "open" and not order.reduce_only and (order.trigger is None or order.triggered)
        amount = order.sz * order.limit_px if counts else ZERO
        if amount != order.reserved:
            per_coin = self.reserved_ntl.setdefault(order.user, {})
            per_coin[order.coin] = per_coin.get(order.coin, ZERO) + amount - order.reserved
            order.reserved = amount

    def _close(self, order: Order, status: str, *, emit: bool = True) -> None:
        order.status = status
        order.status_ts = self.now_ms
        self.open_by_user.get(order.user, {}).pop(order.oid, None)
        self.track_reserved(order)
        if emit:
            self._order_event(order)
        self._prune()

    def _prune(self) -> None:
        if len(self.orders) <= MAX_CLOSED_ORDERS + 1000:
            return
        for oid in sorted(self.orders)[: len(self.orders) - MAX_CLOSED_ORDERS]:
            o = self.orders[oid]
            if o.status != "open":
                del self.orders[oid]
                if o.cloid is not None:
                    self.cloids.pop((o.user, o.cloid), None)

    def _order_event(self, order: Order) -> None:
        self.events.append(("order", order.user, {
            "order": self.basic_order(order),
            "status": "rejected" if order.status.endswith("Rejected") else order.status,
            "statusTimestamp": order.status_ts or self.now_ms}))

    @staticmethod
    def basic_order(order: Order) -> dict[str, Any]:
        d = {"coin": order.coin, "side": order.side, "limitPx": fmt(order.limit_px), "sz": fmt(order.sz),
             "oid": order.oid, "timestamp": order.timestamp, "origSz": fmt(order.orig_sz)}
        if order.cloid is not None:
            d["cloid"] = order.cloid
        return d

    def _after_parent_fill(self, order: Order) -> None:
        for child_oid in order.children:
            child = self.orders.get(child_oid)
            if child is not None and child.status == "open" and child.parent is not None:
                self._activate_child(child)

    def _activate_child(self, child: Order) -> None:
        child.parent = None
        self.markets[child.coin].triggers.append(child)
        self._order_event(child)

    def _cancel_order(self, order: Order, status: str = "canceled") -> None:
        market = self.markets[order.coin]
        if order.trigger is not None and not order.triggered:
            if order in market.triggers:
                market.triggers.remove(order)
        else:
            market.remove(order)
        filled_part = order.orig_sz - order.sz
        self._close(order, status)
        for child_oid in order.children:
            child = self.orders.get(child_oid)
            if child is None or child.status != "open" or child.parent is None:
                continue
            if filled_part > 0:
                child.sz = child.orig_sz = min(child.sz, filled_part)
                self._activate_child(child)
            else:
                self._cancel_order(child, status)

    def settle_flat(self) -> None:
        """Cancel the position TP/SL orders of positions that went flat (deferred: never inside a book walk)."""
        while self._flat:
            user, coin = self._flat.pop()
            pos = self.accounts[user].positions.get(coin)
            if pos is None or pos.szi == 0:
                self._cancel_position_tpsl(user, coin)

    def _cancel_position_tpsl(self, user: str, coin: str) -> None:
        for o in list(self.open_by_user.get(user, {}).values()):
            if o.coin == coin and o.is_position_tpsl:
                self._cancel_order(o)

    def cancel_all(self, user: str, status: str = "canceled") -> list[Order]:
        orders = list(self.open_by_user.get(user, {}).values())
        for o in orders:
            if o.status == "open":
                self._cancel_order(o, status)
        return orders


def _avg(notional: Decimal, sz: Decimal) -> Decimal:
    return (notional / sz).quantize(PX_Q).normalize()

