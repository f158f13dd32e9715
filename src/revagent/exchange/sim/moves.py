"""What the market does to the venue: prices move, resting orders fill, triggers fire, funding is paid
every hour, under-margined accounts are liquidated, scheduled cancels happen."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from revagent.exchange.sim import accounting as acc
from revagent.exchange.sim.book import Market
from revagent.exchange.sim.engine import HOUR, MAX_FUNDING_PER_USER, Engine
from revagent.exchange.sim.model import Account, Order
from revagent.exchange.sim.numbers import ZERO, fmt, fmt_usd, parse_wire


class MarketMoves(Engine):
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

    def fill_crossed(self, market: Market) -> None:
        """Resting paper orders a new book went through fill (maker), and triggers see the mark."""
        self._fill_resting(market)
        self._fire_triggers(market)

    def _fill_resting(self, market: Market) -> None:
        """Resting orders the synthetic book has moved through fill at their limit price (maker)."""
        best_ask = market.best_synthetic(False)
        best_bid = market.best_synthetic(True)
        for side, crossed_by in ((market.bids, best_ask), (market.asks, best_bid)):
            if crossed_by is None:
                continue
            done = []
            for o in list(side):
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
        self.settle_flat()

    def on_upstream_trades(self, coin: str, trades: list[dict[str, Any]]) -> None:
        """Trades printed upstream: a resting paper order the trade price went through (a bid above it, an
        ask below it) fills at its limit as a maker, up to the trade's size (best price first, then oldest).
        A print exactly at the limit does not fill: the queue position ahead of a paper order is unknown.
        The prints themselves are republished on this venue's `trades` channel."""
        market = self.markets.get(coin)
        if market is None:
            return
        for t in trades:
            px, sz = parse_wire(t.get("px")), parse_wire(t.get("sz"))
            if px is None or sz is None or sz <= 0:
                continue
            self.events.append(("trade", coin, t))
            for side in (market.bids, market.asks):
                left = sz
                done = []
                for o in side:
                    if left <= 0 or not (o.limit_px > px if o.is_buy else o.limit_px < px):
                        break
                    qty = min(left, self._maker_allowance(o))
                    if qty == 0:
                        done.append(o)
                        self._close(o, "reduceOnlyCanceled")
                        continue
                    tx, tid = self.new_hash(), self._new_tid()
                    self._book_fill(o, o.limit_px, qty, crossed=False, tid=tid, tx_hash=tx)
                    left -= qty
                    if o.sz == 0:
                        done.append(o)
                        self._close(o, "filled")
                        self._after_parent_fill(o)
                for o in done:
                    market.remove(o)
        self.settle_flat()
        self.dirty = True

    def _fire_triggers(self, market: Market) -> None:
        mark = market.mid
        fired = []
        for o in market.triggers:
            assert o.trigger is not None
            above = (o.trigger.tpsl == "tp") != o.is_buy
            if (mark >= o.trigger.trigger_px) if above else (mark <= o.trigger.trigger_px):
                fired.append(o)
        for o in fired:
            if o not in market.triggers or o.status != "open":
                continue  # cancelled meanwhile: another trigger's fills closed its position
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
            funding_hash = self.new_hash()
            for coin, market in self.markets.items():
                rate = market.upstream_funding if market.upstream_funding is not None else (
                    acc.hourly_funding_rate(market.premium))
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
                             "fundingRate": fmt(rate), "nSamples": 1}  # one hourly payment
                    acct.funding.append({"time": t, "hash": funding_hash, "delta": delta})
                    if len(acct.funding) > MAX_FUNDING_PER_USER:
                        del acct.funding[: len(acct.funding) - MAX_FUNDING_PER_USER]
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
        self.settle_flat()
        self.events.append(("userEvent", acct.address, {"liquidation": {
            "lid": self.next_tid, "liquidator": "0x" + "0" * 40, "liquidated_user": acct.address,
            "liquidated_ntl_pos": fmt_usd(ntl), "liquidated_account_value": fmt_usd(s.account_value)}}))

    def _scheduled_cancels(self) -> None:
        for acct in self.accounts.values():
            if acct.scheduled_cancel is not None and self.now_ms >= acct.scheduled_cancel:
                acct.scheduled_cancel = None
                self.cancel_all(acct.address, "scheduledCancel")
                self.dirty = True

