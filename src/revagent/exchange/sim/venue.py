"""The venue: markets, accounts, agents, orders and matching. Single-threaded; the server calls it from the loop.

Every state change appends wire-shaped events to `self.events` (drained by the server into the websocket hub)
and marks the venue dirty for persistence. Time is always passed in (market time, ms).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from revagent.exchange.sim import accounting as acc
from revagent.exchange.sim.book import Market
from revagent.exchange.sim.markets import MARKETS, MarketSpec
from revagent.exchange.sim.model import Account, Agent, Leverage, Order, Trigger
from revagent.exchange.sim.numbers import ZERO, fmt, fmt_usd, parse_wire, valid_price, valid_size

HOUR = 3_600_000
MIN_NOTIONAL = Decimal(10)
MAX_CLOSED_ORDERS = 20_000
MAX_FILLS_PER_USER = 10_000

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

Event = tuple[str, str, Any]  # (kind, key: user or coin, payload)


@dataclass(slots=True)
class VenueOptions:
    balance: Decimal = Decimal(10_000)
    seed: int = 0


class Venue:
    """All exchange state. Methods named after `/exchange` actions take the acting (master) user."""

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
        self.dirty = False
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

    def marks(self) -> dict[str, Decimal]:
        return {c: m.mid for c, m in self.markets.items()}

    def summary(self, acct: Account) -> acc.Summary:
        return acc.summarize(acct, self.specs, self.marks())

    def new_hash(self) -> str:
        return "0x" + self._rng.getrandbits(256).to_bytes(32, "big").hex()

    def _ledger_entry(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"time": self.now_ms, "hash": self.new_hash(), "delta": delta}

    def deposit(self, user: str, usd: Decimal) -> None:
        acct = self.account(user)
        acct.balance += usd
        acct.ledger.append(self._ledger_entry({"type": "deposit", "usdc": fmt_usd(usd)}))
        self.dirty = True

    def withdraw(self, user: str, usd: Decimal) -> str | None:
        """Withdraw to the bridge (fee 1 USDC as on Hyperliquid); returns an error text when not withdrawable."""
        acct = self.account(user)
        fee = Decimal(1)
        if usd + fee > self.summary(acct).withdrawable:
            return "Insufficient balance for withdrawal"
        acct.balance -= usd + fee
        acct.ledger.append(self._ledger_entry(
            {"type": "withdraw", "usdc": fmt_usd(usd), "nonce": self.now_ms, "fee": fmt_usd(fee)}))
        self.dirty = True
        return None

    # orders: placing -----------------------------------------------------------------------------------------
    def place_orders(self, user: str, wires: list[Any], grouping: Any, tx_hash: str) -> list[Any]:
        """The `order` action: one status per order, in batch order."""
        acct = self.account(user)
        statuses: list[Any] = []
        parent: Order | None = None
        for i, wire in enumerate(wires):
            child_of = parent if grouping == "normalTpsl" and i > 0 else None
            status, order = self._place_one(acct, wire, tx_hash, grouping=grouping, parent=child_of)
            if i == 0 and grouping == "normalTpsl" and order is not None:
                parent = order
            statuses.append(status)
        self.dirty = True
        return statuses

    def _parse(self, wire: Any) -> tuple[MarketSpec, Order] | str:
        if not isinstance(wire, dict):
            return E_ASSET
        asset = wire.get("a")
        spec = self.by_asset.get(asset) if isinstance(asset, int) else None
        if spec is None:
            return E_ASSET
        px, sz = parse_wire(wire.get("p")), parse_wire(wire.get("s"))
        if sz is None or not valid_size(sz, spec.sz_decimals):
            return E_SIZE
        if px is None or not valid_price(px, spec.sz_decimals):
            return E_TICK
        t = wire.get("t")
        tif: str | None = None
        trigger: Trigger | None = None
        if isinstance(t, dict) and isinstance(t.get("limit"), dict) and t["limit"].get("tif") in ("Gtc", "Ioc", "Alo"):
            tif = t["limit"]["tif"]
        elif isinstance(t, dict) and isinstance(t.get("trigger"), dict):
            trig = t["trigger"]
            tpx = parse_wire(trig.get("triggerPx"))
            if tpx is None or tpx <= 0 or trig.get("tpsl") not in ("tp", "sl") or not isinstance(
                    trig.get("isMarket"), bool):
                return E_TPSL
            if not valid_price(tpx, spec.sz_decimals):
                return E_TICK
            trigger = Trigger(tpx, trig["isMarket"], trig["tpsl"])
        else:
            return "Invalid order type."
        cloid = wire.get("c")
        if cloid is not None and (not isinstance(cloid, str) or len(cloid) != 34 or not cloid.startswith("0x")):
            return "Invalid cloid."
        order = Order(oid=0, user="", coin=spec.name, is_buy=bool(wire.get("b")), limit_px=px, sz=sz, orig_sz=sz,
                      reduce_only=bool(wire.get("r")), tif=tif, trigger=trigger, cloid=cloid, timestamp=self.now_ms)
        return spec, order

    def _place_one(self, acct: Account, wire: Any, tx_hash: str, *, grouping: Any,
                   parent: Order | None) -> tuple[Any, Order | None]:
        parsed = self._parse(wire)
        if isinstance(parsed, str):
            return {"error": parsed}, None
        spec, order = parsed
        order.user = acct.address
        market = self.markets[spec.name]
        if order.cloid is not None and (acct.address, order.cloid) in self.cloids:
            existing = self.orders.get(self.cloids[(acct.address, order.cloid)])
            if existing is not None and existing.status == "open":
                return {"error": "Duplicate cloid."}, None
        pos = acct.positions.get(spec.name)
        szi = pos.szi if pos is not None else ZERO
        is_child = parent is not None
        if order.trigger is not None and grouping == "positionTpsl":
            order.is_position_tpsl = True
        mid = market.mid  # a marketable order is worth about the mid, a resting one its limit price
        ref_px = min(order.limit_px, mid) if order.is_buy else max(order.limit_px, mid)
        if ref_px * order.sz < MIN_NOTIONAL and not order.reduce_only and not order.is_position_tpsl:
            return {"error": E_MIN}, None
        if order.reduce_only and not is_child and (szi == 0 or (szi > 0) == order.is_buy):
            return {"error": E_REDUCE}, None
        if is_child and order.trigger is not None and not self._child_trigger_ok(parent, order):
            return {"error": E_TPSL}, None
        if order.trigger is None and not order.reduce_only and not self._margin_ok(acct, spec, order, szi):
            return {"error": E_MARGIN}, None
        if order.tif == "Alo":
            bid, ask = market.bbo()
            crosses = (ask is not None and order.limit_px >= ask) if order.is_buy else (
                bid is not None and order.limit_px <= bid)
            if crosses:
                return {"error": f"Post only order would have immediately matched, bbo was "
                                 f"{fmt(bid) if bid is not None else ''}@{fmt(ask) if ask is not None else ''}."}, None
        order.oid = self._new_oid()
        self.orders[order.oid] = order
        if order.cloid is not None:
            self.cloids[(acct.address, order.cloid)] = order.oid
        order.status_ts = self.now_ms
        if order.trigger is not None:
            if parent is not None:
                order.parent = parent.oid
                parent.children.append(order.oid)
                self._open(order)
                if parent.status == "filled":
                    self._activate_child(order)
                    return "waitingForTrigger", order
                return "waitingForFill", order
            self._open(order)
            market.triggers.append(order)
            self._order_event(order)
            return {"resting": self._with_cloid({"oid": order.oid}, order)}, order
        return self._execute_limit(acct, market, order, tx_hash), order

    def _child_trigger_ok(self, parent: Order | None, child: Order) -> bool:
        if parent is None or child.trigger is None:
            return True
        tpx = child.trigger.trigger_px
        if parent.is_buy:  # a long's take-profit sits above the entry, its stop below
            return tpx > parent.limit_px if child.trigger.tpsl == "tp" else tpx < parent.limit_px
        return tpx < parent.limit_px if child.trigger.tpsl == "tp" else tpx > parent.limit_px

    def _margin_ok(self, acct: Account, spec: MarketSpec, order: Order, szi: Decimal) -> bool:
        lev = acc.leverage_of(acct, spec)
        opening = order.sz if szi == 0 or (szi > 0) == order.is_buy else max(ZERO, order.sz - abs(szi))
        if opening == 0:
            return True
        summary = self.summary(acct)
        reserved = sum((ntl / acc.leverage_of(acct, self.specs[coin]).value
                        for coin, ntl in self.reserved_ntl.get(acct.address, {}).items()), ZERO)
        free = summary.cross_value - summary.cross_margin - reserved
        px = order.limit_px
        if order.tif == "Ioc" or order.tif == "Gtc":  # a marketable order pays about the mid, not its limit
            px = min(px, self.markets[spec.name].mid * Decimal("1.01")) if order.is_buy else px
        return opening * px / lev.value <= free

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
                return {"error": E_IOC}
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
                left -= qty
                if left == 0:
                    is_ += 1
                    left = synth[is_][1] if is_ < len(synth) else ZERO
            filled += qty
            notional += qty * px
        for maker in done:
            market.remove(maker)
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
            self._cancel_position_tpsl(order.user, order.coin)
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

    def _cancel_position_tpsl(self, user: str, coin: str) -> None:
        for o in list(self.open_by_user.get(user, {}).values()):
            if o.coin == coin and o.is_position_tpsl:
                self._cancel_order(o)

    def cancel(self, user: str, cancels: list[Any]) -> list[Any]:
        """The `cancel` action ({"a","o"}) or `cancelByCloid` ({"asset","cloid"}): "success" or an error each."""
        out: list[Any] = []
        open_orders = self.open_by_user.get(user, {})
        for c in cancels:
            order: Order | None = None
            if isinstance(c, dict) and "o" in c:
                order = open_orders.get(c["o"]) if isinstance(c["o"], int) else None
                asset = c.get("a")
            elif isinstance(c, dict) and "cloid" in c:
                oid = self.cloids.get((user, str(c["cloid"])))
                order = open_orders.get(oid) if oid is not None else None
                asset = c.get("asset")
            else:
                asset = None
            if order is None or self.specs[order.coin].asset != asset:
                out.append({"error": E_CANCEL})
                continue
            self._cancel_order(order)
            out.append("success")
        self.dirty = True
        return out

    def cancel_all(self, user: str, status: str = "canceled") -> list[Order]:
        orders = list(self.open_by_user.get(user, {}).values())
        for o in orders:
            if o.status == "open":
                self._cancel_order(o, status)
        return orders

    def modify(self, user: str, modifies: list[Any], tx_hash: str) -> list[Any]:
        """`batchModify`: cancel each target (by oid or cloid) and place its new order (a new oid)."""
        acct = self.account(user)
        out: list[Any] = []
        for m in modifies:
            target = m.get("oid") if isinstance(m, dict) else None
            order: Order | None = None
            if isinstance(target, int):
                order = self.open_by_user.get(user, {}).get(target)
            elif isinstance(target, str):
                oid = self.cloids.get((user, target))
                order = self.open_by_user.get(user, {}).get(oid) if oid is not None else None
            if order is None:
                out.append({"error": E_MODIFY})
                continue
            self._cancel_order(order)
            if order.cloid is not None:
                self.cloids.pop((user, order.cloid), None)
            status, _ = self._place_one(acct, m.get("order"), tx_hash, grouping="na", parent=None)
            out.append(status)
        self.dirty = True
        return out

    # leverage and margin ----------------------------------------------------------------------------------
    def update_leverage(self, user: str, asset: Any, is_cross: Any, leverage: Any) -> str | None:
        spec = self.by_asset.get(asset) if isinstance(asset, int) else None
        if spec is None:
            return E_ASSET
        if not isinstance(leverage, int) or isinstance(leverage, bool) or not 1 <= leverage <= spec.max_leverage:
            return f"Invalid leverage value {leverage}, max leverage for {spec.name} is {spec.max_leverage}"
        acct = self.account(user)
        old = acc.leverage_of(acct, spec)
        pos = acct.positions.get(spec.name)
        if pos is not None and bool(is_cross) != old.is_cross:
            return "Cannot switch leverage type with open position."
        if pos is not None and not old.is_cross and leverage < old.value:
            needed = abs(pos.szi) * pos.entry_px / leverage
            if needed > pos.iso_margin + self.summary(acct).withdrawable:
                return E_MARGIN
            pos.iso_margin = max(pos.iso_margin, needed)
        acct.leverage[spec.name] = Leverage(bool(is_cross), leverage)
        if pos is not None and old.is_cross and leverage < old.value:
            s = self.summary(acct)
            if s.cross_margin > s.cross_value:
                acct.leverage[spec.name] = old
                return E_MARGIN
        self.dirty = True
        return None

    def update_isolated_margin(self, user: str, asset: Any, ntli: Any) -> str | None:
        spec = self.by_asset.get(asset) if isinstance(asset, int) else None
        if spec is None:
            return E_ASSET
        if not isinstance(ntli, int):
            return "Invalid margin amount."
        acct = self.account(user)
        pos = acct.positions.get(spec.name)
        if pos is None or acc.leverage_of(acct, spec).is_cross:
            return "Cannot update margin for position with no isolated margin."
        usd = Decimal(ntli) / Decimal(1_000_000)
        if usd > 0 and usd > self.summary(acct).withdrawable:
            return "Insufficient margin to add."
        lev = acc.leverage_of(acct, spec)
        if usd < 0 and pos.iso_margin + usd < abs(pos.szi) * self.markets[spec.name].mid / lev.value:
            return "Insufficient margin to remove."
        pos.iso_margin += usd
        self.dirty = True
        return None

    # the market moves -------------------------------------------------------------------------------------
    def on_prices(self, prices: dict[str, float], now_ms: int) -> None:
        """Market time `now_ms` with oracle prices: resting fills, triggers, funding, liquidations, cancels."""
        self.now_ms = max(self.now_ms, now_ms)
        for coin, px in prices.items():
            market = self.markets.get(coin)
            if market is None:
                continue
            market.set_oracle(Decimal(repr(px)) if isinstance(px, float) else Decimal(px))
            market.candles.update(market.mid, self.now_ms)
            self._fill_resting(market)
            self._fire_triggers(market)
        self._funding()
        self._liquidations()
        self._scheduled_cancels()
        self.events.append(("tick", "", None))

    def _fill_resting(self, market: Market) -> None:
        """Resting orders the synthetic book has moved through fill at their limit price (maker)."""
        best_ask = market.best_synthetic(False)
        best_bid = market.best_synthetic(True)
        for side, crossed_by in ((market.bids, best_ask), (market.asks, best_bid)):
            if crossed_by is None:
                continue
            done = []
            for o in side:
                hit = o.limit_px >= crossed_by if o.is_buy else o.limit_px <= crossed_by
                if not hit:
                    break
                qty = self._maker_allowance(o)
                if qty == 0:
                    done.append(o)
                    self._close(o, "reduceOnlyCanceled")
                    continue
                tx = self.new_hash()
                tid = self._new_tid()
                self._book_fill(o, o.limit_px, qty, crossed=False, tid=tid, tx_hash=tx)
                self._trade(o.coin, not o.is_buy, o.limit_px, qty, tx, tid, "0x" + "0" * 40, o.user)
                if o.sz == 0 or o.reduce_only:
                    done.append(o)
                    self._close(o, "filled" if o.sz == 0 else "reduceOnlyCanceled")
                    if o.sz == 0:
                        self._after_parent_fill(o)
            for o in done:
                market.remove(o)

    def _fire_triggers(self, market: Market) -> None:
        mark = market.mid
        fired = []
        for o in market.triggers:
            assert o.trigger is not None
            above = (o.trigger.tpsl == "tp") != o.is_buy
            if (mark >= o.trigger.trigger_px) if above else (mark <= o.trigger.trigger_px):
                fired.append(o)
        for o in fired:
            market.triggers.remove(o)
            self._trigger(market, o)

    def _trigger(self, market: Market, o: Order) -> None:
        assert o.trigger is not None
        o.triggered = True
        o.status = "triggered"
        o.status_ts = self.now_ms
        self._order_event(o)
        acct = self.account(o.user)
        pos = acct.positions.get(o.coin)
        szi = pos.szi if pos is not None else ZERO
        if o.is_position_tpsl:
            o.sz = abs(szi)
        if o.reduce_only or o.is_position_tpsl:
            if szi == 0 or (szi > 0) == o.is_buy:
                self._close(o, "reduceOnlyCanceled")
                return
            o.sz = min(o.sz, abs(szi))
        o.status = "open"
        tx = self.new_hash()
        if o.trigger.is_market:
            o.tif = "Ioc"
            if market.liquidity <= 0 and not (market.asks if o.is_buy else market.bids):
                self._close(o, "canceled")
                return
            filled, _ = self._take(o, market, tx)
            self._close(o, "filled" if o.sz == 0 else "canceled")
            if filled and o.sz == 0:
                self._after_parent_fill(o)
        else:
            o.tif = "Gtc"
            self._take(o, market, tx)
            if o.sz == 0:
                self._close(o, "filled")
            else:
                self._open(o)
                market.rest(o)

    def set_funding_premium(self, coin: str, premium: Decimal) -> None:
        self.markets[coin].premium = premium

    def _funding(self) -> None:
        hour = self.now_ms // HOUR
        if hour <= self.last_funding_hour:
            return
        first = max(self.last_funding_hour + 1, hour - 48)
        self.last_funding_hour = hour
        for h in range(first, hour + 1):
            t = h * HOUR
            for coin, market in self.markets.items():
                rate = acc.hourly_funding_rate(market.premium)
                self.funding_history[coin].append(
                    {"coin": coin, "fundingRate": fmt(rate), "premium": fmt(market.premium), "time": t})
                if len(self.funding_history[coin]) > 24 * 90:
                    del self.funding_history[coin][0]
                for acct in self.accounts.values():
                    pos = acct.positions.get(coin)
                    if pos is None:
                        continue
                    usdc = acc.funding_payment(pos, market.oracle, rate)
                    acc.apply_funding(acct, coin, usdc)
                    delta = {"type": "funding", "coin": coin, "usdc": fmt_usd(usdc), "szi": fmt(pos.szi),
                             "fundingRate": fmt(rate), "nSamples": None}
                    acct.funding.append({"time": t, "hash": "0x" + "0" * 64, "delta": delta})
                    self.events.append(("userEvent", acct.address, {"funding": {
                        "time": t, "coin": coin, "usdc": fmt_usd(usdc), "szi": fmt(pos.szi),
                        "fundingRate": fmt(rate)}}))
        self.dirty = True

    def _liquidations(self) -> None:
        for acct in list(self.accounts.values()):
            if not acct.positions:
                continue
            s = self.summary(acct)
            cross = [v for v in s.views if v.lev.is_cross]
            doomed = [v.coin for v in cross] if cross and s.cross_value < s.cross_maintenance else []
            doomed += [v.coin for v in s.views if not v.lev.is_cross and v.pos.iso_margin + v.upnl < v.maintenance]
            if doomed:
                self._liquidate(acct, doomed, s)

    def _liquidate(self, acct: Account, coins: list[str], s: acc.Summary) -> None:
        """Close the doomed positions at the mark (taker fee); cancel the user's orders; report it."""
        cancelled = self.cancel_all(acct.address, "marginCanceled")
        if cancelled:
            self.events.append(("userEvent", acct.address,
                                {"nonUserCancel": [{"coin": o.coin, "oid": o.oid} for o in cancelled]}))
        tx = self.new_hash()
        ntl = ZERO
        for coin in coins:
            pos = acct.positions[coin]
            mark = self.markets[coin].mid
            ntl += abs(pos.szi) * mark
            order = Order(oid=self._new_oid(), user=acct.address, coin=coin, is_buy=pos.szi < 0, limit_px=mark,
                          sz=abs(pos.szi), orig_sz=abs(pos.szi), reduce_only=True, tif="Ioc", trigger=None,
                          cloid=None, timestamp=self.now_ms)
            liq = {"liquidatedUser": acct.address, "markPx": fmt(mark), "method": "market"}
            self._book_fill(order, mark, order.sz, crossed=True, tid=self._new_tid(), tx_hash=tx, liquidation=liq)
        self.events.append(("userEvent", acct.address, {"liquidation": {
            "lid": self.next_tid, "liquidator": "0x" + "0" * 40, "liquidated_user": acct.address,
            "liquidated_ntl_pos": fmt_usd(ntl), "liquidated_account_value": fmt_usd(s.account_value)}}))

    def schedule_cancel(self, user: str, time_ms: Any) -> str | None:
        acct = self.account(user)
        if time_ms is None:
            acct.scheduled_cancel = None
            return None
        if not isinstance(time_ms, int) or time_ms < self.now_ms + 5_000:
            return "Scheduled cancel time too early, must be at least 5 seconds from now."
        acct.scheduled_cancel = time_ms
        self.dirty = True
        return None

    def _scheduled_cancels(self) -> None:
        for acct in self.accounts.values():
            if acct.scheduled_cancel is not None and self.now_ms >= acct.scheduled_cancel:
                acct.scheduled_cancel = None
                self.cancel_all(acct.address, "scheduledCancel")
                self.dirty = True

    # agents ------------------------------------------------------------------------------------------------
    def approve_agent(self, master: str, agent: str, name: str, valid_until: int) -> str | None:
        if agent == master:
            return "Agent address cannot be the user address."
        if agent in self.accounts:
            return "Agent address already has an account."
        if master in self.agents:
            return "An API wallet cannot approve agents."
        for addr, rec in list(self.agents.items()):
            if rec.master == master and rec.name == name:
                del self.agents[addr]  # Hyperliquid replaces the agent of the same name (or the unnamed one)
        self.agents[agent] = Agent(agent, master, name, valid_until)
        self.account(master)
        self.dirty = True
        return None


def _avg(notional: Decimal, sz: Decimal) -> Decimal:
    from revagent.exchange.sim.numbers import PX_Q

    return (notional / sz).quantize(PX_Q).normalize()
