"""Limit entries with an expiry (issue 16.4): `open_trade` with `entry_type: limit` takes
`expires_in`; the plan records when the entry expires, and after it the gateway cancels the resting
entry (journaled under a correction action, run by the alert scheduler's trade refresh). Against the
simulator, through the real bridge, gateway and risk engine."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.models import utc_now
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_tools_sim import OPEN, Desk

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture (BTC at 60000)

LIMIT = {**OPEN, "entry_type": "limit", "entry_px": "59700", "stop_px": "59200", "expires_in": "30m"}


def ctx(desk: Desk, call: str) -> ToolContext:
    return ToolContext("th_expiry", call, "chat", "autonomous", desk.services)


async def test_a_limit_entry_is_cancelled_after_its_expiry(desk: Desk) -> None:
    tools = default_tools()
    opened = await tools.execute("open_trade", LIMIT, ctx(desk, "toolu_limit"))
    assert not opened.is_error, opened.content
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None and plan.status == "opening" and plan.entry_expires_at is not None
    assert timedelta(minutes=29) < plan.entry_expires_at - utc_now() <= timedelta(minutes=30)
    gateway = desk.services.gateway
    assert await gateway.expire_entries() == []  # not yet
    assert [e.market for e in (await desk.services.account()).entries] == ["BTC"]  # type: ignore[misc]
    gateway.clock = lambda: utc_now() + timedelta(minutes=31)
    results = await gateway.expire_entries()
    assert [(r.status, r.kind) for r in results] == [("done", "cancel")], results
    assert (await desk.services.account()).entries == ()  # type: ignore[misc]
    cancels = [o for o in await desk.services.journal.all() if o.action.endswith("entry-expired")] or [
        o for o in await desk.services.journal.all() if "entry-expired" in o.action]
    assert cancels and all(o.status == "cancelled" for o in cancels)
    after = await desk.services.plans.get(plan.trade_id)
    assert after is not None and after.status == "cancelled" and after.closed_at is not None
    assert await gateway.expire_entries() == []  # once


async def test_expires_in_is_only_for_a_limit_entry(desk: Desk) -> None:
    result = await default_tools().execute("open_trade", {**OPEN, "expires_in": "30m"}, ctx(desk, "toolu_mkt_exp"))
    assert result.is_error and "expires_in is only for entry_type limit" in result.content
    bad = await default_tools().execute("open_trade", {**LIMIT, "expires_in": "soon"}, ctx(desk, "toolu_bad_exp"))
    assert bad.is_error and "expires_in" in bad.content
    assert await desk.services.journal.all() == []
