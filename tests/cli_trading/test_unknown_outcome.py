"""A lost order response (issue 12 item 6): the shell command exits 9 (outcome unknown), not 0; the
next reconciliation resolves the journal record by its client order id; typing the same command
again reuses its id, so the trade is not doubled (issue 14 item 6)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.models import OrderRecord
from tests.cli_trading.conftest import ThreadedSim, master_of, rv

pytestmark = pytest.mark.timeout(300)
OPEN = ("trade", "open", "BTC", "long", "--stop", "59000", "--risk", "20", "--yes", "--json")


def journal() -> list[OrderRecord]:
    async def read() -> list[OrderRecord]:
        from revagent.runtime.session import open_redis, resolve_session_id
        from revagent.store.keys import Keyspace
        from revagent.store.orders import OrderJournal

        cfg = load_config()
        redis = await open_redis(cfg)
        try:
            return await OrderJournal(redis, Keyspace(await resolve_session_id(cfg, cfg.wallet())), None).all()
        finally:
            await redis.aclose()

    return asyncio.run(read())


def lose_next_response(server: SimServer) -> None:
    server.faults.lose_order_responses = 1


def test_a_lost_response_exits_9_is_resolved_by_reconciliation_and_a_retry_runs_once(paper: ThreadedSim) -> None:
    user = master_of()
    paper.call(lose_next_response)
    out = rv(*OPEN)
    assert out.returncode == 9, (out.returncode, out.stdout[-1500:], out.stderr[-1500:])
    assert json.loads(out.stdout)["status"] == "unknown"
    size = paper.positions(user)["BTC"]
    assert size > 0  # the order went through although its answer was lost

    sync = rv("sync", "--json")
    assert sync.returncode == 0, sync.stderr[-1500:]
    entries = [r for r in journal() if r.role == "entry"]
    assert [r.status for r in entries] == ["filled"], [(r.cloid, r.status) for r in entries]

    again = rv(*OPEN)  # typed again after the unknown outcome: the same action, run once
    assert again.returncode == 0, (again.stdout[-1500:], again.stderr[-1500:])
    assert "sending it again" in again.stderr
    assert json.loads(again.stdout)["status"] == "duplicate"
    assert paper.positions(user)["BTC"] == size

    # Its outcome is known now: the same typed command is a new action, judged afresh. A second $20
    # on the same trade breaks the per-trade cap (it binds the trade, issue 13 item 8), so it is
    # refused with that reason, not answered "duplicate".
    fresh = rv(*OPEN)
    assert fresh.returncode == 6, (fresh.stdout[-1500:], fresh.stderr[-1500:])
    doc = json.loads(fresh.stdout)
    assert doc["status"] == "refused" and "can be added with this stop" in fresh.stdout, doc
    assert paper.positions(user)["BTC"] == size
    assert Decimal(0) < size


def test_a_stop_on_the_exchange_is_journalled_resting_not_waiting(paper: ThreadedSim) -> None:
    """Issue 12 item 11: the stop of an entry that filled is on the exchange; its record says so."""
    out = rv(*OPEN)
    assert out.returncode == 0, out.stderr[-1500:]
    stops = [r for r in journal() if r.role == "stop"]
    assert [r.status for r in stops] == ["resting"], [(r.cloid, r.status) for r in stops]
