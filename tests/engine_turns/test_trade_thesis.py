"""A thesis on every trade (issue 16.2) and the ledger the agent reads (16.4): `open_trade` takes a
thesis and an invalidation; they live in the trade plan, the snapshot, the trade-management alert
briefs, the `get_ledger` tool and `revagent ledger`; `get_ledger` carries realized PnL, fees,
funding and R per trade. Against the simulator, through the real bridge, gateway and risk engine."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from revagent.cli.ledger import ledger_rows
from revagent.engine.snapshot import build_snapshot
from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.models import utc_now
from revagent.store.alert_events import AlertEvent
from revagent.store.ledger import LedgerStore
from revagent.sync.trades import build_trades
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_alert_briefs import run
from tests.engine_turns.test_tools_sim import OPEN, Desk
from tests.fakes.anthropic_server import FakeAnthropic, reply, text

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture

THESIS = "reclaim of 60k with higher lows on the 1h"
INVALIDATION = "a 1h close back under 59.5k"


def ctx(desk: Desk, call: str) -> ToolContext:
    return ToolContext("th_thesis", call, "chat", "autonomous", desk.services)


async def test_the_thesis_and_invalidation_follow_the_trade_everywhere(desk: Desk, fake: FakeAnthropic) -> None:
    tools = default_tools()
    opened = await tools.execute("open_trade", {**OPEN, "thesis": THESIS, "invalidation": INVALIDATION},
                                 ctx(desk, "toolu_open_thesis"))
    assert not opened.is_error, opened.content
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None and (plan.thesis, plan.invalidation) == (THESIS, INVALIDATION)
    # the snapshot the model reads each turn
    assert desk.services.snapshot is not None
    snap = build_snapshot(await desk.services.snapshot.inputs())
    trades = snap.section("trades")
    assert f'thesis "{THESIS}"' in trades and f'invalidation "{INVALIDATION}"' in trades
    # the trade-management alert brief
    desk.sim.set_price("BTC", "59700")
    event = AlertEvent(alert_id=plan.trade_id, kind="early_warning",
                       trigger_key=f"{plan.trade_id}#early_warning:g1", fired_at=utc_now(), price=D("59700"),
                       context={"market": "BTC", "trade_id": plan.trade_id, "level": "59700", "direction": "below"})
    outcome, briefs = await run(desk, fake, event, reply(text("Thesis intact: holding.")))
    assert outcome.status == "done", outcome
    assert f'thesis "{THESIS}"' in briefs[0] and f'invalidation "{INVALIDATION}"' in briefs[0]
    # closed: the ledger has the thesis, realized PnL, fees, funding and R
    closed = await tools.execute("close_position", {"market": "BTC"}, ctx(desk, "toolu_close_thesis"))
    assert not closed.is_error, closed.content
    ledger = LedgerStore(desk.services.store.redis, desk.services.store.keys)
    await ledger.record_fills(await desk.bridge.fills())
    result = await tools.execute("get_ledger", {}, ctx(desk, "toolu_ledger_thesis"))
    assert not result.is_error, result.content
    row = next(t for t in json.loads(result.content)["trades"] if t["trade_id"] == plan.trade_id)
    assert (row["thesis"], row["invalidation"], row["status"]) == (THESIS, INVALIDATION, "closed")
    assert D(row["fees_usd"]) > 0 and D(row["funding_usd"]) == 0
    assert D(row["realized_pnl_usd"]) < 0  # bought near 60000, sold at 59700, fees on both sides
    assert row["opened_at"].endswith("Z") or "+00:00" in row["opened_at"]
    # the same figures as `revagent ledger` (its table rows and its JSON)
    book = build_trades(await ledger.fills(), await ledger.funding(), await desk.services.plans.all(),
                        await desk.services.journal.all())
    trade = next(t for t in book.trades() if t.trade_id == plan.trade_id)
    assert trade.r_multiple is not None and D(row["r"]) == trade.r_multiple.quantize(D("0.01")) < 0
    assert D(row["realized_pnl_usd"]) == trade.net_pnl.quantize(D("0.01"))
    assert D(row["fees_usd"]) == trade.fees.quantize(D("0.01"))
    assert trade.plan is not None and (trade.plan.thesis, trade.plan.invalidation) == (THESIS, INVALIDATION)
    assert THESIS[:37] in ledger_rows([trade])[0][-1]


async def test_open_trade_without_a_thesis_is_refused_and_sends_nothing(desk: Desk) -> None:
    bare = {k: v for k, v in OPEN.items() if k not in ("thesis", "invalidation")}
    result = await default_tools().execute("open_trade", bare, ctx(desk, "toolu_no_thesis"))
    assert result.is_error
    assert "thesis: Field required" in result.content and "invalidation: Field required" in result.content
    assert await desk.services.journal.all() == []
