"""The trade book: lifecycles, VWAPs, PnL, flips, holes in the data, funding, plans."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.models import OrderRecord, Side, TradePlan
from revagent.sync.trades import TradeBook, build_trades
from tests.sync.builders import Account, recorded_fills

D = Decimal


def test_open_add_partial_close_and_close_make_one_trade_with_vwaps_and_net_pnl() -> None:
    a = Account()
    fills = [a.trade("BTC", "1", "100"), a.trade("BTC", "1", "110")]
    funding = [a.funding("BTC", "-0.25")]
    fills += [a.trade("BTC", "-0.5", "120"), a.trade("BTC", "-1.5", "90")]
    late = a.funding("BTC", "0.5")  # after the close: no trade was open
    book = build_trades(fills, funding)
    (t,) = book.trades()
    assert t.status == "closed" and t.complete and t.side == "long"
    assert t.entry_vwap == D("105") and t.entry_qty == D(2) and t.size == D(2)
    assert t.exit_vwap == D("97.5") and t.exit_qty == D(2)
    assert t.gross_pnl == D("-15.0") and t.pnl_source == "vwap"
    assert abs(t.gross_pnl - t.closed_pnl) <= D("0.00001") * t.fills
    assert t.fees == sum(f.fee for f in fills)
    assert t.funding == D("-0.25")
    book.add_funding([late, *funding])
    assert book.trades()[0].funding == D("-0.25") and book.unattributed_funding() == D("0.5")
    assert t.net_pnl == t.gross_pnl - t.fees + t.funding
    assert t.holding_s == 4.0


def test_a_flip_closes_one_trade_and_opens_the_next_with_the_rest_and_a_split_fee() -> None:
    a = Account()
    fills = [a.trade("ETH", "2", "10"), a.trade("ETH", "-5", "12"), a.trade("ETH", "3", "11")]
    closed = TradeBook().add_fills(fills[:2])
    assert [t.side for t in closed] == ["long"]
    book = build_trades(fills)
    first, second = book.trades()
    assert (first.side, first.status, first.gross_pnl) == ("long", "closed", D(4))
    assert (second.side, second.status, second.entry_qty, second.entry_vwap) == ("short", "closed", D(3), D(12))
    assert second.gross_pnl == D(3)
    flip_fee = fills[1].fee
    assert first.fees + second.fees == sum(f.fee for f in fills)
    assert second.fees - fills[2].fee == (flip_fee * 3 / 5).quantize(D("1e-12"))


def test_feeding_fills_twice_in_any_order_changes_nothing() -> None:
    a = Account()
    fills = [a.trade("SOL", s, p) for s, p in [("3", "20"), ("-1", "21"), ("2", "19"), ("-4", "22")]]
    once = build_trades(fills).trades()
    book = TradeBook()
    book.add_fills(reversed(fills))
    assert book.add_fills(fills) == []
    assert book.trades() == once and len(book) == 4


def test_an_out_of_order_fill_refolds_its_market_and_reports_the_close_once() -> None:
    a = Account()
    fills = [a.trade("SOL", "3", "20"), a.trade("SOL", "-1", "21"), a.trade("SOL", "-2", "22")]
    book = TradeBook()
    (first,) = book.add_fills([fills[0], fills[2]])  # a hole: the middle fill is missing
    assert first.status == "closed" and not first.complete
    assert book.add_fills([fills[1]]) == []  # the same trade, now whole: not reported twice
    (t,) = book.trades()
    assert t.complete and t.trade_id == first.trade_id and t.pnl_source == "vwap"
    assert book.trades() == build_trades(fills).trades()


def test_a_position_open_before_the_data_is_an_incomplete_trade_without_invented_entry() -> None:
    a = Account()
    fills = [a.trade("ARB", "-10", "1"), a.trade("ARB", "4", "0.9"), a.trade("ARB", "6", "0.8")]
    book = build_trades(fills[1:])
    (t,) = book.trades()
    assert not t.complete and t.entry_vwap is None and "before the recorded fills" in (t.incomplete_reason or "")
    assert t.status == "closed" and t.pnl_source == "exchange"
    assert t.gross_pnl == fills[1].closed_pnl + fills[2].closed_pnl


def test_a_hole_where_the_position_closed_ends_the_trade_as_incomplete() -> None:
    a = Account()
    fills = [a.trade("ARB", "10", "1"), a.trade("ARB", "-10", "1.1"), a.trade("ARB", "5", "1.2")]
    book = build_trades([fills[0], fills[2]])
    first, second = book.trades()
    assert first.status == "closed" and not first.complete and "fills missing" in (first.incomplete_reason or "")
    assert second.complete and second.status == "open" and second.position == D(5)


def test_plans_name_trades_by_the_fills_order_and_give_the_r_multiple() -> None:
    a = Account()
    now = datetime.fromtimestamp((a.time_ms + 1000) / 1000, UTC)
    plan = TradePlan(trade_id="tr_1", market="BTC", side=Side.LONG, stop_px=D(90), risk_usd=D(10), conviction=70,
                     thread_id="th", tool_call_id="call", opened_at=now)
    record = OrderRecord(cloid="0x" + "1" * 32, action="tool:th:call", role="entry", market="BTC", is_buy=True,
                         size=D(1), trade_id="tr_1", created_at=now, updated_at=now)
    fills = [a.trade("BTC", "1", "100", cloid=record.cloid), a.trade("BTC", "-1", "120")]
    (t,) = build_trades(fills, plans=[plan], journal=[record]).trades()
    assert (t.trade_id, t.thread_id, t.tool_call_id) == ("tr_1", "th", "call")
    assert t.plan is not None and t.plan.stop_px == D(90) and t.plan.conviction == 70
    assert t.r_multiple == t.net_pnl / D(10)
    (untracked,) = build_trades(fills).trades()
    assert untracked.trade_id.startswith("x_") and untracked.r_multiple is None


def test_the_500_recorded_fills_total_their_closed_pnl() -> None:
    fills = recorded_fills()
    book = build_trades(reversed(fills))
    assert len(book) == 500
    trades = book.trades()
    total = sum(t.gross_pnl for t in trades)
    assert total == sum(f.closed_pnl for f in fills) == D("-152.586132")
    assert sum(t.fills for t in trades) >= 500
    assert any(not t.complete for t in trades) and any(t.complete for t in trades)
    for t in trades:
        if not t.complete:
            assert t.entry_vwap is None and t.pnl_source == "exchange"
    book.add_fills(fills)
    assert book.trades() == trades


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50).filter(bool), st.integers(900, 1100)), min_size=1, max_size=40))
def test_vwap_pnl_agrees_with_average_cost_closed_pnl(steps: list[tuple[int, int]]) -> None:
    """Any history of adds, partial closes and flips: every complete closed trade's VWAP PnL equals the
    sum of its average-cost closedPnl within rounding, and the book's gross equals the exchange's."""
    a = Account()
    fills = [a.trade("BTC", Decimal(s) / 10, Decimal(p) / 10) for s, p in steps]
    position = sum((Decimal(s) / 10 for s, _ in steps), Decimal(0))
    if position:
        fills.append(a.trade("BTC", -position, "100"))
    book = build_trades(fills)
    trades = book.trades()
    for t in trades:
        assert t.status == "closed" and t.complete
        assert t.pnl_source == "vwap", (t.vwap_pnl, t.closed_pnl)
    assert abs(sum(t.gross_pnl for t in trades) - book.total_closed_pnl()) <= D("0.00001") * len(fills)
    assert sum(t.fees for t in trades) == sum(f.fee for f in fills)


def test_a_journal_record_learnt_after_the_fill_renames_the_trade() -> None:
    a = Account()
    fill = a.trade("BTC", "1", "100", cloid="0x" + "3" * 32)
    book = TradeBook()
    book.add_fills([fill])
    assert book.trades()[0].trade_id.startswith("x_")
    now = datetime.fromtimestamp(fill.time / 1000, UTC)
    record = OrderRecord(cloid=fill.cloid or "", action="tool:a:b", role="entry", market="BTC", is_buy=True,
                         size=D(1), trade_id="tr_late", created_at=now, updated_at=now)
    plan = TradePlan(trade_id="tr_late", market="BTC", side=Side.LONG, stop_px=D(90), risk_usd=D(5), opened_at=now)
    book.set_plans([plan], [record])
    (t,) = book.trades()
    assert t.trade_id == "tr_late" and t.plan is not None and t.plan.risk_usd == D(5)
