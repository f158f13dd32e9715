"""Closed-trade statistics. Pure.

Computed over closed, complete trades (an incomplete trade's figures are partial: it is counted in
`excluded_incomplete`, never in the ratios). Money in USD (net PnL: after fees and funding).

- win rate: share of trades with net PnL > 0;
- average R: mean R multiple over the trades that declared a risk (None when none did);
- expectancy: mean net PnL per trade (USD), and `expectancy_r` = average R;
- profit factor: gross wins / |gross losses| (None without a losing trade);
- max drawdown: the largest fall of cumulative net PnL from its running peak, in close-time order
  (USD, >= 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from revagent.sync.trades import Trade

_ZERO = Decimal(0)


class TradeStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    average_r: Decimal | None
    expectancy_usd: Decimal | None
    expectancy_r: Decimal | None
    profit_factor: Decimal | None
    max_drawdown_usd: Decimal
    net_pnl: Decimal
    gross_pnl: Decimal
    fees: Decimal
    funding: Decimal
    open_trades: int
    excluded_incomplete: int


def trade_stats(trades: Iterable[Trade]) -> TradeStats:
    """Statistics of `trades` (any order; open and incomplete ones are counted apart)."""
    all_trades = list(trades)
    closed = sorted((t for t in all_trades if t.status == "closed" and t.complete),
                    key=lambda t: (t.closed_at, t.trade_id))
    n = len(closed)
    wins = [t for t in closed if t.net_pnl > 0]
    losses = [t for t in closed if t.net_pnl < 0]
    won = sum((t.net_pnl for t in wins), _ZERO)
    lost = -sum((t.net_pnl for t in losses), _ZERO)
    rs = [t.r_multiple for t in closed if t.r_multiple is not None]
    net = sum((t.net_pnl for t in closed), _ZERO)
    peak = equity = drawdown = _ZERO
    for t in closed:
        equity += t.net_pnl
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    average_r = sum(rs, _ZERO) / len(rs) if rs else None
    return TradeStats(
        trades=n, wins=len(wins), losses=len(losses),
        win_rate=Decimal(len(wins)) / n if n else None,
        average_r=average_r,
        expectancy_usd=net / n if n else None,
        expectancy_r=average_r,
        profit_factor=won / lost if lost > 0 else None,
        max_drawdown_usd=drawdown,
        net_pnl=net,
        gross_pnl=sum((t.gross_pnl for t in closed), _ZERO),
        fees=sum((t.fees for t in closed), _ZERO),
        funding=sum((t.funding for t in closed), _ZERO),
        open_trades=sum(1 for t in all_trades if t.status == "open"),
        excluded_incomplete=sum(1 for t in all_trades if t.status == "closed" and not t.complete),
    )
