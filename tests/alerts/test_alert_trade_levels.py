"""Trade-management levels and stop-loss verification (with a recorded Hyperliquid response)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.alerts.levels import EntryKey, price_book
from revagent.alerts.trade_alerts import (
    ManagedTrade,
    StopStatus,
    TriggerOrder,
    check_trade_stop,
    stop_check,
    trade_levels,
    trigger_orders_from_frontend,
    trigger_orders_from_open_orders,
)
from revagent.exchange.types import FrontendOpenOrder
from revagent.models import LegDirection, Side
from revagent.store.alert_events import AlertKind

FIXTURES = Path(__file__).parent / "fixtures"
D = Decimal


def by_kind(trade: ManagedTrade, **kw: Decimal) -> dict[AlertKind, tuple[LegDirection, Decimal, str]]:
    return {tl.kind: (tl.direction, tl.level, tl.book) for tl in trade_levels(trade, **kw)}


def test_long_levels() -> None:
    trade = ManagedTrade(
        "tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("2"), target=D("130"), liquidation_px=D("60")
    )
    assert by_kind(trade) == {
        AlertKind.EARLY_WARNING: (LegDirection.BELOW, D("95"), "BTC"),
        AlertKind.PROFIT_TARGET: (LegDirection.ABOVE, D("130"), "BTC"),
        AlertKind.LIQUIDATION_WARNING: (LegDirection.BELOW, D("66"), "BTC:mark"),
    }
    assert by_kind(trade, early_warning_fraction=D("0.25"))[AlertKind.EARLY_WARNING][1] == D("97.5")


def test_short_levels_mirror() -> None:
    trade = ManagedTrade(
        "tr_2",
        "ETH",
        Side.SHORT,
        entry=D("2000"),
        stop=D("2100"),
        size=D("1"),
        target=D("1800"),
        liquidation_px=D("2500"),
    )
    assert by_kind(trade, liquidation_warning_pct=D("5")) == {
        AlertKind.EARLY_WARNING: (LegDirection.ABOVE, D("2050"), "ETH"),
        AlertKind.PROFIT_TARGET: (LegDirection.BELOW, D("1800"), "ETH"),
        AlertKind.LIQUIDATION_WARNING: (LegDirection.ABOVE, D("2375"), "ETH:mark"),
    }


def test_each_level_carries_its_first_action_and_a_generation_key() -> None:
    trade = ManagedTrade("tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("1"), target=D("120"))
    levels = trade_levels(trade)
    assert all(tl.first_action for tl in levels)
    assert {tl.key for tl in levels} == {EntryKey("tr_1", "early_warning"), EntryKey("tr_1", "profit_target")}
    moved = ManagedTrade(
        "tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("95"), size=D("1"), target=D("120"), generation=2
    )
    new = trade_levels(moved)
    assert {tl.trigger_key for tl in new} == {"tr_1#early_warning:g2", "tr_1#profit_target:g2"}
    assert not {tl.trigger_key for tl in new} & {tl.trigger_key for tl in levels}
    assert by_kind(moved)[AlertKind.EARLY_WARNING][1] == D("97.5")


def test_no_early_warning_once_the_stop_protects_the_entry() -> None:
    trade = ManagedTrade("tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("100"), size=D("1"))
    assert trade_levels(trade) == []
    trailing = ManagedTrade("tr_1", "BTC", Side.SHORT, entry=D("100"), stop=D("95"), size=D("1"), target=D("80"))
    assert set(by_kind(trailing)) == {AlertKind.PROFIT_TARGET}


def test_invalid_trades_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be above the entry"):
        ManagedTrade("tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("1"), target=D("99"))
    with pytest.raises(ValueError, match="size must be positive"):
        ManagedTrade("tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("0"))
    trade = ManagedTrade("tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("1"))
    with pytest.raises(ValueError, match="early_warning_fraction"):
        trade_levels(trade, early_warning_fraction=D("1"))
    with pytest.raises(ValueError, match="liquidation_warning_pct"):
        trade_levels(trade, liquidation_warning_pct=D("0"))
    assert price_book("BTC", "mark") == "BTC:mark"
    with pytest.raises(ValueError):
        price_book("BTC:mark")


# --- stop-loss verification --------------------------------------------------------------------


def recorded_orders() -> list[TriggerOrder]:
    doc = json.loads((FIXTURES / "frontend_open_orders.json").read_text())
    return trigger_orders_from_frontend(doc["response"])


def test_parses_recorded_frontend_open_orders() -> None:
    orders = {o.oid: o for o in recorded_orders()}
    assert set(orders) == {3184595906, 3184595907}  # the limit parent is skipped, children listed once
    stop = orders[3184595906]
    assert stop.is_stop
    assert not stop.is_buy
    assert stop.reduce_only
    assert stop.trigger_px == D("9.995")
    assert stop.size == D("12.5")
    assert not orders[3184595907].is_stop  # the take-profit
    doc = json.loads((FIXTURES / "frontend_open_orders.json").read_text())
    typed = [FrontendOpenOrder.model_validate(o) for o in doc["response"]]
    assert trigger_orders_from_open_orders(typed) == recorded_orders()


def test_stop_check_against_the_recorded_stop() -> None:
    orders = recorded_orders()
    ok = stop_check(D("9.995"), orders, market="INJ", side=Side.LONG, size=D("12.5"))
    assert ok.ok
    assert ok.oids == (3184595906,)
    wrong_level = stop_check(D("9.90"), orders, market="INJ", side=Side.LONG, size=D("12.5"))
    assert wrong_level.status is StopStatus.WRONG_LEVEL
    assert wrong_level.found_px == D("9.995")
    assert stop_check(D("9.90"), orders, market="INJ", side=Side.LONG, size=D("12.5"), px_tolerance=D("0.1")).ok
    wrong_size = stop_check(D("9.995"), orders, market="INJ", side=Side.LONG, size=D("20"))
    assert wrong_size.status is StopStatus.WRONG_SIZE
    assert wrong_size.found_size == D("12.5")
    # a short needs a buy stop: the recorded sell stop does not protect it
    assert stop_check(D("9.995"), orders, market="INJ", side=Side.SHORT, size=D("1")).status is StopStatus.MISSING
    assert stop_check(D("9.995"), orders, market="BTC", side=Side.LONG, size=D("1")).status is StopStatus.MISSING


def test_stop_check_sums_partial_stops_and_honours_position_tpsl() -> None:
    def o(oid: int, px: str, sz: str, *, reduce_only: bool = True, whole: bool = False) -> TriggerOrder:
        return TriggerOrder(oid, "BTC", True, D(px), D(sz), reduce_only, True, whole)

    trade = ManagedTrade("tr_9", "BTC", Side.SHORT, entry=D("100"), stop=D("110"), size=D("3"))
    assert check_trade_stop(trade, [o(1, "110", "1"), o(2, "110", "2")]).ok
    assert check_trade_stop(trade, [o(1, "110", "0", whole=True)]).ok
    not_reduce_only = check_trade_stop(trade, [o(1, "110", "3", reduce_only=False)])
    assert not_reduce_only.status is StopStatus.MISSING
