"""Invariant 9 (protection always passes): an `EnsureStop` with no explicit stop derives one from the
per-trade cap; when that stop rounds onto the mark it goes just beyond it, never refused as on the
wrong side. Found by `test_reduce_only_close_and_protective_stop_always_pass` in CI."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest

from revagent.risk import RiskSettings, RiskState, evaluate
from revagent.risk.account import AccountView, MarketRules, PositionView
from revagent.risk.intents import EnsureStop

NOW = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("size", ["-180.46", "180.46", "-1000"])
def test_a_derived_stop_that_rounds_onto_the_mark_goes_just_beyond_it(size: str) -> None:
    sol = MarketRules(name="SOL", sz_decimals=2, max_leverage=20, mark_px=D("150.000"), price_time=NOW)
    held = PositionView(market="SOL", size=D(size), entry_px=D(150), mark_px=D("150.000"), stop_px=None,
                        leverage=D(3))
    view = AccountView(equity=D(1000), available_margin=D(0), positions=(held,), markets={"SOL": sol})
    state = RiskState(penalty=D("0.441"), lock_reason="max_drawdown", updated_at=NOW)
    v = evaluate(EnsureStop(market="SOL", stop_px=None, origin="system"), view, RiskSettings(), state, NOW)
    assert v.approved and v.reduce_only, v.explain()
    assert v.stop_px is not None and (D(150) - v.stop_px) * held.direction > 0
