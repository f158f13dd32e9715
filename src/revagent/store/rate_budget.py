"""Hyperliquid's request-weight budget (1200 per minute per IP), shared through Redis by every
revagent session on this host, so two wallets on one machine never overrun the IP's limit together.

Weights are counted in one-second buckets of a hash; a Lua script sums the last minute's buckets
and spends the weight atomically. A 429 seen by any session pauses all of them (`retry-after`, or
an exponential pause) and halves the shared capacity until a minute passes without another.
Implements the bridge's `RateBudget` protocol.
"""

from __future__ import annotations

import asyncio
import socket
import time

from revagent.store.connection import AnyRedis

_ACQUIRE = """
local now = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < paused then return paused - now end
local factor = tonumber(redis.call('GET', KEYS[3]) or '1')
local cap = math.max(1, math.floor(capacity * factor))
if weight > cap then weight = cap end
local sec = math.floor(now / 1000)
local fields = {}
for i = 0, window - 1 do fields[#fields + 1] = tostring(sec - i) end
local total = 0
for _, v in ipairs(redis.call('HMGET', KEYS[1], unpack(fields))) do
  if v then total = total + tonumber(v) end
end
if total + weight <= cap then
  redis.call('HINCRBY', KEYS[1], tostring(sec), weight)
  redis.call('EXPIRE', KEYS[1], window * 2)
  if redis.call('HLEN', KEYS[1]) > window * 2 then
    for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
      if tonumber(f) <= sec - window then redis.call('HDEL', KEYS[1], f) end
    end
  end
  return 0
end
return 1000 - (now % 1000)
"""

_RATE_LIMITED = """
local now = tonumber(ARGV[1])
local recovery_ms = tonumber(ARGV[3])
local streak = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], recovery_ms)
local pause_ms = tonumber(ARGV[2])
if pause_ms < 0 then pause_ms = math.min(30000, 1000 * 2 ^ (streak - 1)) end
local until_ms = now + pause_ms
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then redis.call('SET', KEYS[1], until_ms, 'PX', pause_ms + 1000) end
redis.call('SET', KEYS[2], math.max(0.1, 0.5 ^ streak), 'PX', recovery_ms)
return streak
"""


class RedisRateBudget:
    """The host-wide weight budget. `scope` defaults to this host's name (an IP's budget)."""

    def __init__(self, redis: AnyRedis, *, capacity: int = 1200, window_s: int = 60, recovery_s: float = 60.0,
                 scope: str | None = None) -> None:
        self.redis = redis
        self.capacity = capacity
        self.window_s = window_s
        self.recovery_ms = int(recovery_s * 1000)
        base = f"rev:host:{scope or socket.gethostname()}:rate"
        self._buckets, self._paused, self._factor, self._streak = (
            f"{base}:buckets", f"{base}:paused_until", f"{base}:factor", f"{base}:streak")
        self._acquire = redis.register_script(_ACQUIRE)
        self._limited = redis.register_script(_RATE_LIMITED)
        self.waited_s = 0.0

    async def acquire(self, weight: int) -> None:
        while True:
            wait_ms = int(await self._acquire(keys=[self._buckets, self._paused, self._factor],
                                              args=[int(time.time() * 1000), weight, self.capacity, self.window_s]))
            if wait_ms <= 0:
                return
            self.waited_s += wait_ms / 1000
            await asyncio.sleep(wait_ms / 1000)

    async def rate_limited(self, retry_after_s: float | None) -> None:
        pause_ms = -1 if retry_after_s is None else int(retry_after_s * 1000)
        await self._limited(keys=[self._paused, self._factor, self._streak],
                            args=[int(time.time() * 1000), pause_ms, self.recovery_ms])

    async def spent(self) -> int:
        """Weight spent in the current window, across every session on the host."""
        sec = int(time.time())
        values = await self.redis.hmget(self._buckets, [str(sec - i) for i in range(self.window_s)])
        return sum(int(v) for v in values if v)
