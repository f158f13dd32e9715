"""Issue 20.3: the store's host-wide and pub/sub paths on a real Redis Cluster (the session's own
paths run in tests/e2e/test_cluster_session.py). Host-wide keys carry their own hash tag, so the
rate budget's scripts stay in one slot; a write's `store.changed` reaches a subscriber connected to
any node."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from revagent.models import Note, SessionId
from revagent.store.connection import connect, is_cluster
from revagent.store.invalidations import StoreInvalidations
from revagent.store.keys import Keyspace
from revagent.store.rate_budget import RedisRateBudget
from revagent.store.repos import SessionStore

pytestmark = pytest.mark.timeout(60)


async def test_the_shared_rate_budget_works_on_a_cluster(cluster_url: str) -> None:
    r1, r2 = await connect(cluster_url), await connect(cluster_url)
    try:
        assert is_cluster(r1)
        a = RedisRateBudget(r1, capacity=100, scope="cluster-host", chunk=1)
        b = RedisRateBudget(r2, capacity=100, scope="cluster-host", chunk=1)
        await a.acquire(60)
        await b.acquire(40)
        assert await a.spent() == 100
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.acquire(20), timeout=0.5)
        await a.rate_limited(0.3)  # a 429 pauses every holder of the budget
        started = time.monotonic()
        c = RedisRateBudget(r2, capacity=100, scope="cluster-host-2", chunk=1)
        await c.rate_limited(0.3)
        await c.acquire(1)
        assert time.monotonic() - started >= 0.25
    finally:
        await r1.aclose()
        await r2.aclose()


async def test_a_write_reaches_a_subscriber_on_a_cluster(cluster_url: str) -> None:
    sid = SessionId(network="paper", address="0x00000000000000000000000000000000000000c1")
    writer, reader = await connect(cluster_url), await connect(cluster_url)
    feed = StoreInvalidations(reader, Keyspace(sid).events)
    try:
        await feed.subscribe()
        got: list[object] = []

        async def follow() -> None:
            async for change in feed:
                got.append(change)
                return

        follower = asyncio.create_task(follow(), name="test:follow")
        now = datetime.now(UTC)
        await SessionStore(writer, sid).notes.put(Note(id="n_c", text="x", created_at=now, updated_at=now))
        await asyncio.wait_for(follower, timeout=10)
        assert [getattr(c, "what", None) for c in got] == ["notes"]
    finally:
        await feed.aclose()
        await writer.aclose()
        await reader.aclose()


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://host", "redis+cluster://h:1,h",
                                 "redis+cluster://h:99999999"])
def test_a_bad_cluster_url_is_a_config_error_that_names_the_setting(
        url: str, revagent_home: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from revagent.config import load_config
    from revagent.errors import ConfigError

    monkeypatch.setenv("REVAGENT_REDIS__URL", url)
    with pytest.raises(ConfigError) as err:
        load_config()
    assert "redis" in str(err.value) and "redis+cluster://" in str(err.value)


def test_cluster_true_takes_a_plain_url_as_the_start_up_nodes(revagent_home: object,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from revagent.config import load_config
    from revagent.store.cluster import cluster_nodes
    from revagent.store.connection import redis_url

    monkeypatch.setenv("REVAGENT_REDIS__URL", "redis://10.0.0.1:7000,10.0.0.2:7001")
    monkeypatch.setenv("REVAGENT_REDIS__CLUSTER", "true")
    url = redis_url(load_config())
    assert url == "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"
    assert cluster_nodes(url) == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
