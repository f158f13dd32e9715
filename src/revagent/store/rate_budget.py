"""Hyperliquid's request-weight budget (1200 per minute per IP), shared through Redis by every
revagent session on this host, so two wallets on one machine never overrun the IP's limit together.

Weights are counted in one-second buckets of a hash; a Lua script sums the last minute's buckets
and reserves weight atomically. A 429 seen by any session pauses the others (`retry-after`, or an
exponential pause) and halves the shared capacity until a minute passes without another.
Implements the bridge's `RateBudget` protocol.

A request costs no Redis round trip: each process reserves weight in chunks (`chunk`, 40 by
default) and spends them locally; a chunk is usable for `chunk_ttl_s` (then what is left goes back
with the next reservation, or with `release()`), so the host never spends more than it counted
by more than one chunk per process. Lanes (see `rate_budget.Lane`): protection (stops, exits,
cancels) has its own queue, may spend the `headroom` the other lanes must leave, ignores the
capacity shrink, and is paused only by a 429 answered to a protective request.

`budget_for` picks the budget of a venue: none (`UnlimitedRateBudget`, counting only) for the paper
venue unless `[rate] paper_weight_per_minute` is set, else one shared budget per upstream host.
"""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlparse

from revagent.exchange.hyperliquid.rate_budget import (
    HYPERLIQUID_WEIGHT_PER_MINUTE,
    LANES,
    Lane,
    RateBudget,
    UnlimitedRateBudget,
)
from revagent.store.connection import AnyRedis

# KEYS: buckets, paused_all, paused_low, factor. ARGV: now_ms, need, want, capacity, window, lane index,
# lane headroom, return_sec, return_weight. Returns {granted, wait_ms, paused_until_ms}.
_RESERVE = """
local now = tonumber(ARGV[1])
local need = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local capacity = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local lane = tonumber(ARGV[6])
local headroom = tonumber(ARGV[7])
local ret_sec = tonumber(ARGV[8])
local ret_weight = tonumber(ARGV[9])
local sec = math.floor(now / 1000)
if ret_weight > 0 and ret_sec > sec - window then
  local had = tonumber(redis.call('HGET', KEYS[1], tostring(ret_sec)) or '0')
  if had > 0 then redis.call('HINCRBY', KEYS[1], tostring(ret_sec), -math.min(had, ret_weight)) end
end
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if lane > 0 then paused = math.max(paused, tonumber(redis.call('GET', KEYS[3]) or '0')) end
if now < paused then return {0, paused - now, paused} end
local cap = capacity
if lane > 0 then
  local factor = tonumber(redis.call('GET', KEYS[4]) or '1')
  cap = math.max(1, math.floor(capacity * factor) - headroom)
end
if need > cap then need = cap end
local fields = {}
for i = 0, window - 1 do fields[#fields + 1] = tostring(sec - i) end
local total = 0
for _, v in ipairs(redis.call('HMGET', KEYS[1], unpack(fields))) do
  if v then total = total + tonumber(v) end
end
local free = cap - total
if free >= need then
  local grant = math.max(need, math.min(want, free))
  redis.call('HINCRBY', KEYS[1], tostring(sec), grant)
  redis.call('EXPIRE', KEYS[1], window * 2)
  if redis.call('HLEN', KEYS[1]) > window * 2 then
    for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
      if tonumber(f) <= sec - window then redis.call('HDEL', KEYS[1], f) end
    end
  end
  return {grant, 0, paused}
end
return {0, 1000 - (now % 1000), paused}
"""

_RETURN = """
local had = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local back = math.min(had, tonumber(ARGV[2]))
if back > 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], -back) end
return back
"""

# KEYS: paused (all lanes or the low ones), factor, streak.
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


class _Chunk:
    """Weight this process reserved in one second of the shared window and has not spent yet."""

    __slots__ = ("expires", "left", "sec")

    def __init__(self) -> None:
        self.left = 0
        self.sec = 0
        self.expires = 0.0


class RedisRateBudget:
    """The host-wide weight budget. `scope` defaults to this host's name (an IP's budget).

    `headroom`: weight per lane the lane must leave free (only higher lanes may spend it);
    `chunk`: weight reserved per Redis round trip (1: every request asks Redis).
    """

    def __init__(self, redis: AnyRedis, *, capacity: int = HYPERLIQUID_WEIGHT_PER_MINUTE, window_s: int = 60,
                 recovery_s: float = 60.0, scope: str | None = None, chunk: int = 40, chunk_ttl_s: float = 5.0,
                 headroom: dict[Lane, int] | None = None) -> None:
        self.redis = redis
        self.capacity = capacity
        self.window_s = window_s
        self.recovery_ms = int(recovery_s * 1000)
        self.chunk = max(1, chunk)
        self.chunk_ttl_s = chunk_ttl_s
        self.headroom: dict[Lane, int] = dict(headroom or {})
        # One hash tag for the budget's keys: its scripts touch several, which must share a cluster slot.
        base = f"rev:host:{{{scope or socket.gethostname()}}}:rate"
        self._buckets, self._paused, self._paused_low, self._factor, self._streak = (
            f"{base}:buckets", f"{base}:paused_until", f"{base}:paused_low", f"{base}:factor", f"{base}:streak")
        self._reserve = redis.register_script(_RESERVE)
        self._return = redis.register_script(_RETURN)
        self._limited = redis.register_script(_RATE_LIMITED)
        self._chunks: dict[Lane, _Chunk] = {lane: _Chunk() for lane in LANES}
        self._locks: dict[Lane, asyncio.Lock] = {lane: asyncio.Lock() for lane in LANES}
        self._paused_all_ms = 0  # wall ms, from this process's own 429s: every lane
        self._paused_low_ms = 0  # every lane but `protect`
        self.waited_s = 0.0
        self.round_trips = 0
        self.spent_by_lane: dict[str, int] = dict.fromkeys(LANES, 0)

    def _take_local(self, weight: int, lane: Lane, mono: float) -> bool:
        """Spend `weight` from a live chunk this lane may use (its own, then those of lower lanes)."""
        for other in LANES[LANES.index(lane):]:
            c = self._chunks[other]
            if c.left >= weight and mono < c.expires:
                c.left -= weight
                self.spent_by_lane[lane] += weight
                return True
        return False

    async def acquire(self, weight: int, lane: Lane = "read") -> None:
        weight = max(1, min(weight, self.capacity))
        async with self._locks[lane]:  # first come, first served within the lane; lanes never queue on each other
            while True:
                now_ms = int(time.time() * 1000)
                paused = self._paused_all_ms if lane == "protect" else max(self._paused_all_ms,
                                                                           self._paused_low_ms)
                if now_ms < paused:
                    await self._wait((paused - now_ms) / 1000)
                    continue
                mono = time.monotonic()
                if self._take_local(weight, lane, mono):
                    return
                c = self._chunks[lane]
                ret_sec, ret_weight = c.sec, c.left
                c.left = 0
                self.round_trips += 1
                granted, wait_ms, _ = (int(x) for x in await self._reserve(
                    keys=[self._buckets, self._paused, self._paused_low, self._factor],
                    args=[now_ms, weight, max(weight, self.chunk), self.capacity, self.window_s,
                          LANES.index(lane), self.headroom.get(lane, 0), ret_sec, ret_weight]))
                if granted > 0:
                    c.left, c.sec, c.expires = granted - weight, now_ms // 1000, mono + self.chunk_ttl_s
                    self.spent_by_lane[lane] += weight
                    return
                await self._wait(max(1, wait_ms) / 1000)

    async def _wait(self, seconds: float) -> None:
        self.waited_s += seconds
        await asyncio.sleep(seconds)

    async def rate_limited(self, retry_after_s: float | None, lane: Lane = "read") -> None:
        pause_ms = -1 if retry_after_s is None else int(retry_after_s * 1000)
        paused_key = self._paused if lane == "protect" else self._paused_low
        for c in self._chunks.values():
            c.left = 0  # the exchange says the IP is over: nothing reserved earlier is spent locally any more
        streak = int(await self._limited(keys=[paused_key, self._factor, self._streak],
                                         args=[int(time.time() * 1000), pause_ms, self.recovery_ms]))
        local_ms = pause_ms if pause_ms >= 0 else min(30_000, 1000 * 2 ** (streak - 1))
        until = int(time.time() * 1000) + local_ms
        if lane == "protect":
            self._paused_all_ms = max(self._paused_all_ms, until)
        self._paused_low_ms = max(self._paused_low_ms, until)

    async def release(self) -> int:
        """Give back what this process reserved and did not spend (at shutdown). Returns the weight."""
        back = 0
        now_sec = int(time.time())
        for c in self._chunks.values():
            if c.left > 0 and c.sec > now_sec - self.window_s:
                back += int(await self._return(keys=[self._buckets], args=[str(c.sec), c.left]))
            c.left = 0
        return back

    async def spent(self) -> int:
        """Weight counted in the current window (reserved, spent or not), across every session on the host."""
        sec = int(time.time())
        values = await self.redis.hmget(self._buckets, [str(sec - i) for i in range(self.window_s)])
        return sum(int(v) for v in values if v)


def budget_for(redis: AnyRedis, *, network: str, base_url: str, weight_per_minute: int,
               paper_weight_per_minute: int = 0, chunk: int = 40, egress: str = "") -> RateBudget:
    """The rate budget of one venue: none for the paper venue unless `paper_weight_per_minute` > 0; else
    the host's shared budget of the venue's upstream host (mainnet and testnet are separate limits),
    with headroom that only protection may spend (5% kept from entries, 15% from reads). The budget
    is one per egress address (`egress`, default this host's name): every process, every wallet and
    every host that sets the same `[rate] egress` shares it, as Hyperliquid counts weight per IP."""
    capacity = paper_weight_per_minute if network == "paper" else weight_per_minute
    if capacity <= 0:
        return UnlimitedRateBudget()
    upstream = urlparse(base_url).netloc or base_url
    return RedisRateBudget(redis, capacity=capacity, scope=f"{egress or socket.gethostname()}:{upstream}", chunk=chunk,
                           headroom={"trade": capacity // 20, "read": capacity * 3 // 20})
