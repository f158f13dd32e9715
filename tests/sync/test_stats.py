"""Closed-trade statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from revagent.models import OrderRecord, Side, TradePlan
from revagent.sync.stats import trade_stats
from revagent.sync.trades import build_trades
from tests.sync.builders import Account

D = Decimal


def test_win_rate_expectancy_profit_factor_drawdown_and_average_r() -> None:
    a = Account(fee_rate=D(0))
    fills = []
    for px_out in ("110", "95", "90", "130"):  # +10, -5, -10, +30 on one coin each
        fills += [a.trade("BTC", "1", "100", cloid="0x" + "a" * 32 if not fills else None),
                  a.trade("BTC", "-1", px_out)]
    opened = datetime.fromtimestamp(fills[0].time / 1000, UTC)
    plan = TradePlan(trade_id="tr_a", market="BTC", side=Side.LONG, stop_px=D(90), risk_usd=D(10), opened_at=opened)
    record = OrderRecord(cloid="0x" + "a" * 32, action="tool:t:c", role="entry", market="BTC", is_buy=True,
                         size=D(1), trade_id="tr_a", created_at=opened, updated_at=opened)
    trades = build_trades(fills, plans=[plan], journal=[record]).trades()
    stats = trade_stats(trades)
    assert (stats.trades, stats.wins, stats.losses) == (4, 2, 2)
    assert stats.win_rate == D("0.5")
    assert stats.net_pnl == D(25) and stats.expectancy_usd == D("6.25")
    assert stats.profit_factor == D(40) / D(15)
    assert stats.max_drawdown_usd == D(15)  # +10, then -5 and -10
    assert stats.average_r == D(1) and stats.expectancy_r == D(1)  # only the first trade declared its risk


def test_open_and_incomplete_trades_are_counted_apart() -> None:
    a = Account()
    fills = [a.trade("ETH", "-2", "10"), a.trade("ETH", "2", "9"), a.trade("SOL", "1", "20")]
    stats = trade_stats(build_trades(fills[1:]).trades())
    assert stats.trades == 0 and stats.excluded_incomplete == 1 and stats.open_trades == 1
    assert stats.win_rate is None and stats.profit_factor is None and stats.max_drawdown_usd == 0
