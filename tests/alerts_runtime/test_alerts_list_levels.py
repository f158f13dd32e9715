"""`revagent alerts list` from a shell shows the levels the running session arms for an open trade:
the early warning from the entry recorded in the ledger, the profit target, the stop check."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.gateway import Action
from revagent.risk import OpenTrade
from revagent.runtime.session import Session
from revagent.store.ledger import LedgerStore
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_ALERTS__EARLY_WARNING_FRACTION", "0.25")
    async with paper_venue(monkeypatch, seed=7, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


async def test_alerts_list_shows_the_early_warning_level_of_an_open_trade(sim: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    try:
        await session.start_trading()
        assert session.gateway is not None
        opened = await session.gateway.submit(
            OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"), risk_usd=Decimal("20"),
                      target_px=Decimal("63000"), conviction=60), Action.command("list-1"))
        assert opened.status == "done", opened.message
        ledger = LedgerStore(session.store.redis, session.store.keys)
        [fill] = await eventually(ledger.fills)  # the sync loop recorded the entry's fill
        entry = fill.px
    finally:
        await session.stop("test finished")

    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "revagent", "alerts", "list", "--json",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    rows = {r["kind"]: r for r in json.loads(out)["trade_alerts"]}
    assert set(rows) == {"stop_loss_verification", "early_warning", "profit_target"}
    assert Decimal(rows["early_warning"]["level"]) == entry + Decimal("0.25") * (Decimal("59000") - entry)
    assert Decimal(rows["profit_target"]["level"]) == Decimal("63000")
    assert Decimal(rows["stop_loss_verification"]["level"]) == Decimal("59000")
