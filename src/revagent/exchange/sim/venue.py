"""The venue: what users ask for through `/exchange` (orders, cancels, modifies, leverage, margin, scheduled
cancels, agents) and test deposits/withdrawals, on top of the engine and the market's moves."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from revagent.exchange.sim import accounting as acc
from revagent.exchange.sim.engine import (
    E_ASSET,
    E_BAND,
    E_CANCEL,
    E_MARGIN,
    E_MIN,
    E_MODIFY,
    E_OPEN_CAP,
    E_REDUCE,
    E_SIZE,
    E_TICK,
    E_TPSL,
    MIN_NOTIONAL,
    Event,
    VenueOptions,
)
from revagent.exchange.sim.markets import MarketSpec
from revagent.exchange.sim.model import Account, Agent, Leverage, Order, Trigger
from revagent.exchange.sim.moves import MarketMoves
from revagent.exchange.sim.numbers import ZERO, fmt, fmt_usd, parse_wire, valid_price, valid_size

__all__ = ["Event", "Venue", "VenueOptions"]


class Venue(MarketMoves):
    """All exchange state. Methods named after `/exchange` actions take the acting (master) user."""

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
            status = self._suffixed(status, wire)
            if i == 0 and grouping == "normalTpsl" and order is not None:
                parent = order
            statuses.append(status)
        self.dirty = True
        return statuses

    def _suffixed(self, status: Any, wire: Any) -> Any:
        """The live API appends " asset=N" to an order's error text (when the asset is known)."""
        if not self.options.asset_suffix or not isinstance(status, dict) or "error" not in status:
            return status
        asset = wire.get("a") if isinstance(wire, dict) else None
        if isinstance(asset, int) and asset in self.by_asset:
            return {"error": f"{status['error']} asset={asset}"}
        return status

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
        band = self.options.price_band
        if band is not None and market.oracle > 0 and abs(order.limit_px - market.oracle) > band * market.oracle:
            return {"error": E_BAND}, None
        cap = self.options.max_open_orders
        if cap is not None and order.tif != "Ioc" and len(self.open_by_user.get(acct.address, ())) >= cap:
            return {"error": E_OPEN_CAP}, None
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
        # A long's take-profit sits at or above the entry's limit, its stop at or below (a short's mirrored).
        # At the limit itself is accepted: the SDK's examples/basic_tpsl.py groups a TP triggering at the
        # entry's own limit price, and Hyperliquid takes it.
        if parent.is_buy:
            return tpx >= parent.limit_px if child.trigger.tpsl == "tp" else tpx <= parent.limit_px
        return tpx <= parent.limit_px if child.trigger.tpsl == "tp" else tpx >= parent.limit_px

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
            out.append(self._suffixed(status, m.get("order")))
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

    def schedule_cancel(self, user: str, time_ms: Any) -> str | None:
        acct = self.account(user)
        need = self.options.schedule_cancel_volume
        if need > 0 and acct.cum_vlm < need:
            return (f"Cannot set scheduled cancel time until enough volume traded. Required: ${need:.0f}. "
                    f"Traded: ${acct.cum_vlm:.0f}.")
        if time_ms is None:
            acct.scheduled_cancel = None
            return None
        if not isinstance(time_ms, int) or time_ms < self.now_ms + 5_000:
            return "Scheduled cancel time too early, must be at least 5 seconds from now."
        acct.scheduled_cancel = time_ms
        self.dirty = True
        return None

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


