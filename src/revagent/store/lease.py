"""The session lease: one owner per wallet, renewed in the background, fenced before side effects.

Acquire is `SET NX PX` on the session's lease key with a JSON value naming the holder (host, pid,
since, a fencing token from a monotonic counter). A holder whose recorded pid is dead on this
same host is taken over at once instead of waiting out the TTL. An owner checks that it still
holds the lease before each side effect: `ensure_held()` for external effects (an order), and
`fenced()` for Redis writes, which checks the lease inside the write's own transaction (WATCH), so
an owner that was paused past its TTL and lost the lease can never write after waking up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from redis.exceptions import WatchError

from revagent.errors import LeaseLostError, OwnerBusyError
from revagent.models import utc_now
from revagent.store.connection import UNAVAILABLE, AnyRedis
from revagent.store.keys import Keyspace

log = logging.getLogger(__name__)

_RENEW = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if current == false and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
# Renewal after the key expired (Redis stalled or down past the TTL) keeps the lease only if no
# other process even tried to take it since: every acquire increments the fence counter first, so
# an unchanged counter (still our token) proves nobody owned the wallet in between.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    since: str
    token: int
    role: str

    def describe(self) -> str:
        return f"{self.role} pid {self.pid} on {self.host} since {self.since}"


def _parse_holder(raw: str | None) -> Holder | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        return Holder(str(doc["host"]), int(doc["pid"]), str(doc["since"]), int(doc["token"]), str(doc["role"]))
    except (ValueError, KeyError, TypeError):
        return Holder("?", 0, "?", 0, "unknown")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


async def current_holder(redis: AnyRedis, keys: Keyspace) -> Holder | None:
    """Who holds the wallet now, or None. A holder that is dead on this host counts as none."""
    holder = _parse_holder(await redis.get(keys.lease))
    if holder is not None and holder.host == socket.gethostname() and not pid_alive(holder.pid):
        return None
    return holder


class Lease:
    """This process's claim on one wallet session."""

    def __init__(self, redis: AnyRedis, keys: Keyspace, *, ttl: timedelta = timedelta(seconds=15),
                 role: str = "session") -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = max(100, int(ttl.total_seconds() * 1000))
        self.role = role
        self._value: str | None = None
        self.holder: Holder | None = None
        self._renewed_at = 0.0
        self._lost = False

    @property
    def token(self) -> int:
        if self.holder is None:
            raise LeaseLostError("this process does not hold the lease")
        return self.holder.token

    async def acquire(self) -> Holder:
        """Take the lease or raise OwnerBusyError naming the holder."""
        for _ in range(3):
            token = int(await self.redis.incr(self.keys.lease_fence))
            holder = Holder(socket.gethostname(), os.getpid(), utc_now().isoformat(timespec="seconds"), token,
                            self.role)
            value = json.dumps(asdict(holder), separators=(",", ":"))
            if await self.redis.set(self.keys.lease, value, nx=True, px=self.ttl_ms):
                self._value, self.holder, self._lost = value, holder, False
                self._renewed_at = time.monotonic()
                return holder
            raw = await self.redis.get(self.keys.lease)
            current = _parse_holder(raw)
            if current is None:
                continue  # expired between our SET and GET: try again
            if current.host == socket.gethostname() and current.pid != os.getpid() and not pid_alive(current.pid):
                log.warning("taking over the lease from dead %s", current.describe())
                await self.redis.eval(_DELETE_IF, 1, self.keys.lease, raw)
                continue
            raise OwnerBusyError(f"wallet {self.keys.sid} is owned by {current.describe()}")
        raise OwnerBusyError(f"could not take the lease of {self.keys.sid}: it keeps changing hands")

    async def renew(self) -> bool:
        if self._value is None or self._lost:
            return False
        assert self.holder is not None
        result = int(await self.redis.eval(_RENEW, 2, self.keys.lease, self.keys.lease_fence, self._value,
                                           self.ttl_ms, self.holder.token))
        ok = result > 0
        if result == 2:
            log.warning("the lease had expired (Redis unreachable past its TTL) and nobody took it: kept it")
        if ok:
            self._renewed_at = time.monotonic()
        else:
            self._lost = True
        return ok

    async def ensure_held(self) -> None:
        """Raise LeaseLostError unless this process still holds the lease (one round trip)."""
        if self._value is None or self._lost:
            raise LeaseLostError(f"this process does not own {self.keys.sid}")
        # Paused or cut off past the TTL: another owner may exist even if Redis says otherwise later.
        if time.monotonic() - self._renewed_at > self.ttl_ms / 1000 and not await self.renew():
            raise LeaseLostError(f"the lease of {self.keys.sid} expired while this process was paused")
        if await self.redis.get(self.keys.lease) != self._value:
            self._lost = True
            raise LeaseLostError(f"the lease of {self.keys.sid} was taken over by another process")

    async def fenced(self, write: Callable[[Any], None]) -> list[Any]:
        """Run `write(pipeline)` in a transaction that commits only while we hold the lease."""
        if self._value is None or self._lost:
            raise LeaseLostError(f"this process does not own {self.keys.sid}")
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(5):
                try:
                    await pipe.watch(self.keys.lease)
                    if await pipe.get(self.keys.lease) != self._value:
                        self._lost = True
                        raise LeaseLostError(f"the lease of {self.keys.sid} was taken over by another process")
                    pipe.multi()
                    write(pipe)
                    return list(await pipe.execute())
                except WatchError:
                    continue  # the lease was renewed or changed: check again
        raise LeaseLostError(f"could not write under the lease of {self.keys.sid}")

    async def fence_args(self) -> tuple[str, str]:
        """The local half of `fenced` for a write done as one Lua script: raises LeaseLostError unless
        this process holds the lease (renewing first when paused past the TTL, as `ensure_held`), and
        returns (lease key, our value); the script compares them before it writes anything (one round
        trip instead of WATCH, GET and MULTI/EXEC). A script that finds them different calls `lost()`."""
        if self._value is None or self._lost:
            raise LeaseLostError(f"this process does not own {self.keys.sid}")
        if time.monotonic() - self._renewed_at > self.ttl_ms / 1000 and not await self.renew():
            raise LeaseLostError(f"the lease of {self.keys.sid} expired while this process was paused")
        assert self._value is not None
        return self.keys.lease, self._value

    def lost(self) -> LeaseLostError:
        """Mark the lease lost (a fenced script found another holder); returns the error to raise."""
        self._lost = True
        return LeaseLostError(f"the lease of {self.keys.sid} was taken over by another process")

    async def release(self) -> None:
        if self._value is not None and not self._lost:
            try:
                await self.redis.eval(_DELETE_IF, 1, self.keys.lease, self._value)
            except UNAVAILABLE:
                log.warning("could not release the lease (Redis unreachable); it expires by itself")
        self._value, self.holder = None, None

    async def keep_renewed(self, on_lost: Callable[[str], Awaitable[None] | None]) -> None:
        """Renew every third of the TTL until cancelled; call `on_lost` once if the lease is lost.

        Redis unreachable is ridden out, however long: past the TTL this process does no side effect
        (`ensure_held` and `fenced` refuse until a renewal succeeds), and the first renewal that
        reaches Redis decides: still our value (nobody could have taken it) and the lease goes on, or
        gone and it is lost."""
        interval = self.ttl_ms / 3000
        delay = interval
        warned = False
        while True:
            await asyncio.sleep(delay)
            try:
                if await self.renew():
                    if warned:
                        log.warning("lease renewed again after Redis came back")
                    delay, warned = interval, False
                    continue
                reason = "the lease was taken over by another process"
            except UNAVAILABLE as exc:
                past_ttl = time.monotonic() - self._renewed_at >= self.ttl_ms / 1000
                if not warned or past_ttl:
                    log.warning("lease renewal failed (Redis unreachable%s), retrying: %s",
                                ", past the TTL: no side effects until it is renewed" if past_ttl else "", exc)
                    warned = True
                delay = min(max(0.2, delay / 2) if not past_ttl else 1.0, interval)
                continue
            log.error("lease lost: %s", reason)
            result = on_lost(reason)
            if result is not None:
                await result
            return


@dataclass(frozen=True)
class LiveOwner:
    session: str
    wallet: str
    holder: Holder

    def describe(self) -> str:
        return f"wallet {self.wallet or '?'} ({self.session}): {self.holder.describe()}"


async def live_owners(redis: AnyRedis) -> list[LiveOwner]:
    """Every wallet session on this Redis with a live owner (a holder dead on this host is none)."""
    found = []
    async for key in redis.scan_iter(match="rev:{*}:lease", count=500):
        holder = _parse_holder(await redis.get(key))
        if holder is None or (holder.host == socket.gethostname() and not pid_alive(holder.pid)):
            continue
        prefix = key[: -len("lease")]
        wallet = await redis.hget(prefix + "meta", "wallet")
        found.append(LiveOwner(session=key[len("rev:{"): -len("}:lease")], wallet=str(wallet or ""), holder=holder))
    return sorted(found, key=lambda o: o.session)
