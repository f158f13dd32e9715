"""Issue 14.3 (the live view's part): a moved stop's new order that the websocket announces before its
journal record is known is labelled a stop by its journal role once the record arrives, so the panel
never shows the position without a stop nor the stop as an entry."""

from __future__ import annotations

from decimal import Decimal

from revagent.exchange.types import WsBasicOrder, WsOrderUpdate
from revagent.models import OrderRecord
from tests.sync.test_view import NOW, live_with, recorded_account

D = Decimal


def test_a_moved_stop_announced_by_the_websocket_first_is_a_stop_once_its_record_is_known() -> None:
    state, _, _, _ = recorded_account()
    live = live_with(state, [])
    position = state.asset_positions[0].position
    coin, closing_is_buy = position.coin, position.szi < 0
    cloid = "0x" + "d" * 32
    # batchModify's new order: orderUpdates says "open" (no trigger, no reduce-only flag) before the ack
    update = WsOrderUpdate(order=WsBasicOrder(coin=coin, side="B" if closing_is_buy else "A", limit_px=D(1000),
                                              sz=abs(position.szi), oid=77, timestamp=1, orig_sz=abs(position.szi),
                                              cloid=cloid), status="open", status_timestamp=1)
    assert live.apply_order_updates([update])
    record = OrderRecord(cloid=cloid, action="cmd:move", role="stop", market=coin, is_buy=closing_is_buy,
                         size=abs(position.szi), price=D(1000), trigger_px=D(1100), reduce_only=True,
                         status="resting", oid=5, created_at=NOW, updated_at=NOW)  # the modify's stale oid
    live.apply_ack(record)
    view = live.view("consistent", NOW)
    assert view is not None
    assert [e.oid for e in view.entries] == []  # not an entry
    [trigger] = [t for t in view.triggers if t.oid == 77]
    assert trigger.kind == "stop" and trigger.trigger_px == D(1100)
    held = view.position(coin)
    assert held is not None and held.stop_px == D(1100)
    # a later update of the same order keeps its role
    assert not live.apply_order_updates([update])
    again = live.view("consistent", NOW)
    assert again is not None and [t.kind for t in again.triggers if t.oid == 77] == ["stop"]
