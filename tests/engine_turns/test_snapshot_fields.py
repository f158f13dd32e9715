"""Issue 16 item 3: the snapshot carries what a decision needs, within 1,500 tokens.

A session's sources (3 positions, 6 watchers with two legs each, 2 closed trades in the ledger's
trade book, a websocket outage reported on the bus) go through `SnapshotSource` and the real
`LinkHealth`; the text shows every field the issue lists, and its size at the fake Messages
server's count (3 characters per token) stays under 1,500 tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal

from revagent.bus import Bus
from revagent.engine.links import LinkHealth
from revagent.engine.prompt import turn_context
from revagent.engine.snapshot import MarketConditions, SnapshotSource, build_snapshot
from revagent.events import ConnectionChanged
from revagent.models import LegDirection, LegStatus, ProposedSetup, Side, TradePlan, WatcherLeg, WatcherPair
from revagent.risk import AccountView, MarketRules, PositionView, RiskSettings, RiskState, TriggerOrder
from revagent.sync.trades import Trade
from tests.engine_turns.conftest import NOW, Clock

D = Decimal
CHARS_PER_TOKEN = 3  # tests/fakes/anthropic_server.py counts 3 characters per token


def rules(name: str, mark: str, age_s: float = 1.0) -> MarketRules:
    return MarketRules(name=name, sz_decimals=3, max_leverage=20, mark_px=D(mark), mid_px=D(mark),
                       price_time=NOW - timedelta(seconds=age_s))


def closed_trade(trade_id: str, market: str, net: str, r: str, hours_ago: float) -> Trade:
    closed = NOW - timedelta(hours=hours_ago)
    return Trade(trade_id=trade_id, market=market, side="long", status="closed", complete=True,
                 opened_at=closed - timedelta(hours=3), closed_at=closed, entry_qty=D(1), entry_vwap=D(100),
                 exit_qty=D(1), exit_vwap=D(100) + D(net), size=D(1), position=D(0), fees=D("0.1"), funding=D(0),
                 closed_pnl=D(net), gross_pnl=D(net), net_pnl=D(net), pnl_source="vwap", risk_usd=D(20),
                 r_multiple=D(r), holding_s=10800.0, fills=2)


def open_trade(trade_id: str, market: str, funding: str) -> Trade:
    return Trade(trade_id=trade_id, market=market, side="long", status="open", complete=True,
                 opened_at=NOW - timedelta(hours=5), entry_qty=D(1), entry_vwap=D(100), exit_qty=D(0),
                 exit_vwap=None, size=D(1), position=D(1), fees=D("0.1"), funding=D(funding), closed_pnl=D(0),
                 gross_pnl=D(0), net_pnl=D(0), pnl_source="vwap", fills=1)


def leg(level: str, direction: LegDirection, thesis: str, side: Side, stop: str, target: str) -> WatcherLeg:
    return WatcherLeg(level=D(level), direction=direction, thesis=thesis,
                      setup=ProposedSetup(side=side, entry=D(level), stop=D(stop), target=D(target), conviction=60,
                                          risk_usd=D(15)))


def session_sources(bus: Bus) -> SnapshotSource:
    positions = (
        PositionView(market="BTC", size=D("0.030"), entry_px=D(60000), mark_px=D(60600), stop_px=D(59400),
                     leverage=D(5), liquidation_px=D(48500), opened_at=NOW - timedelta(hours=5)),
        PositionView(market="ETH", size=D("-1.5"), entry_px=D(3000), mark_px=D(3030), stop_px=D(3060),
                     leverage=D(3), opened_at=NOW - timedelta(minutes=50)),
        PositionView(market="SOL", size=D("20"), entry_px=D(150), mark_px=D(149), stop_px=D(147),
                     leverage=D(2), opened_at=NOW - timedelta(days=2, hours=3)),
    )
    triggers = tuple(TriggerOrder(market=p.market, side="sell" if p.size > 0 else "buy", size=abs(p.size),
                                  trigger_px=p.stop_px or D(1), kind="stop", oid=10 + i)
                     for i, p in enumerate(positions))
    markets = {"BTC": rules("BTC", "60600", 2.5), "ETH": rules("ETH", "3030", 1.2), "SOL": rules("SOL", "149", 48.0)}
    account = AccountView(equity=D("9950"), available_margin=D("8000"), positions=positions, triggers=triggers,
                          markets=markets, sync_phase="checking", sync_reason="websocket down: ping timeout",
                          as_of=NOW - timedelta(seconds=42))
    plans = [
        TradePlan(trade_id="tr_btc", market="BTC", side=Side.LONG, stop_px=D(59400), target_px=D(63000),
                  conviction=70, risk_usd=D(18), status="open", opened_at=NOW - timedelta(hours=5),
                  rationale="reclaim of 60k"),
        TradePlan(trade_id="tr_eth", market="ETH", side=Side.SHORT, stop_px=D(3060), target_px=D(2850),
                  conviction=55, risk_usd=D(90), status="open", opened_at=NOW - timedelta(minutes=50)),
        TradePlan(trade_id="tr_sol", market="SOL", side=Side.LONG, stop_px=D(147), target_px=D(160),
                  conviction=60, risk_usd=D(60), status="open", opened_at=NOW - timedelta(days=2, hours=3)),
    ]
    watchers = [
        WatcherPair(id=f"w_{i}", market=m, created_at=NOW - timedelta(hours=i),
                    upper=leg(str(up), LegDirection.ABOVE, f"{m} breakout over range high", Side.LONG,
                              f"{up * 0.98:.6g}", f"{up * 1.06:.6g}"),
                    lower=leg(str(lo), LegDirection.BELOW, f"{m} loses support", Side.SHORT,
                              f"{lo * 1.02:.6g}", f"{lo * 0.94:.6g}"))
        for i, (m, up, lo) in enumerate([("AVAX", 40, 30), ("DOGE", 0.2, 0.15), ("LINK", 20, 15), ("ARB", 1.2, 0.9),
                                         ("OP", 2.5, 1.8), ("BTC", 62000, 58000)])
    ]
    # a consumed pair (no armed leg) is not shown
    watchers.append(WatcherPair(id="w_done", market="XRP", created_at=NOW,
                                upper=WatcherLeg(level=D(1), direction=LegDirection.ABOVE, status=LegStatus.FIRED)))
    mids = {"BTC": "60600", "ETH": "3030", "SOL": "149", "AVAX": "35", "DOGE": "0.17", "LINK": "17.5", "ARB": "1.05",
            "OP": "2.1", "XRP": "1.02"}
    conditions = {m: MarketConditions(m, D(px), D(px), D("1.25"), D("0.0000125"), D("1000")) for m, px in mids.items()}
    atrs = {"BTC": D(450), "AVAX": D("0.6"), "DOGE": D("0.004"), "LINK": D("0.3"), "ARB": D("0.02"), "OP": D("0.05")}
    ledger = [closed_trade("tr_a", "AVAX", "40", "2", 30), closed_trade("tr_b", "LINK", "-20", "-1", 2),
              open_trade("tr_btc", "BTC", "0.84")]

    async def settings() -> RiskSettings:
        return RiskSettings()

    async def state() -> RiskState:
        return RiskState(day=NOW.date(), day_start_equity=D("10100"), losing_streak=1)

    async def read_account() -> AccountView:
        return account

    async def read_plans() -> list[TradePlan]:
        return plans

    async def read_watchers() -> list[WatcherPair]:
        return watchers

    async def nothing() -> list[object]:
        return []

    async def market_source(wanted: Sequence[str]) -> Mapping[str, MarketConditions]:
        return {m: conditions[m] for m in wanted if m in conditions}

    async def atr_source(wanted: Sequence[str]) -> Mapping[str, Decimal]:
        return {m: atrs[m] for m in wanted if m in atrs}

    return SnapshotSource(clock=Clock(), settings=settings, risk_state=state, account=read_account, plans=read_plans,
                          watchers=read_watchers, time_alerts=nothing, notes=nothing,  # type: ignore[arg-type]
                          markets=market_source, atr=atr_source, trades=lambda: ledger,
                          links=LinkHealth(bus, Clock(NOW - timedelta(seconds=40))), wallet="paper:0xab")


async def test_the_snapshot_shows_every_field_within_1500_tokens() -> None:
    bus = Bus()
    source = session_sources(bus)
    bus.publish(ConnectionChanged(link="exchange_ws", up=False, detail="ping timeout"))
    snap = build_snapshot(await source.inputs(focus=("XRP",)))
    text = turn_context(snap.text(), mode="copilot").split("\n\n# PERSISTENT NOTES")[0]
    # trades: age, leverage, margin, funding paid, liquidation, management levels, R, declared risk
    assert ("BTC long 0.03 @ 60000 mark 60600 PnL $18.00 stop 59400 R 1.00 declared risk $18.00 target 63000 "
            "early warning 59700 conv 70 5x margin $363.60 funding paid $0.84 liq 48500 age 5h00m [tr_btc] "
            '"reclaim of 60k"') in text
    assert "ETH short 1.5 @ 3000 mark 3030 PnL $-45.00 stop 3060 R -0.50" in text and "age 50m" in text
    assert "SOL long 20 @ 150" in text and "2x margin $1,490.00" in text and "age 2d3h" in text
    # risk: daily budget, streak and its cooldown, price age, labels
    assert "daily loss budget $355.00 left of $505.00 (5% of day-start equity)" in text
    assert "losing streak 1 (a cooldown of 1h after 3 in a row)" in text
    assert "caps (declared risk): per trade $" in text and "open at the stops $" in text
    assert "open at the stop: BTC $" in text
    assert "price age: oldest 48.0s (SOL)" in text
    # health: the outage, the sync phase, the last update's age, the stale rule
    assert ("sync checking (websocket down: ping timeout)  websocket DOWN since 2026-03-02T11:59:20+00:00 (40s)  "
            "last account update 42.0s ago") in text
    assert "STALE: open no new risk until sync is consistent" in text
    # the thread's approval mode
    assert "approval mode: copilot (your orders become proposals" in text
    # markets: the alert's market first even with no position or armed watcher; ATR where known
    markets = text.split("## MARKETS\n")[1].split("\n## ")[0].splitlines()
    assert markets[0].startswith("XRP mark 1.02") and "funding 0.0012%/h" in markets[0]
    assert any(line.startswith("BTC mark 60600") and "ATR1h 450 (0.74%)" in line for line in markets)
    # watchers: both legs' setups and their distances in % and in ATR
    assert ('AVAX [w_0] above 40 "AVAX breakout over range high" setup long entry 40 stop 39.2 target 42.4 conv 60 '
            "risk $15 dist +14.29% +8.3ATR; below 30") in text
    assert "w_done" not in text
    # performance: the last closed trades' R, win rate, average R, realized today
    assert ("all: 2 trades, 1 won, 1 lost (win rate 50.00%), net $20.00, avg R 0.50; realized today $-20.00"
            in text)
    assert "last 2 (newest first): LINK -1.00R, AVAX 2.00R" in text
    tokens = len(text) / CHARS_PER_TOKEN
    assert tokens < 1500, f"{tokens:.0f} tokens"
