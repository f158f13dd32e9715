"""Issue 14 item 1 against the simulator: a market entry sized at its expected fill from the L2 book
takes the risk that was declared (realized risk at the stop / declared within 0.97..1.00), the IOC limit
stays at the slippage bound, and the plan records the realized risk."""

from __future__ import annotations

from decimal import Decimal

import pytest

from revagent.gateway import Action
from revagent.risk import OpenTrade
from tests.gateway.conftest import Desk

FEE = Decimal("0.00045")


@pytest.mark.parametrize("stop_pct", ["0.5", "2"])
async def test_a_market_entry_realizes_the_declared_risk(desk: Desk, stop_pct: str) -> None:
    stop = Decimal(60000) * (1 - Decimal(stop_pct) / 100)
    declared = Decimal(20)
    result = await desk.gateway.submit(OpenTrade(market="BTC", side="long", stop_px=stop, risk_usd=declared,
                                                 origin="human"), Action.command(f"fill-{stop_pct}"))
    assert result.status == "done", result.message
    v = result.verdict
    assert v is not None and v.expected_entry_px is not None and v.worst_entry_px is not None
    assert v.price == v.worst_entry_px == Decimal(60600)  # the IOC limit: the 1% bound
    assert v.risk_at_worst_usd is not None and v.risk_at_worst_usd > v.risk_usd  # type: ignore[operator]
    position = (await desk.reader()).position("BTC")
    assert position is not None and position.stop_px is not None
    realized = position.size * (position.entry_px - position.stop_px + FEE * (position.entry_px + position.stop_px))
    assert Decimal("0.97") <= realized / declared <= Decimal("1.00"), (realized, v.expected_entry_px,
                                                                      position.entry_px)
    assert abs(position.entry_px - v.expected_entry_px) / v.expected_entry_px < Decimal("0.0005")
    plan = await desk.plans.open_for("BTC")
    assert plan is not None and abs(plan.risk_usd - realized) < Decimal("0.02")
