"""The canonical runtime snapshot: deterministic, stable ordering, a budget that never drops risk or trades."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.engine.snapshot import Health, MarketConditions, SnapshotInputs, build_snapshot
from revagent.models import LegDirection, Note, Side, TimeAlert, TradePlan, WatcherLeg, WatcherPair
from revagent.risk import AccountView, MarketRules, PositionView, RiskSettings, RiskState, TriggerOrder
from tests.engine_turns.conftest import NOW

D = Decimal


def rules(name: str, mark: str) -> MarketRules:
    return MarketRules(name=name, sz_decimals=2, max_leverage=20, mark_px=D(mark), price_time=NOW)


def inputs(n_positions: int = 2, n_watchers: int = 5, n_notes: int = 3, *, shuffle: bool = False) -> SnapshotInputs:
    markets = {f"M{i:02d}": rules(f"M{i:02d}", str(100 + i)) for i in range(max(n_positions, 1))}
    positions = tuple(PositionView(market=f"M{i:02d}", size=D("2") if i % 2 == 0 else D("-2"), entry_px=D(100 + i),
                                   mark_px=D(101 + i), stop_px=D(95 + i) if i % 2 == 0 else D(106 + i),
                                   leverage=D(3)) for i in range(n_positions))
    triggers = tuple(TriggerOrder(market=p.market, side="sell" if p.size > 0 else "buy", size=D(2),
                                  trigger_px=p.stop_px or D(1), kind="stop", oid=i)
                     for i, p in enumerate(positions))
    account = AccountView(equity=D("10000"), available_margin=D("8000"), positions=positions, triggers=triggers,
                          markets=markets)
    plans = [TradePlan(trade_id=f"tr_{i}", market=f"M{i:02d}", side=Side.LONG if i % 2 == 0 else Side.SHORT,
                       stop_px=D(95 + i) if i % 2 == 0 else D(106 + i), target_px=D(120 + i), conviction=60,
                       risk_usd=D("10"), status="open", opened_at=NOW) for i in range(n_positions)]
    watchers = [WatcherPair(id=f"w_{i:04d}", market=f"W{i % 7}",
                            upper=WatcherLeg(level=D(200 + i), direction=LegDirection.ABOVE, thesis="breakout " * 3),
                            created_at=NOW - timedelta(minutes=i)) for i in range(n_watchers)]
    notes = [Note(id=f"n_{i:04d}", text=f"note number {i} " * 4, created_at=NOW - timedelta(hours=i),
                  updated_at=NOW) for i in range(n_notes)]
    alerts = [TimeAlert(id="t_1", fire_at=NOW + timedelta(hours=1), prompt="check funding", created_at=NOW)]
    conditions = {m: MarketConditions(m, r.mark_px, r.mark_px, D("1.5"), D("0.0000125"), D("1000"))
                  for m, r in markets.items()}
    if shuffle:
        plans, watchers, notes = plans[::-1], watchers[::-1], notes[::-1]
    return SnapshotInputs(now=NOW, settings=RiskSettings(), risk_state=RiskState(), account=account, plans=plans,
                          watchers=watchers, time_alerts=alerts, notes=notes, markets=conditions,
                          health=Health("consistent", True, 0.4), wallet="paper:0xab")


def test_text_and_json_are_deterministic_whatever_the_input_order() -> None:
    a = build_snapshot(inputs())
    b = build_snapshot(inputs(shuffle=True))
    assert a.text() == b.text()
    assert json.dumps(a.doc, sort_keys=True) == json.dumps(b.doc, sort_keys=True)
    text = a.text()
    for title in ("## ACCOUNT", "## RISK", "## ACTIVE TRADES", "## OPEN ORDERS", "## HEALTH", "## MARKETS",
                  "## WATCHERS", "## TIME ALERTS", "## NOTES"):
        assert title in text
    assert "M00 long 2 @ 100" in text and "[tr_0]" in text and "R 0.20" in text
    assert a.doc["trades"][1]["side"] == "short" and a.doc["trades"][1]["r_now"] == "-0.2"
    json.dumps(a.doc)  # JSON-serialisable as is


def test_watchers_and_notes_are_sorted_stably() -> None:
    snap = build_snapshot(inputs(n_watchers=20, shuffle=True))
    ids = [w["id"] for w in snap.doc["watchers"]]
    markets = [w["market"] for w in snap.doc["watchers"]]
    assert markets == sorted(markets)
    assert len(ids) == len(set(ids)) == 20
    assert [n["id"] for n in snap.doc["notes"]] == ["n_0002", "n_0001", "n_0000"]  # oldest first


def test_budget_truncates_optional_sections_but_never_risk_or_trades() -> None:
    snap = build_snapshot(inputs(n_positions=20, n_watchers=500, n_notes=100))
    text = snap.text(budget_chars=4000)
    for i in range(20):
        assert f"[tr_{i}]" in text  # every active trade
    assert "## RISK" in text and "caps (declared risk): per trade" in text
    assert "more (call get_snapshot)" in text or "lines omitted" in text
    assert text.count("\n") < snap.text(budget_chars=10**7).count("\n")


@settings(max_examples=60, deadline=None)
@given(budget=st.integers(min_value=0, max_value=30_000), positions=st.integers(0, 8),
       watchers=st.integers(0, 80), notes=st.integers(0, 30))
def test_mandatory_sections_survive_any_budget(budget: int, positions: int, watchers: int, notes: int) -> None:
    snap = build_snapshot(inputs(positions, watchers, notes))
    text = snap.text(budget_chars=budget)
    for name in ("account", "risk", "trades", "orders", "health"):
        assert snap.section(name) in text
    mandatory = len("\n".join([snap.header, *(snap.section(n) for n in ("account", "risk", "trades", "orders",
                                                                         "health"))]))
    assert len(text) <= max(budget, mandatory) + 200  # optional sections respect the budget (trailer slack)


def test_no_account_yet_is_said_plainly() -> None:
    snap = build_snapshot(SnapshotInputs(now=NOW, settings=RiskSettings(), risk_state=RiskState()))
    assert "account not loaded yet" in snap.text()
    assert snap.doc["account"] is None and snap.doc["trades"] == []
