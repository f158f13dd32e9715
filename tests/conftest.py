"""Suite-wide fixtures: a real redis-server, asyncio debug mode with a slow-callback guard, and an
isolated revagent home (config and data dirs) per test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from revagent.store.cluster import LocalCluster, spawn_cluster
from revagent.store.server import RedisProcess, spawn_redis

# asyncio's debug mode (pyproject: asyncio_debug = true, and the loop factory below) reports
# never-awaited coroutines, non-thread-safe calls, and callbacks that hog the loop. It is not put in
# the environment: CLI subprocesses under test must behave as they do for a trader.
SLOW_CALLBACK_SECONDS = float(os.environ.get("REVAGENT_TEST_SLOW_CALLBACK", "1.0"))
_SLOW = re.compile(r"^Executing .* took (\d+\.\d+) seconds$", re.S)


def _debug_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
    return loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async test runs on a loop in debug mode with the slow-callback threshold."""
    return {"debug": _debug_loop}


class _SlowCallbackCatcher(logging.Handler):
    def __init__(self, threshold: float = SLOW_CALLBACK_SECONDS) -> None:
        super().__init__(logging.WARNING)
        self.threshold = threshold
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = _SLOW.match(message)
        if match and float(match.group(1)) >= self.threshold:
            self.slow.append(message[:300])


@pytest.fixture(autouse=True)
def _fail_on_slow_callbacks() -> Iterator[None]:
    """A callback that blocks the loop longer than the threshold fails the test that ran it."""
    catcher = _SlowCallbackCatcher()
    logger = logging.getLogger("asyncio")
    logger.addHandler(catcher)
    try:
        yield
    finally:
        logger.removeHandler(catcher)
    if catcher.slow:
        pytest.fail(
            f"the event loop was blocked longer than {SLOW_CALLBACK_SECONDS}s:\n" + "\n".join(catcher.slow),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One real redis-server (AOF on) for the whole run, on a unix socket in a temp dir."""
    proc = spawn_redis(tmp_path_factory.mktemp("redis"), fsync="everysec")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real 3-master Redis Cluster (started on first use, stopped after the run)."""
    cluster = spawn_cluster(tmp_path_factory.mktemp("cluster"), masters=3)
    try:
        yield cluster
    finally:
        cluster.stop()


async def flush_cluster(url: str) -> None:
    from revagent.store.connection import connect, is_cluster

    client = await connect(url)
    try:
        assert is_cluster(client)
        await client.flushall(target_nodes=client.get_primaries())
    finally:
        await client.aclose()


@pytest.fixture
async def cluster_url(redis_cluster: LocalCluster) -> str:
    """The cluster's `redis+cluster://` URL, emptied before the test."""
    await flush_cluster(redis_cluster.url)
    return redis_cluster.url


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The shared server's URL, flushed before each test so tests never see each other's keys."""
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def revagent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Path]:
    """An isolated config dir and data dir, wired to the test Redis through the environment.

    Whatever background service a test started under it (the paper venue, an embedded Redis) is
    stopped afterwards: a test leaves no process behind.
    """
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "data").mkdir(parents=True)
    for key in list(os.environ):
        if key.startswith("REVAGENT_") and key != "REVAGENT_TEST_SLOW_CALLBACK":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REVAGENT_CONFIG", str(home / "config" / "config.toml"))
    monkeypatch.setenv("REVAGENT_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("REVAGENT_REDIS__URL", redis_url)
    monkeypatch.setenv("REVAGENT_PAPER__PRICES", "synthetic")  # tests never reach the internet
    # no warm python worker per engine (its imports cost 1-4 s of CPU each); tests of it turn it on
    monkeypatch.setenv("REVAGENT_LLM__PYTHON_SPARE", "false")
    try:
        yield home
    finally:
        stop_background_services(home / "data")


def stop_background_services(data_dir: Path) -> None:
    """Stop the paper venue(s) and embedded Redis a test started under `data_dir`."""
    from revagent.exchange.sim import service as venue
    from revagent.store.server import EmbeddedRedis

    for record in data_dir.rglob(venue.PID_NAME):
        venue.stop(record.parent)
    for redis_dir in data_dir.rglob("redis"):
        if (redis_dir / "started-by-revagent").exists():
            EmbeddedRedis(redis_dir.parent).stop()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[object]:
    """A strict local Anthropic Messages server (see tests/fakes/anthropic_server.py)."""
    from tests.fakes.anthropic_server import FakeAnthropic

    async with FakeAnthropic(api_key="sk-ant-test-key") as fake:
        yield fake
