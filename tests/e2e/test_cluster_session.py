"""Issue 20.3: a wallet session's main paths on a real 3-master Redis Cluster.

The cluster is started from the project's own `redis-server` (random ports, temp dirs, `CLUSTER
ADDSLOTS` / `MEET` from `store.cluster.spawn_cluster`) and stopped after. The whole trade loop of
issue 14 runs on it (sync, gateway journal and plans, stop moves, the alert scheduler and the
durable queue with its consumer group, alert threads, the ledger, the lease), then notes, watchers
and time alerts, a shell command through the command channel to the owner, the risk settings and the
host-wide rate budget. redis-py refuses a transaction that spans two slots before sending it, and
the server answers CROSSSLOT to a script or command that does: either fails the path it is on, and
the log is searched for one too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.models import Note, utc_now
from revagent.runtime.remote import call_once
from revagent.runtime.session import Session
from revagent.store.connection import is_cluster
from revagent.store.lease import live_owners
from revagent.store.ledger import LedgerStore
from tests.e2e.test_trade_loop import PRICE, open_trade, scenario, start
from tests.paper_venue import paper_venue

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def on_cluster(cluster_url: str, revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's config points at the cluster (emptied first)."""
    monkeypatch.setenv("REVAGENT_REDIS__URL", cluster_url)
    return cluster_url


@pytest.fixture
async def venue(on_cluster: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=7, prices={"BTC": str(PRICE)}, history_minutes=0) as sim:
        yield sim


def cross_slot_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage()[:300] for r in caplog.records
            if "CROSSSLOT" in r.getMessage().upper() or "CrossSlot" in r.getMessage()]


async def test_the_trade_loop_runs_on_a_redis_cluster(venue: SimServer, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    session = await start(monkeypatch, model=None)
    try:
        assert is_cluster(session.store.redis)
        trade_id = await open_trade(session)
        await scenario(session, venue, trade_id, early_warning="acted")
        assert await LedgerStore(session.store.redis, session.store.keys).fills()  # fills reached the ledger
        owners = await live_owners(session.store.redis)
        assert [o.session for o in owners] == [str(session.sid)]
    finally:
        await session.stop("test finished")
    assert cross_slot_lines(caplog) == []


async def test_store_paths_and_the_command_channel_on_a_redis_cluster(
        venue: SimServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("REVAGENT_LLM__PROVIDER", "offline")
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start()  # serves the command channel
    try:
        await session.start_runtime()
        await session.start_trading()
        store = session.store
        now = utc_now()
        await store.notes.put(Note(id="n_cluster", text="BTC holds 60k on the daily", created_at=now, updated_at=now))
        assert (await store.notes.get("n_cluster")) is not None
        assert [n.id for n in await store.notes.all()] == ["n_cluster"]
        assert await store.notes.delete("n_cluster")
        # A shell command reaches the owner through the command channel and its reply stream.
        result, via = await call_once(cfg, cfg.wallet(), "risk.set", {"key": "max_leverage", "value": "3"})
        assert via == "owner", result
        assert session.risk is not None and (await session.risk.settings()).max_leverage == 3
        shown, via = await call_once(cfg, cfg.wallet(), "risk.show", {})
        assert via == "owner" and shown
    finally:
        await session.stop("test finished")
    assert cross_slot_lines(caplog) == []
