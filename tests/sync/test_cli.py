"""`revagent ledger` and `revagent stats` over a recorded ledger (the commands mounted on a test app the
way the main app mounts them)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from revagent.cli.ledger import app as ledger_app
from revagent.cli.ledger import stats_command
from revagent.config import load_config
from revagent.models import utc_now
from revagent.runtime.session import open_redis, resolve_session_id
from revagent.store.keys import Keyspace
from revagent.store.ledger import LedgerEvent, LedgerStore
from tests.sync.builders import recorded_fills

pytestmark = pytest.mark.usefixtures("revagent_home")

cli = typer.Typer()
cli.add_typer(ledger_app, name="ledger")
cli.command("stats")(stats_command)


async def _seed() -> None:
    cfg = load_config(None)
    redis = await open_redis(cfg)
    try:
        keys = Keyspace(await resolve_session_id(cfg, cfg.wallet(None)))
        store = LedgerStore(redis, keys)
        await store.record_fills(list(reversed(recorded_fills())))
        await store.record_event(LedgerEvent(kind="correction", market="BTC", at=utc_now(),
                                             reason="BTC 0.1 has no stop; placing one at the per-trade cap"))
    finally:
        await redis.aclose()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_ledger_json_csv_table_stats_and_events(revagent_home: Path) -> None:
    asyncio.run(_seed())
    trades = json.loads(run("ledger", "--json"))["trades"]
    assert len(trades) == 34
    assert sum(Decimal(t["gross_pnl"]) for t in trades) == Decimal("-152.586132")
    incomplete = [t for t in trades if not t["complete"]]
    assert incomplete and all(t["entry_vwap"] is None for t in incomplete)
    rows = list(csv.DictReader(io.StringIO(run("ledger", "--csv"))))
    assert len(rows) == 34 and rows[0].keys() >= {"trade_id", "net_pnl", "r_multiple", "entry_vwap"}
    assert "incomplete" in run("ledger")
    assert json.loads(run("ledger", "--since", "1h", "--json"))["trades"] == []  # the fills are from 2023
    stats = json.loads(run("stats", "--json"))
    assert stats["trades"] == 19 and stats["excluded_incomplete"] == 15
    assert Decimal(stats["max_drawdown_usd"]) >= 0 and stats["win_rate"] is not None
    events = json.loads(run("ledger", "events", "--kind", "correction", "--json"))["events"]
    assert [e["market"] for e in events] == ["BTC"] and "no stop" in events[0]["reason"]


def test_a_bad_since_is_a_usage_error(revagent_home: Path) -> None:
    result = CliRunner().invoke(cli, ["ledger", "--since", "soon"])
    assert result.exit_code == 2 and "--since" in result.output
