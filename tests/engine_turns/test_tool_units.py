"""One set of units across the read tools and the snapshot (issue 16.4): percent rounded to 2
decimals, funding in %/h, times in ISO 8601 UTC (never epoch milliseconds)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from revagent.engine.snapshot import SnapshotInputs, build_snapshot
from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.engine.tools.read import MarketConditionsSource
from revagent.models import utc_now
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_tools_sim import Desk

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture


def iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return value


async def test_market_candles_and_book_use_one_set_of_units(desk: Desk) -> None:
    tools = default_tools()
    ctx = ToolContext("th_units", "toolu_u", "chat", "autonomous", desk.services)
    market = json.loads((await tools.execute("get_market", {"market": "BTC"}, ctx)).content)
    change = D(market["change_24h_pct"])
    assert change == change.quantize(D("0.01"))  # not "0.0121212121212121212121212"
    assert "funding_rate_hourly" not in market and "funding_pct_per_hour" in market
    meta, ctxs = await desk.bridge.meta_and_asset_ctxs()
    raw = next(c for i, c in zip(meta.universe, ctxs, strict=False) if i.name == "BTC").funding
    assert D(market["funding_pct_per_hour"]) == (raw * 100).quantize(D("0.0001"))
    iso(market["as_of"])
    candles = json.loads((await tools.execute("get_candles", {"market": "BTC", "interval": "5m", "count": 50,
                                                              "rows": 3}, ctx)).content)
    assert candles["columns"][0] == "time" and "t_ms" not in candles["columns"]
    times = [iso(r[0]) for r in candles["rows"]]
    assert times == sorted(times) and (times[1] - times[0]).total_seconds() == 300
    book = json.loads((await tools.execute("get_orderbook", {"market": "BTC", "depth": 2}, ctx)).content)
    iso(book["time"])
    # the snapshot's MARKETS says the same (its doc and its text)
    markets = await MarketConditionsSource(desk.bridge)(["BTC"])
    snap = build_snapshot(SnapshotInputs(now=utc_now(), settings=await desk.services.risk.settings(),
                                         risk_state=await desk.services.risk.get(), markets=markets, focus=("BTC",)))
    doc = next(m for m in snap.doc["markets"] if m["market"] == "BTC")
    assert D(doc["change_24h_pct"]) == change and D(doc["funding_pct_per_hour"]) == D(market["funding_pct_per_hour"])
    assert f"funding {D(market['funding_pct_per_hour'])}%/h" in snap.section("markets")
