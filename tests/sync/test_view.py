"""The live account (pure): fills move positions, order updates and acks show at once, a snapshot wins and
reports drift, optimistic orders are confirmed or rolled back. And paging by time windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from revagent.exchange.types import (
    CLEARINGHOUSE_STATE,
    FRONTEND_OPEN_ORDERS,
    ClearinghouseState,
    FrontendOpenOrder,
    WsBasicOrder,
    WsOrderUpdate,
)
from revagent.models import OrderRecord
from revagent.sync.reconcile import page_by_time
from revagent.sync.view import LiveAccount, account_doc, diff_docs
from tests.sync.builders import FIXTURES, Account

D = Decimal
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _recorded(name: str) -> object:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def recorded_account() -> tuple[ClearinghouseState, list[FrontendOpenOrder], None, None]:
    state = CLEARINGHOUSE_STATE.validate_python(_recorded("user_state"))
    orders = FRONTEND_OPEN_ORDERS.validate_python(_recorded("frontend_open_orders"))
    return state, orders, None, None


def live_with(state: ClearinghouseState, orders: list[FrontendOpenOrder]) -> LiveAccount:
    from revagent.exchange.types import META

    meta = META.validate_python(_recorded("meta"))
    live = LiveAccount()
    mids = {k: D(v) for k, v in _recorded("all_mids").items()}  # type: ignore[attr-defined]
    live.apply_snapshot(state, orders, meta, None, mids, NOW)
    return live


def test_the_recorded_account_projects_and_a_fill_moves_its_position_at_once() -> None:
    state, orders, _, _ = recorded_account()
    live = live_with(state.model_copy(update={"time": 1_000}), orders)
    view = live.view("consistent", NOW)
    assert view is not None and len(view.positions) == len(state.positions)
    coin = state.positions[0].coin
    szi = state.positions[0].szi
    a = Account(time_ms=2_000, positions={coin: szi}, entry={coin: state.positions[0].entry_px or D(1)})
    fill = a.trade(coin, -szi, str(state.positions[0].entry_px))
    assert live.apply_fills([fill]) == [coin]
    after = live.view("consistent", NOW)
    assert after is not None and after.position(coin) is None
    older = fill.model_copy(update={"time": 500, "tid": 99})
    assert live.apply_fills([older]) == []  # older than the snapshot: already in it


def test_order_updates_add_and_remove_and_a_snapshot_reports_drift() -> None:
    state, _, _, _ = recorded_account()
    live = live_with(state, [])
    update = WsOrderUpdate(order=WsBasicOrder(coin="ETH", side="B", limit_px=D(1000), sz=D(1), oid=7, timestamp=1,
                                              orig_sz=D(1)), status="open", status_timestamp=1)
    assert live.apply_order_updates([update]) and 7 in live.orders
    assert not live.apply_order_updates([update])  # the same again changes nothing
    gone = update.model_copy(update={"status": "canceled"})
    assert live.apply_order_updates([gone]) and 7 not in live.orders
    flat = state.model_copy(update={"asset_positions": state.asset_positions[1:]})
    outcome = live.apply_snapshot(flat, [], live.meta, None, None, NOW)  # type: ignore[arg-type]
    vanished = state.asset_positions[0].position.coin
    assert [(d.kind, d.market, d.matters) for d in outcome.drift] == [("position_vanished", vanished, True)]
    assert "positions" in outcome.changed


def test_an_acknowledged_order_shows_at_once_and_is_rolled_back_if_the_snapshot_lacks_it() -> None:
    state, _, _, _ = recorded_account()
    live = live_with(state, [])
    record = OrderRecord(cloid="0x" + "c" * 32, action="cmd:x", role="stop", market="BTC", is_buy=False, size=D(1),
                         price=D(20000), trigger_px=D(25000), reduce_only=True, status="resting", oid=42,
                         created_at=NOW, updated_at=NOW)
    assert live.apply_ack(record)
    view = live.view("consistent", NOW)
    assert view is not None and [t.oid for t in view.triggers] == [42] and view.triggers[0].kind == "stop"
    outcome = live.apply_snapshot(state, [], live.meta, None, None, NOW)  # type: ignore[arg-type]
    assert outcome.rolled_back == [42] and outcome.drift == []  # an optimistic order is not drift
    confirmed = FrontendOpenOrder(coin="BTC", limit_px=D(20000), oid=43, side="A", sz=D(1), timestamp=1,
                                  is_trigger=True, order_type="Stop Market", trigger_px=D(25000), reduce_only=True)
    live.apply_ack(record.model_copy(update={"oid": 43}))
    assert live.apply_snapshot(state, [confirmed], live.meta, None, None, NOW).confirmed == [43]  # type: ignore[arg-type]


def test_diff_docs_names_a_vanished_stop_as_mattering_while_its_position_is_held() -> None:
    state, _, _, _ = recorded_account()
    coin = state.positions[0].coin
    stop = FrontendOpenOrder(coin=coin, limit_px=D(1), oid=1, side="A", sz=D(1), timestamp=1, is_trigger=True,
                             order_type="Stop Market", trigger_px=D(1), reduce_only=True)
    (drift,) = diff_docs(account_doc(state, [stop]), account_doc(state, []))
    assert drift.kind == "order_vanished" and drift.matters and "stop at 1" in drift.detail
    flat = state.model_copy(update={"asset_positions": []})
    (gone_with_its_position,) = [d for d in diff_docs(account_doc(state, [stop]), account_doc(flat, []))
                                 if d.kind == "order_vanished"]
    assert not gone_with_its_position.matters


async def test_paging_by_time_gets_everything_whichever_end_a_full_page_returns() -> None:
    items = [(t, i) for i, t in enumerate(sorted([5] * 3 + list(range(0, 100, 3)) + [50] * 4))]

    def make(newest_first: bool, calls: list[tuple[int, int | None]]):  # type: ignore[no-untyped-def]
        async def fetch(lo: int, hi: int | None) -> list[tuple[int, int]]:
            calls.append((lo, hi))
            found = [x for x in items if lo <= x[0] <= (hi if hi is not None else 10**9)]
            found = sorted(found, reverse=newest_first)
            return found[:7]
        return fetch

    for newest_first in (False, True):
        calls: list[tuple[int, int | None]] = []
        got, requests = await page_by_time(make(newest_first, calls), 0, 200, 7, lambda x: x[0])
        assert set(got) == set(items) and requests == len(calls) and requests < 20
