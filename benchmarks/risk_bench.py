"""Risk engine latency: `evaluate` p50/p99 on an account with 50 positions and 200 resting orders.

Aim: p99 under 100 microseconds for an OpenTrade (the heaviest verdict: it needs the open risk of
every position and resting entry, and estimates the cross liquidation price). The per-market sums
are computed once per validated AccountView; "cold" figures include computing them. Also measured: a
reduce-only close, a stop loosening, `update_state` and `risk_usage`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, summary_us, write_results
from revagent.risk import (
    AccountView,
    BookLevel,
    ClosePosition,
    MarketRules,
    ModifyStop,
    OpenTrade,
    PositionView,
    RestingEntry,
    RiskSettings,
    RiskState,
    TriggerOrder,
    evaluate,
    risk_usage,
    update_state,
)
from revagent.risk.account import _aggregate, share_aggregates

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
D = Decimal


def build_account(n_positions: int = 50, n_orders: int = 200) -> AccountView:
    """50 markets with a long or short each (stops in place), 100 resting entries and 100 triggers."""
    markets: dict[str, MarketRules] = {}
    positions: list[PositionView] = []
    entries: list[RestingEntry] = []
    triggers: list[TriggerOrder] = []
    for i in range(n_positions + 1):
        name = f"M{i:02d}"
        mark = D(100 + i * 37)
        markets[name] = MarketRules(
            name=name, sz_decimals=2, max_leverage=20, mark_px=mark, mid_px=mark, price_time=NOW
        )
        if i == n_positions:
            break  # one market left flat for the new trade
        direction = 1 if i % 2 == 0 else -1
        stop = mark * (1 - direction * D("0.02"))
        positions.append(
            PositionView(
                market=name,
                size=D("0.5") * direction,
                entry_px=mark,
                mark_px=mark,
                stop_px=stop,
                leverage=D(3),
            )
        )
    for j in range(n_orders // 2):
        name = f"M{j % n_positions:02d}"
        mark = markets[name].mark_px
        entries.append(
            RestingEntry(
                market=name,
                oid=1000 + j,
                side="long",
                size=D("0.1"),
                limit_px=mark * D("0.97"),
                risk_usd=D("0.01"),
            )
        )
        triggers.append(
            TriggerOrder(
                market=name,
                oid=5000 + j,
                side="sell",
                size=D("0.5"),
                trigger_px=mark * D("0.98"),
                kind="stop",
            )
        )
    return AccountView(
        equity=D(1_000_000),
        available_margin=D(900_000),
        positions=tuple(positions),
        entries=tuple(entries),
        triggers=tuple(triggers),
        markets=markets,
    )


def measure(fn: Callable[[int], Any], iterations: int) -> list[float]:
    """Time `fn(i)` for i in range(iterations), after a short warm-up; seconds per call."""
    for i in range(min(200, iterations)):
        fn(i)
    samples = []
    clock = time.perf_counter
    for i in range(iterations):
        t0 = clock()
        fn(i)
        samples.append(clock() - t0)
    return samples


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "risk benchmark", argv)
    iterations = 500 if args.quick else 20_000
    settings = RiskSettings(max_portfolio_risk_usd=D(100_000), max_risk_per_trade_usd=D(25))
    account = build_account()
    state = RiskState(peak_equity=D(1_000_000), equity=D(1_000_000), updated_at=NOW, penalty=D("0.1"))
    open_trade = OpenTrade(
        market="M50", side="long", stop_px=D(1900), risk_usd=D(20), target_px=D(2100), conviction=60
    )
    verdict = evaluate(open_trade, account, settings, state, NOW)
    assert verdict.approved, verdict.explain()
    close = ClosePosition(market="M10")
    loosen = ModifyStop(market="M10", stop_px=D(440))
    assert evaluate(loosen, account, settings, state, NOW).approved

    # "warm" (the design point): a validated view; its per-market risk sums were computed once when
    # it was built (AccountView's validator primes them), so evaluate is O(1) in positions and orders.
    # "cold": a fresh, never-validated copy per call (model_copy skips validators), so the O(n) sums
    # run inside the timing: the worst case, for a caller that builds views with model_construct/copy.
    views = [account.model_copy() for _ in range(iterations)]
    wire = account.model_dump()
    figures: dict[str, Any] = {
        "positions": len(account.positions),
        "resting_orders": len(account.entries) + len(account.triggers),
        "iterations": iterations,
        "evaluate_open_cold": summary_us(
            measure(lambda i: evaluate(open_trade, views[i], settings, state, NOW), iterations)
        ),
        "evaluate_open_warm": summary_us(
            measure(lambda i: evaluate(open_trade, account, settings, state, NOW), iterations)
        ),
        "evaluate_close": summary_us(
            measure(lambda i: evaluate(close, account, settings, state, NOW), iterations)
        ),
        "evaluate_loosen_stop_cold": summary_us(
            measure(lambda i: evaluate(loosen, views[i], settings, state, NOW), iterations)
        ),
        "update_state": summary_us(
            measure(
                lambda i: update_state(state, D(990_000), NOW + timedelta(seconds=5), settings), iterations
            )
        ),
        "aggregate_sums": summary_us(measure(lambda i: _aggregate(account), iterations // 4)),
        "account_view_validate": summary_us(
            measure(lambda i: AccountView.model_validate(wire), max(20, iterations // 40))
        ),
        "risk_usage_cold": summary_us(
            measure(lambda i: risk_usage(views[i], settings, state, NOW), iterations // 4)
        ),
    }
    # the gateway's market entry (issue 18.6): the view copied with the market's book, then evaluated;
    # since the copy shares the view's sums (share_aggregates) it is warm; before, it was cold
    rules = account.markets["M50"]
    booked = rules.model_copy(update={"bids": (BookLevel(px=D(1999), sz=D(50)),),
                                      "asks": (BookLevel(px=D(2001), sz=D(50)),)})
    market_open = open_trade.model_copy(update={"entry_px": None})

    def with_book(i: int, share: bool) -> Any:
        copy = account.model_copy(update={"markets": {**account.markets, "M50": booked}})
        return evaluate(market_open, share_aggregates(account, copy) if share else copy, settings, state, NOW)

    figures["evaluate_open_book_copy_cold"] = summary_us(measure(lambda i: with_book(i, False), iterations))
    figures["evaluate_open_book_copy_shared"] = summary_us(measure(lambda i: with_book(i, True), iterations))
    figures["cold_path"] = {
        "aggregate_sums_share_of_cold_p50": round(figures["aggregate_sums"]["p50_us"]
                                                  / figures["evaluate_open_cold"]["p50_us"], 3),
        "book_copy_shared_over_cold_p50": round(figures["evaluate_open_book_copy_shared"]["p50_us"]
                                                / figures["evaluate_open_book_copy_cold"]["p50_us"], 3),
    }
    figures["load_avg_1m"] = round(os.getloadavg()[0], 2)
    figures["target_p99_us"] = 100
    figures["evaluate_open_warm_meets_target"] = figures["evaluate_open_warm"]["p99_us"] < 100
    figures["evaluate_open_cold_meets_target"] = figures["evaluate_open_cold"]["p99_us"] < 100
    write_results("risk_bench", figures, quick=args.quick)


if __name__ == "__main__":
    main()
