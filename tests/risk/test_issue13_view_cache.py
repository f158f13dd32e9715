"""Issue 13 item 7: a copy of an account view never carries the original's position index."""

from __future__ import annotations

from revagent.risk import ClosePosition, RiskSettings, RiskState, evaluate
from tests.risk.builders import NOW, account, position


def test_a_copied_view_without_positions_has_no_position_to_close() -> None:
    view = account(positions=(position("BTC", "0.01", "60000", stop="59000"),))
    assert view.position("BTC") is not None  # the index is built on the original
    flat = view.model_copy(update={"positions": ()})
    assert flat.position("BTC") is None
    assert flat.positions_by_market == {}
    v = evaluate(ClosePosition(market="BTC", origin="human"), flat, RiskSettings(), RiskState(), NOW)
    assert not v.approved and v.codes == ["no_position"]


def test_a_copied_view_with_other_positions_indexes_them() -> None:
    view = account(positions=(position("BTC", "0.01", "60000", stop="59000"),))
    assert view.position("BTC") is not None
    moved = view.model_copy(update={"positions": (position("ETH", "1", "3000", stop="2900"),)})
    assert moved.position("BTC") is None
    eth = moved.position("ETH")
    assert eth is not None and eth.size == 1
