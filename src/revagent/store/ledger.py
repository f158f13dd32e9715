"""The trade ledger in Redis: append-only streams of exchange facts and of sync's own decisions.

Keys (all under the session's hash tag, see `store/keys.py`):
- `ledger:fills`, `ledger:funding`, `ledger:transfers`: streams, one entry per fact (`k` its identity
  key, `t` its exchange time in epoch ms, `d` its wire JSON). Never trimmed, never rewritten.
- `ledger:fills:keys`, `ledger:funding:keys`, `ledger:transfers:keys`: sets of identity keys. A fact is
  appended only if its key is new, in one Lua script (atomic: a crash never leaves a key without its
  entry), so feeding the same fills twice, from REST and the websocket, records each once.
- `ledger:cursor`: hash of the newest exchange time recorded per stream (`fills`, `funding`,
  `transfers`): where the next REST page starts, so nothing recorded is fetched again.
- `ledger:events`: stream of sync's events (corrections with their reason, drift, reconciliation
  steps, trades closed), capped at `EVENTS_MAXLEN` (approximately).
- `ledger:equity`: sorted set, one point per minute (`<minute ms>|<equity>`, scored by the minute),
  the minute's last value wins; at most `EQUITY_POINTS` points (30 days).
- `sync:snapshot`: the last reconciled account (positions and open orders) as JSON, for diffing at
  the next start.

Who may call: sync (writes), the CLI and the TUI (reads). Writes of exchange facts are idempotent, so
they are not fenced by the lease (a second writer can only add what the exchange says happened).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from revagent.bus import encode_raw
from revagent.models import Fill, LedgerUpdate, UserFunding
from revagent.store.connection import AnyRedis
from revagent.store.keys import Keyspace

EVENTS_MAXLEN = 50_000
EQUITY_POINTS = 43_200  # 30 days at one point a minute
BATCH = 1000  # facts per Lua call
PAGE = 5000  # entries per XRANGE page

Stream = Literal["fills", "funding", "transfers"]

# -- identity keys: what makes a fact "the same" when it is seen twice, from REST and the websocket --
# - a fill is keyed by the exchange's trade id `tid` when it has one (`t:<tid>`); older records (the
#   recorded fixtures) have no `tid`, and their `hash` and even `hash`+`oid` repeat, so the key is a
#   digest of the fill's whole content (`c:<sha256>`);
# - a funding payment by (time, coin): the websocket's `user.funding` carries no hash;
# - a non-funding ledger update (deposit, withdrawal, transfer) by its whole content.

_FILLS = TypeAdapter(list[Fill])


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def fill_key(fill: Fill) -> str:
    """The fill's identity: `t:<tid>` or, without a tid, `c:<digest of the whole fill>`."""
    if fill.tid is not None:
        return f"t:{fill.tid}"
    return "c:" + _digest(fill.model_dump(mode="json", by_alias=True, exclude_none=True))


def funding_key(payment: UserFunding) -> str:
    """One payment per market per funding time: the websocket's copy (no hash) and REST's are the same."""
    return f"f:{payment.time}:{payment.delta.coin}"


def transfer_key(update: LedgerUpdate) -> str:
    return "x:" + _digest(update.model_dump(mode="json", by_alias=True, exclude_none=True))



_APPEND_UNIQUE = """
local added = {}
local cursor = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '-1')
local newest = cursor
for i = 2, #ARGV, 3 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'k', ARGV[i], 't', ARGV[i + 1], 'd', ARGV[i + 2])
    local t = tonumber(ARGV[i + 1])
    if t > newest then newest = t end
    added[#added + 1] = ARGV[i]
  end
end
if newest > cursor then redis.call('HSET', KEYS[3], ARGV[1], tostring(newest)) end
return added
"""


_READ_DOCS = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local out = {}
for i, e in ipairs(entries) do
  local f = e[2]
  for j = 1, #f, 2 do
    if f[j] == 'd' then out[#out + 1] = f[j + 1] end
  end
  if i == #entries then table.insert(out, 1, e[1]) end
end
return out
"""


class LedgerEvent(BaseModel):
    """One event of sync: `kind` (correction, drift, reconcile, trade_closed, ...), why, and details."""

    kind: str
    reason: str
    at: datetime
    market: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class LedgerStore:
    """The ledger repository of one wallet session."""

    def __init__(self, redis: AnyRedis, keys: Keyspace) -> None:
        self.redis = redis
        self.keys = keys
        self.cursor = keys.key("ledger:cursor")
        self.events_key = keys.key("ledger:events")
        self.equity_key = keys.key("ledger:equity")
        self.snapshot_key = keys.key("sync:snapshot")
        self._script = redis.register_script(_APPEND_UNIQUE)
        self._read_docs = redis.register_script(_READ_DOCS)

    def _stream(self, name: Stream) -> str:
        return self.keys.key(f"ledger:{name}")

    # ------------------------------------------------------------------------------ facts
    async def _append_unique(self, name: Stream, items: Sequence[tuple[str, int, str]]) -> set[str]:
        """Append `(key, time_ms, doc)` items whose key is new; returns the keys that were new."""
        added: set[str] = set()
        for start in range(0, len(items), BATCH):
            chunk = items[start:start + BATCH]
            argv: list[Any] = [name]
            for key, ms, doc in chunk:
                argv.extend((key, ms, doc))
            result = await self._script(keys=[self._stream(name) + ":keys", self._stream(name), self.cursor],
                                        args=argv)
            added.update(str(k) for k in result)
        if added:
            await self.redis.publish(self.keys.events, encode_raw("store.changed", {"what": f"ledger.{name}",
                                                                                   "id": None, "op": "put"}))
        return added

    async def record_fills(self, fills: Sequence[Fill]) -> list[Fill]:
        """Record fills exactly once (by `fill_key`). Returns those that were new, in input order."""
        keyed = [(fill_key(f), f) for f in fills]
        added = await self._append_unique("fills", [(k, f.time, _wire(f)) for k, f in keyed])
        seen: set[str] = set()
        out = []
        for k, f in keyed:
            if k in added and k not in seen:
                seen.add(k)
                out.append(f)
        return out

    async def record_funding(self, payments: Sequence[UserFunding]) -> list[UserFunding]:
        keyed = [(funding_key(p), p) for p in payments]
        added = await self._append_unique("funding", [(k, p.time, _wire(p)) for k, p in keyed])
        return _in_order(keyed, added)

    async def record_transfers(self, updates: Sequence[LedgerUpdate]) -> list[LedgerUpdate]:
        keyed = [(transfer_key(u), u) for u in updates]
        added = await self._append_unique("transfers", [(k, u.time, _wire(u)) for k, u in keyed])
        return _in_order(keyed, added)

    async def _read(self, name: Stream) -> list[str]:
        """Every entry's document, oldest first, in pages (a Lua script returns just the documents: a third
        of the reply parsing of XRANGE for 10,000 fills)."""
        docs: list[str] = []
        start = "-"
        while True:
            page = await self._read_docs(keys=[self._stream(name)], args=[start, PAGE])
            if not page:
                return docs
            last, entries = page[0], page[1:]
            docs.extend(entries)
            if len(entries) < PAGE:
                return docs
            start = "(" + last

    async def fills(self) -> list[Fill]:
        """Every recorded fill, in recording order."""
        docs = await self._read("fills")
        if not docs:
            return []
        fills: list[Fill] = _FILLS.validate_json("[" + ",".join(docs) + "]")
        return fills

    async def funding(self) -> list[UserFunding]:
        return [UserFunding.model_validate_json(d) for d in await self._read("funding")]

    async def transfers(self) -> list[LedgerUpdate]:
        return [LedgerUpdate.model_validate_json(d) for d in await self._read("transfers")]

    async def count(self, name: Stream) -> int:
        return int(await self.redis.xlen(self._stream(name)))

    async def last_time_ms(self, name: Stream) -> int | None:
        """The newest exchange time recorded in stream `name` (epoch ms), None when it is empty."""
        raw = await self.redis.hget(self.cursor, name)
        return None if raw is None else int(raw)

    # ------------------------------------------------------------------------------ events
    async def record_event(self, event: LedgerEvent) -> str:
        entry_id: str = await self.redis.xadd(
            self.events_key, {"kind": event.kind, "doc": event.model_dump_json(exclude={"id"})},
            maxlen=EVENTS_MAXLEN, approximate=True)
        return entry_id

    async def events(self, *, count: int = 200, kind: str | None = None) -> list[LedgerEvent]:
        """The newest `count` events (of `kind` when given), oldest first."""
        raw = await self.redis.xrevrange(self.events_key, count=count if kind is None else count * 20)
        out = []
        for entry_id, fields in raw:
            if kind is not None and fields.get("kind") != kind:
                continue
            out.append(LedgerEvent.model_validate_json(fields["doc"]).model_copy(update={"id": entry_id}))
            if len(out) >= count:
                break
        return list(reversed(out))

    # ------------------------------------------------------------------------------ equity
    async def record_equity(self, at: datetime, equity: Decimal) -> None:
        """Keep `equity` as the point of `at`'s minute (the minute's last value wins)."""
        minute = int(at.timestamp()) // 60 * 60_000
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.equity_key, minute, minute)
            pipe.zadd(self.equity_key, {f"{minute}|{equity}": minute})
            pipe.zremrangebyrank(self.equity_key, 0, -(EQUITY_POINTS + 1))
            await pipe.execute()

    async def equity_history(self, since: datetime | None = None) -> list[tuple[datetime, Decimal]]:
        low = "-inf" if since is None else int(since.timestamp() * 1000)
        raw = await self.redis.zrangebyscore(self.equity_key, low, "+inf")
        out = []
        for member in raw:
            ms, _, value = member.partition("|")
            out.append((datetime.fromtimestamp(int(ms) / 1000, UTC), Decimal(value)))
        return out

    # ---------------------------------------------------------------------------- snapshot
    async def save_snapshot(self, doc: dict[str, Any]) -> None:
        await self.redis.set(self.snapshot_key, json.dumps(doc, separators=(",", ":")))

    async def load_snapshot(self) -> dict[str, Any] | None:
        raw = await self.redis.get(self.snapshot_key)
        if raw is None:
            return None
        doc: dict[str, Any] = json.loads(raw)
        return doc


def _wire(model: BaseModel) -> str:
    return model.model_dump_json(by_alias=True, exclude_none=True)


def _in_order(keyed: list[tuple[str, Any]], added: set[str]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for k, item in keyed:
        if k in added and k not in seen:
            seen.add(k)
            out.append(item)
    return out
