"""Connecting to Redis: the configured server or the embedded one, checked, with clear errors."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from revagent.config import Config, ResolvedWallet
from revagent.errors import RedisUnavailableError
from revagent.models import SessionId
from revagent.store.cluster import CLUSTER_SCHEME, cluster_nodes, cluster_password, is_cluster_url
from revagent.store.keys import SCHEMA_KEY, SCHEMA_VERSION
from revagent.store.server import EmbeddedRedis, check_version

Redis = aioredis.Redis
AnyRedis = Any
"""redis-py 8's async stubs type replies as unions of bytes, str and awaitables; with
`decode_responses=True` they are str. Repositories hold the client as `AnyRedis` and parse every
reply into a typed model at once, which is where the typing that matters lives."""
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def redis_url(config: Config) -> str:
    """`redis.url` if set, else the embedded server for the data dir (started on first use). With
    `[redis] cluster = true` a plain `redis://h:p[,h:p]` URL is taken as a cluster's start-up nodes."""
    if config.redis.url:
        url = config.redis.url
        if config.redis.cluster and not is_cluster_url(url):
            url = CLUSTER_SCHEME + url.split("://", 1)[1]
        return url
    return EmbeddedRedis(config.data_path, fsync=config.redis.fsync).ensure_running()


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


_PUBLISH = "return redis.call('publish', KEYS[1], ARGV[1])"
"""PUBLISH inside a cluster transaction: redis-py refuses a keyless command in a cluster pipeline,
so it goes as a script whose one key is the channel (the session's hash tag routes it)."""


def queue_publish(pipe: Any, channel: str, message: str) -> None:
    """Queue a PUBLISH on a pipeline: plain on a single server, as a one-key script on a cluster (where
    a PUBLISH reaches every node's subscribers all the same)."""
    if isinstance(pipe, ClusterPipeline):
        pipe.eval(_PUBLISH, 1, channel, message)
    else:
        pipe.publish(channel, message)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def _client(url: str) -> Any:
    if is_cluster_url(url):
        try:
            nodes = cluster_nodes(url)
        except ValueError as exc:
            raise RedisUnavailableError(f"redis.url: {exc}") from None
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            password=cluster_password(url),
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=30,
        )
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
    )


async def _server_info(client: Any) -> dict[str, Any]:
    if is_cluster(client):
        await client.initialize()
        info: dict[str, Any] = await client.info("server", target_nodes=RedisCluster.RANDOM)
        return info
    single: dict[str, Any] = await client.info("server")
    return single


async def connect(url: str, *, check: bool = True) -> Redis:
    """An async client (str responses): redis-py's cluster client for `redis+cluster://`. Raises
    RedisUnavailableError with one clear line if the server cannot be reached, refuses our
    credentials, or is older than Redis 6.2."""
    client: Redis = _client(url)
    if not check:
        return client
    try:
        info = await _server_info(client)
        version = tuple(int(p) for p in str(info.get("redis_version", "0.0.0")).split(".")[:3])
        check_version(version, f"the Redis at {describe_url(url)}")
        await client.set(SCHEMA_KEY, SCHEMA_VERSION, nx=True)
    except AuthenticationError as exc:
        await client.aclose()
        raise RedisUnavailableError(f"Redis at {describe_url(url)} refused the credentials: {exc}") from None
    except UNAVAILABLE as exc:
        await client.aclose()
        raise RedisUnavailableError(f"Redis is unreachable at {describe_url(url)}: {exc}") from None
    except (RedisError, IndexError) as exc:  # IndexError: redis-py's cluster client with no node up
        await client.aclose()
        raise RedisUnavailableError(f"Redis at {describe_url(url)} answered with an error: {exc}") from None
    except RedisUnavailableError:
        await client.aclose()
        raise
    return client


async def open_redis(config: Config) -> AnyRedis:
    """A client for the config's Redis (the embedded server is started when it is the one configured)."""
    import asyncio

    url = await asyncio.to_thread(redis_url, config)
    return await connect(url)


async def resolve_session_id(config: Config, wallet: ResolvedWallet) -> SessionId:
    """The wallet's identity; for a paper wallet this may generate its keys (file I/O in a thread)."""
    import asyncio

    from revagent.config.keys import master_address

    address = await asyncio.to_thread(master_address, wallet, config.data_path)
    return SessionId(network=wallet.network, address=address)
