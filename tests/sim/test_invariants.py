"""A stateful property test of the venue: random orders, cancels, modifies, price moves and funding hours.

After every step: orders we placed appear in openOrders, frontendOpenOrders and orderStatus exactly while
they are open; accountValue = totalRawUsd + sum(szi * markPx); cash is conserved up to closed PnL, fees and
funding; a reduce-only order never flips a position.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.info import HANDLERS, clearinghouse
from tests.sim.conftest import START_MS

USER = "0x" + "b2" * 20
OTHER = "0x" + "c3" * 20  # a counterparty whose resting orders the user can hit, and the other way round
COINS = ("BTC", "ETH", "SOL")


class VenueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=11))
        self.venue = self.sim.venue
        self.placed: set[int] = set()
        self.start_balance = self.venue.account(USER).balance
        self.venue.account(OTHER)

    def _wire(self, coin: str, is_buy: bool, offset_bps: int, usd: int, tif: str, reduce_only: bool) -> dict[str, Any]:
        market = self.venue.markets[coin]
        spec = market.spec
        px = market.mid * (1 + Decimal(offset_bps) / 10_000)
        px = (px / market.tick).to_integral_value() * market.tick
        step = Decimal(1).scaleb(-spec.sz_decimals)
        sz = max(step, (Decimal(usd) / px / step).to_integral_value() * step)
        return {"a": spec.asset, "b": is_buy, "p": f"{px.normalize():f}", "s": f"{sz.normalize():f}",
                "r": reduce_only, "t": {"limit": {"tif": tif}}}

    def _szi(self, coin: str) -> Decimal:
        pos = self.venue.accounts[USER].positions.get(coin)
        return pos.szi if pos is not None else Decimal(0)

    @rule(coin=st.sampled_from(COINS), is_buy=st.booleans(), offset=st.integers(-300, 300),
          usd=st.integers(12, 3000), tif=st.sampled_from(["Gtc", "Ioc", "Alo"]))
    def place(self, coin: str, is_buy: bool, offset: int, usd: int, tif: str) -> None:
        status = self.venue.place_orders(USER, [self._wire(coin, is_buy, offset, usd, tif, False)], "na", "0x1")[0]
        if isinstance(status, dict) and "resting" in status:
            self.placed.add(status["resting"]["oid"])

    @rule(coin=st.sampled_from(COINS), is_buy=st.booleans(), ticks=st.integers(-2, 2),
          usd=st.integers(12, 2000), tif=st.sampled_from(["Gtc", "Ioc"]))
    def counterparty(self, coin: str, is_buy: bool, ticks: int, usd: int, tif: str) -> None:
        """The other user quotes near the mid (inside the synthetic spread at 0 ticks) or takes."""
        wire = self._wire(coin, is_buy, 0, usd, tif, False)
        market = self.venue.markets[coin]
        wire["p"] = f"{(market.mid + ticks * market.tick).normalize():f}"
        self.venue.place_orders(OTHER, [wire], "na", "0x5")

    @rule(coin=st.sampled_from(COINS), is_buy=st.booleans(), usd=st.integers(12, 2000))
    def take_near(self, coin: str, is_buy: bool, usd: int) -> None:
        """The user crosses the spread by one tick: it hits the other user's quote at the mid when there is one."""
        wire = self._wire(coin, is_buy, 0, usd, "Ioc", False)
        market = self.venue.markets[coin]
        wire["p"] = f"{(market.mid + (1 if is_buy else -1) * market.tick).normalize():f}"
        self.venue.place_orders(USER, [wire], "na", "0x6")

    @rule(coin=st.sampled_from(COINS), usd=st.integers(12, 5000))
    def reduce_only_exit(self, coin: str, usd: int) -> None:
        before = self._szi(coin)
        is_buy = before < 0
        self.venue.place_orders(USER, [self._wire(coin, is_buy, 200 if is_buy else -200, usd, "Ioc", True)],
                                "na", "0x2")
        after = self._szi(coin)
        assert after == 0 or (after > 0) == (before > 0), (before, after)
        assert abs(after) <= abs(before)

    @rule(coin=st.sampled_from(COINS), tpsl=st.sampled_from(["tp", "sl"]), offset=st.integers(10, 400),
          position_wide=st.booleans())
    def protect(self, coin: str, tpsl: str, offset: int, position_wide: bool) -> None:
        szi = self._szi(coin)
        if szi == 0:
            return
        market = self.venue.markets[coin]
        up = (tpsl == "tp") == (szi > 0)  # a long's take-profit sits above the mark, its stop below
        trigger = market.mid * (1 + Decimal(offset if up else -offset) / 10_000)
        trigger = (trigger / market.tick).to_integral_value() * market.tick
        limit = trigger * (Decimal("0.9") if szi > 0 else Decimal("1.1"))
        limit = (limit / market.tick).to_integral_value() * market.tick
        wire = {"a": market.spec.asset, "b": szi < 0, "p": f"{limit.normalize():f}", "s": f"{abs(szi).normalize():f}",
                "r": True, "t": {"trigger": {"isMarket": True, "triggerPx": f"{trigger.normalize():f}",
                                             "tpsl": tpsl}}}
        status = self.venue.place_orders(USER, [wire], "positionTpsl" if position_wide else "na", "0x4")[0]
        if isinstance(status, dict) and "resting" in status:
            self.placed.add(status["resting"]["oid"])

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        open_orders = sorted(self.venue.open_by_user.get(USER, {}))
        if not open_orders:
            return
        oid = data.draw(st.sampled_from(open_orders))
        coin = self.venue.orders[oid].coin
        assert self.venue.cancel(USER, [{"a": self.venue.specs[coin].asset, "o": oid}]) == ["success"]
        assert self.venue.orders[oid].status == "canceled"

    @rule(data=st.data(), offset=st.integers(-300, 300))
    def modify(self, data: st.DataObject, offset: int) -> None:
        open_orders = sorted(self.venue.open_by_user.get(USER, {}))
        if not open_orders:
            return
        oid = data.draw(st.sampled_from(open_orders))
        old = self.venue.orders[oid]
        wire = self._wire(old.coin, old.is_buy, offset, 200, "Gtc", False)
        status = self.venue.modify(USER, [{"oid": oid, "order": wire}], "0x3")[0]
        if isinstance(status, dict) and "resting" in status:
            self.placed.add(status["resting"]["oid"])

    @rule(coin=st.sampled_from(COINS), move_bps=st.integers(-400, 400))
    def move_price(self, coin: str, move_bps: int) -> None:
        market = self.venue.markets[coin]
        self.sim.set_price(coin, market.oracle * (1 + Decimal(move_bps) / 10_000))

    @rule()
    def funding_hour(self) -> None:
        self.sim.advance(3_600_000, steps=3)

    @invariant()
    def open_orders_visible_everywhere(self) -> None:
        open_rows = {o["oid"] for o in HANDLERS["openOrders"](self.venue, {"user": USER})}
        front_rows = {o["oid"] for o in HANDLERS["frontendOpenOrders"](self.venue, {"user": USER})}
        assert open_rows == front_rows
        for oid in self.placed:
            status = HANDLERS["orderStatus"](self.venue, {"user": USER, "oid": oid})["order"]["status"]
            assert (status == "open") == (oid in open_rows), (oid, status)
        assert open_rows <= self.placed

    @invariant()
    def reserved_margin_matches_open_orders(self) -> None:
        expected: dict[str, Decimal] = {}
        for o in self.venue.open_by_user.get(USER, {}).values():
            if not o.reduce_only and (o.trigger is None or o.triggered):
                expected[o.coin] = expected.get(o.coin, Decimal(0)) + o.sz * o.limit_px
        kept = {c: v for c, v in self.venue.reserved_ntl.get(USER, {}).items() if v != 0}
        assert kept == {c: v for c, v in expected.items() if v != 0}

    @invariant()
    def account_value_identity_and_conservation(self) -> None:
        state = clearinghouse(self.venue, USER)
        mids = {c: m.mid for c, m in self.venue.markets.items()}
        ms = state["marginSummary"]
        total = Decimal(ms["totalRawUsd"]) + sum(
            (Decimal(p["position"]["szi"]) * mids[p["position"]["coin"]] for p in state["assetPositions"]),
            Decimal(0))
        assert abs(Decimal(ms["accountValue"]) - total) <= Decimal("0.000002")
        acct = self.venue.accounts[USER]
        event(f"fills>0: {bool(acct.fills)}, positions>0: {bool(acct.positions)}")
        users_traded = any(f["tid"] in {g["tid"] for g in self.venue.accounts[OTHER].fills} for f in acct.fills)
        event(f"user-to-user fill: {users_traded}")
        for who in (USER, OTHER):
            acct = self.venue.accounts[who]
            realized = sum((Decimal(f["closedPnl"]) - Decimal(f["fee"]) for f in acct.fills), Decimal(0))
            funding = sum((Decimal(f["delta"]["usdc"]) for f in acct.funding), Decimal(0))
            assert acct.balance == self.start_balance + realized + funding


TestVenueInvariants = VenueMachine.TestCase
TestVenueInvariants.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
