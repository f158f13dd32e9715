"""Threads, their transcripts, token usage and cost, and copilot proposals, in Redis.

Keys (all under the session's hash tag, named through `Keyspace.key`):

- `threads`                   hash: thread id -> `ThreadRecord` JSON;
- `thread:<id>:log`           list: the thread's transcript, one `TranscriptEntry` JSON per item,
                              append-only (compaction appends a `summary` entry, it never deletes);
- `thread:<id>:usage`         hash: token and cost counters of the thread (`UsageTotals` fields);
- `usage:day:<YYYY-MM-DD>`    hash: the same counters for one UTC day, all threads (kept 90 days);
- `proposals`                 hash: proposal id -> `Proposal` JSON (copilot mode).

Transcripts are isolated per thread: a thread's turns only ever read its own log. Costs are kept
as integer nano-dollars (`HINCRBY`), so sums are exact; `UsageTotals.cost_usd` turns them back into
a Decimal. Every write publishes a `store.changed` invalidation in the same transaction (one per
transaction: a turn's commit of entries, usage and thread record publishes one, `transcript`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, PrivateAttr
from redis.exceptions import WatchError

from revagent.bus import encode_raw
from revagent.models import UtcDateTime, new_id
from revagent.store.connection import AnyRedis, queue_publish
from revagent.store.keys import Keyspace

ThreadKind = Literal["chat", "alert"]
ThreadStatus = Literal["open", "closed", "stopped"]
ApprovalMode = Literal["autonomous", "copilot", "readonly"]
EntryKind = Literal["user", "assistant", "tool_results", "summary", "turn_start", "turn_end", "notice"]
ProposalStatus = Literal["pending", "approved", "rejected", "expired", "executed", "failed"]

M = TypeVar("M", bound=BaseModel)
NANO = Decimal(1_000_000_000)
DAY_USAGE_TTL_SECONDS = 90 * 86400
_COUNTERS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
             "cost_nusd", "calls")


class ThreadRecord(BaseModel):
    """One thread. `title` is what the trader sees (and what `ask --thread NAME` matches); `mode`
    overrides the approval mode of the thread's type (None: the wallet's default). `alert_key` is
    the trigger key of the alert that created an alert thread. `stopped_reason` says why a
    `stopped` thread stopped (a budget)."""

    id: str = Field(default_factory=lambda: new_id("th"))
    kind: ThreadKind = "chat"
    title: str
    status: ThreadStatus = "open"
    mode: ApprovalMode | None = None
    alert_key: str | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    turns: int = 0
    stopped_reason: str = ""


class TranscriptEntry(BaseModel):
    """One item of a thread's log.

    - `user`: `text` is the trader's message(s) of a turn (messages queued mid-turn are merged);
    - `assistant`: `blocks` are `{"type": "text", "text"}` and `{"type": "tool_use", "id", "name",
      "input"}` dicts in the model's order; `interrupted` when the trader stopped the stream;
    - `tool_results`: `blocks` are `{"tool_use_id", "content", "is_error"}` plus audit fields
      (`tool`, `orders`, `trade_id`, `proposal_id`); images are not stored (a text stands in; a
      running turn's alert-brief chart waits beside the log, `Keyspace.turn_image`, until it ends);
    - `summary`: compaction; `text` summarises every entry with `seq < upto_seq`;
    - `turn_start` / `turn_end`: turn markers; `turn_end.status` is `done`, `interrupted`,
      `budget`, `error` or `max_steps`, and `data` carries the turn's usage and cost;
    - `notice`: something the trader was told (a retry, a fallback, a compaction).
    """

    seq: int = 0
    kind: EntryKind
    turn_id: str
    at: UtcDateTime
    text: str = ""
    blocks: list[dict[str, Any]] = Field(default_factory=list)
    interrupted: bool = False
    upto_seq: int | None = None
    status: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    _chars: int | None = PrivateAttr(default=None)

    def prompt_chars(self) -> int:
        """The characters this entry adds to a prompt (text and blocks as JSON), computed once.
        (Read through `__pydantic_private__`: pydantic's attribute fallback costs ~3 us a read, and
        the compaction check reads every live entry each turn.)"""
        private = self.__pydantic_private__
        chars: int | None = private.get("_chars") if private is not None else None
        if chars is None:
            chars = len(self.text) + sum(len(json.dumps(b, default=str)) for b in self.blocks)
            self._chars = chars
        return chars


class UsageTotals(BaseModel):
    """Token counters and cost (exact) of a thread or a day."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_nusd: int = 0
    calls: int = 0

    @property
    def cost_usd(self) -> Decimal:
        return Decimal(self.cost_nusd) / NANO

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> UsageTotals:
        return cls(**{k: int(v) for k, v in raw.items() if k in _COUNTERS})


class Proposal(BaseModel):
    """An order the agent proposed in copilot mode: `tool` and `arguments` as the model called it,
    `preview` the risk engine's verdict summary when it was proposed. Approving executes the same
    tool call (same thread and tool call id, hence the same client order ids)."""

    id: str = Field(default_factory=lambda: new_id("p"))
    thread_id: str
    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    summary: str
    preview: dict[str, Any] = Field(default_factory=dict)
    status: ProposalStatus = "pending"
    created_at: UtcDateTime
    expires_at: UtcDateTime | None = None
    decided_at: UtcDateTime | None = None
    decided_by: str = ""
    result: str = ""


def nano_usd(cost: Decimal) -> int:
    """USD -> integer nano-dollars (rounded half-up; prices are multiples of 1e-8 per token)."""
    return int((cost * NANO).to_integral_value())


@dataclass
class UsageDelta:
    """One model call's usage for `ThreadStore.commit`: token counts and the exact cost in USD."""

    at: datetime
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class ThreadTouch:
    """End-of-turn update of a thread record, applied inside the commit's transaction by a script
    that reads the record there (a rename or mode change made meanwhile by another process is
    kept): `turns` + 1, `updated_at` = `at`, and with `stopped_reason` the thread is `stopped`."""

    at: datetime
    stopped_reason: str = ""


@dataclass
class Committed:
    """What `ThreadStore.commit` wrote: the entries numbered (their `seq`), and the day's usage
    after the write when it was asked for (`day`)."""

    entries: list[TranscriptEntry] = field(default_factory=list)
    day_usage: UsageTotals | None = None


TURN_IMAGE_TTL_S = 86_400
"""A turn's kept chart outlives a crash by a day at most (a resume after that shows the placeholder)."""


@dataclass(frozen=True)
class TurnImage:
    """A turn's alert-brief chart as kept beside its log (`repr` leaves the bytes out: never logged)."""

    turn_id: str
    media_type: str
    data_b64: str = field(repr=False)


@dataclass
class TurnStart:
    """`ThreadStore.begin`: the thread record (None if missing), its whole transcript (synced with
    Redis), and the day's usage when asked for."""

    thread: ThreadRecord | None
    entries: list[TranscriptEntry]
    day_usage: UsageTotals | None = None


# Runs inside the commit's MULTI: the record is read where it is written, so nothing another
# process changed in it (title, mode, status) is overwritten. cjson re-encodes the record (key
# order and escaping differ; the JSON means the same). It never raises (a record it cannot read is
# left alone), so it cannot make the transaction half-apply.
_TOUCH_THREAD = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local ok, t = pcall(cjson.decode, raw)
if not ok or type(t) ~= 'table' then return 0 end
t['turns'] = (tonumber(t['turns']) or 0) + 1
t['updated_at'] = ARGV[2]
if ARGV[3] ~= '' then
  t['status'] = 'stopped'
  t['stopped_reason'] = ARGV[3]
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(t))
return t['turns']
"""


# KEYS: the thread's usage hash, the day's; ARGV: the day's TTL, then counter name, increment pairs.
_ADD_USAGE = """
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""


class ThreadStore:
    """Threads, transcripts, usage and proposals of one session.

    Transcript cache: logs are append-only, so each instance keeps the parsed prefix of every log
    it read, and extends it with its own appends (the lengths `RPUSH` returns say where they
    landed; an append that lands past the cached end, because another writer appended, marks the
    log for a re-read instead). `transcript()` always asks Redis for what was appended since (one
    `LRANGE`: any process, any reader). `cached_transcript()` trusts the cache when it is known to
    be complete: only for the owning process inside a turn it runs, after `begin()` synced it (the
    owner is the only writer of its threads; `forget()` drops the cache after a takeover)."""

    def __init__(self, redis: AnyRedis, keys: Keyspace) -> None:
        self.redis = redis
        self.keys = keys
        self.threads_key = keys.key("threads")
        self.proposals_key = keys.key("proposals")
        self._logs: dict[str, list[TranscriptEntry]] = {}  # parsed prefix of each log (logs are append-only)
        self._complete: set[str] = set()  # logs whose cache holds every entry (synced, own appends followed)
        self._log_locks: dict[str, asyncio.Lock] = {}

    # -- keys ---------------------------------------------------------------------------------
    def log_key(self, thread_id: str) -> str:
        return self.keys.key(f"thread:{thread_id}:log")

    def usage_key(self, thread_id: str) -> str:
        return self.keys.key(f"thread:{thread_id}:usage")

    def image_key(self, thread_id: str, turn_id: str) -> str:
        return self.keys.turn_image(thread_id, turn_id)

    def day_key(self, day: date) -> str:
        return self.keys.key(f"usage:day:{day.isoformat()}")

    def _changed(self, pipe: Any, what: str, rid: str | None) -> None:
        queue_publish(pipe, self.keys.events, encode_raw("store.changed", {"what": what, "id": rid, "op": "put"}))

    # -- threads ----------------------------------------------------------------------------
    async def get(self, thread_id: str) -> ThreadRecord | None:
        raw = await self.redis.hget(self.threads_key, thread_id)
        return None if raw is None else ThreadRecord.model_validate_json(raw)

    async def put(self, thread: ThreadRecord) -> ThreadRecord:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.threads_key, thread.id, thread.model_dump_json())
            self._changed(pipe, "threads", thread.id)
            await pipe.execute()
        return thread

    async def create_if_absent(self, thread: ThreadRecord) -> tuple[ThreadRecord, bool]:
        """Store `thread` unless its id exists; returns the stored record and whether it was new."""
        added = await self.redis.hsetnx(self.threads_key, thread.id, thread.model_dump_json())
        if added:
            await self.redis.publish(self.keys.events,
                                     encode_raw("store.changed", {"what": "threads", "id": thread.id, "op": "put"}))
            return thread, True
        existing = await self.get(thread.id)
        assert existing is not None
        return existing, False

    async def all(self) -> list[ThreadRecord]:
        raw: dict[str, str] = await self.redis.hgetall(self.threads_key)
        return sorted((ThreadRecord.model_validate_json(v) for v in raw.values()), key=lambda t: (t.created_at, t.id))

    async def find(self, name_or_id: str) -> ThreadRecord | None:
        """A thread by id, else the newest open one whose title is `name_or_id` (case-insensitive)."""
        by_id = await self.get(name_or_id)
        if by_id is not None:
            return by_id
        wanted = name_or_id.strip().lower()
        matches = [t for t in await self.all() if t.title.lower() == wanted and t.status != "closed"]
        return matches[-1] if matches else None

    # -- transcript -------------------------------------------------------------------------
    def forget(self, thread_id: str | None = None) -> None:
        """Drop the cached transcript of `thread_id` (all with None): the next read re-reads it.
        Call after a takeover, or whenever another process may have written the logs."""
        if thread_id is None:
            self._logs.clear()
            self._complete.clear()
        else:
            self._logs.pop(thread_id, None)
            self._complete.discard(thread_id)

    def _merge(self, thread_id: str, start: int, items: list[TranscriptEntry] | list[str]) -> None:
        """Put `items` (entries, or raw JSON) at log index `start` of the cache. Items the cache
        already has are skipped; a gap (items landing past the cached end) leaves the cache as it
        is and marks it incomplete. Synchronous: never interleaves with another merge."""
        cached = self._logs.setdefault(thread_id, [])
        if start > len(cached):
            self._complete.discard(thread_id)
            return
        for i in range(len(cached) - start, len(items)):
            item = items[i]
            entry = TranscriptEntry.model_validate_json(item) if isinstance(item, str) else item
            cached.append(entry if entry.seq == start + i else entry.model_copy(update={"seq": start + i}))

    async def append(self, thread_id: str, *entries: TranscriptEntry) -> list[TranscriptEntry]:
        """Append entries (one transaction). An entry's `seq` is its index in the log: it is not
        stored, readers number entries as they read them. Returns the entries numbered."""
        return (await self.commit(thread_id, entries)).entries

    async def commit(self, thread_id: str, entries: Sequence[TranscriptEntry] = (), *,
                     usage: Sequence[UsageDelta] = (), touch: ThreadTouch | None = None,
                     day_usage: date | None = None, image: TurnImage | None = None,
                     drop_image: str | None = None) -> Committed:
        """Every write of one step of a turn in one MULTI/EXEC: append `entries` to the log, keep
        `image` (a turn's alert-brief chart, `TURN_IMAGE_TTL_S`) or delete turn `drop_image`'s, add
        `usage` to the thread's and the days' counters, apply `touch` to the thread record, and
        publish one `store.changed` (`what`: `transcript` when entries were written, else `usage`,
        else `threads`; `id`: the thread). With `day_usage`, that day's totals are read
        inside the same transaction (after the write) and returned.

        All or nothing: Redis does not roll a transaction back, but none of these commands can fail
        at run time on keys of the right types (the touch script never raises), so EXEC applies every
        command or, when the connection fails before it, none. On an exception the cache is left
        as it was but no longer trusted (the next read asks Redis); the caller cannot tell whether
        EXEC ran when the connection failed after sending it (`TurnRunner` then looks for the entries
        in the log before writing them again)."""
        if not (entries or usage or touch is not None or day_usage is not None or image or drop_image):
            return Committed()
        key = self.log_key(thread_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if entries:
                pipe.rpush(key, *(e.model_dump_json() for e in entries))
            if image is not None:
                pipe.set(self.image_key(thread_id, image.turn_id), json.dumps(
                    {"media_type": image.media_type, "data_b64": image.data_b64}), ex=TURN_IMAGE_TTL_S)
            if drop_image:
                pipe.delete(self.image_key(thread_id, drop_image))
            if usage:
                self._queue_usage(pipe, thread_id, usage)
            if touch is not None:
                stopped = touch.stopped_reason
                pipe.eval(_TOUCH_THREAD, 1, self.threads_key, thread_id,
                          touch.at.astimezone(UTC).isoformat().replace("+00:00", "Z"), stopped)
            if entries or usage or touch is not None:  # one invalidation for the lot (each costs every
                # follower a message to parse): it names the most visible change
                self._changed(pipe, "transcript" if entries else "usage" if usage else "threads", thread_id)
            if day_usage is not None:
                pipe.hgetall(self.day_key(day_usage))
            try:
                results = await pipe.execute()
            except BaseException:
                self._complete.discard(thread_id)  # what applied is unknown: the next read asks Redis
                raise
        out: list[TranscriptEntry] = []
        if entries:
            start = int(results[0]) - len(entries)  # RPUSH answers the log's length after the push
            out = [e.model_copy(update={"seq": start + i}) for i, e in enumerate(entries)]
            self._merge(thread_id, start, out)
        return Committed(out, UsageTotals.from_hash(results[-1]) if day_usage is not None else None)

    async def begin(self, thread_id: str, *, day_usage: date | None = None) -> TurnStart:
        """The start of a turn, in one round trip (a pipeline, no transaction): the thread record,
        what was appended to its log since the cache was filled, and the day's usage if asked."""
        key = self.log_key(thread_id)
        async with self._log_locks.setdefault(thread_id, asyncio.Lock()):
            base = len(self._logs.get(thread_id, ()))
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(self.threads_key, thread_id)
                pipe.llen(key)
                pipe.lrange(key, base, -1)
                if day_usage is not None:
                    pipe.hgetall(self.day_key(day_usage))
                results = await pipe.execute()
            raw_thread, length, raws = results[0], int(results[1]), results[2]
            if length < base:  # the log was deleted or replaced: read it again from scratch
                self.forget(thread_id)
                entries = await self._sync(thread_id)
            else:
                self._merge(thread_id, base, raws)
                self._complete.add(thread_id)
                entries = list(self._logs[thread_id])
        thread = None if raw_thread is None else ThreadRecord.model_validate_json(raw_thread)
        day = UsageTotals.from_hash(results[3]) if day_usage is not None else None
        return TurnStart(thread, entries, day)

    async def turn_image(self, thread_id: str, turn_id: str) -> TurnImage | None:
        """The turn's kept alert-brief chart (`commit(image=...)`), None when there is none or it expired."""
        raw = await self.redis.get(self.image_key(thread_id, turn_id))
        if raw is None:
            return None
        doc = json.loads(raw)
        return TurnImage(turn_id, str(doc["media_type"]), str(doc["data_b64"]))

    async def _sync(self, thread_id: str) -> list[TranscriptEntry]:
        base = len(self._logs.get(thread_id, ()))
        raws: list[str] = await self.redis.lrange(self.log_key(thread_id), base, -1)
        self._merge(thread_id, base, raws)
        self._complete.add(thread_id)
        return list(self._logs[thread_id])

    async def transcript(self, thread_id: str, start: int = 0) -> list[TranscriptEntry]:
        """The log from `start`. Logs are append-only, so the parsed prefix is kept and only entries
        appended since the last read (by anyone) are fetched and parsed: one LRANGE per call."""
        async with self._log_locks.setdefault(thread_id, asyncio.Lock()):  # two readers never extend twice
            entries = await self._sync(thread_id)
        return entries[start:] if start else entries

    async def cached_transcript(self, thread_id: str) -> list[TranscriptEntry]:
        """The log from memory, without a round trip when the cache is complete (else as
        `transcript`). Only for the process that owns the thread, inside a turn it runs (after
        `begin`): another process's appends are not seen until the next `begin` or `transcript`."""
        if thread_id in self._complete:
            return list(self._logs[thread_id])
        return await self.transcript(thread_id)

    async def transcript_length(self, thread_id: str) -> int:
        return int(await self.redis.llen(self.log_key(thread_id)))

    # -- usage ------------------------------------------------------------------------------
    def _queue_usage(self, pipe: Any, thread_id: str, usage: Sequence[UsageDelta]) -> None:
        """`usage` summed per UTC day, added to the thread's and that day's counters: one script call
        per day (rather than a dozen HINCRBYs, each a reply for redis-py to parse)."""
        per_day: dict[str, dict[str, int]] = {}
        for u in usage:
            totals = per_day.setdefault(self.day_key(u.at.astimezone(UTC).date()), dict.fromkeys(_COUNTERS, 0))
            for name, value in (("input_tokens", u.input_tokens), ("output_tokens", u.output_tokens),
                                ("cache_creation_input_tokens", u.cache_creation_input_tokens),
                                ("cache_read_input_tokens", u.cache_read_input_tokens),
                                ("cost_nusd", nano_usd(u.cost)), ("calls", 1)):
                totals[name] += value
        for day, totals in per_day.items():
            counters = [x for name, value in totals.items() if value for x in (name, value)]
            pipe.eval(_ADD_USAGE, 2, self.usage_key(thread_id), day, DAY_USAGE_TTL_SECONDS, *counters)

    async def add_usage(self, thread_id: str, at: datetime, *, input_tokens: int, output_tokens: int,
                        cache_creation_input_tokens: int, cache_read_input_tokens: int, cost: Decimal) -> None:
        """Add one model call's usage to the thread's and the day's counters (one transaction)."""
        await self.commit(thread_id, usage=[UsageDelta(at, input_tokens, output_tokens, cache_creation_input_tokens,
                                                       cache_read_input_tokens, cost)])

    async def thread_usage(self, thread_id: str) -> UsageTotals:
        return UsageTotals.from_hash(await self.redis.hgetall(self.usage_key(thread_id)))

    async def day_usage(self, day: date) -> UsageTotals:
        return UsageTotals.from_hash(await self.redis.hgetall(self.day_key(day)))

    # -- proposals --------------------------------------------------------------------------
    async def put_proposal(self, proposal: Proposal) -> Proposal:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.proposals_key, proposal.id, proposal.model_dump_json())
            self._changed(pipe, "proposals", proposal.id)
            await pipe.execute()
        return proposal

    async def get_proposal(self, proposal_id: str) -> Proposal | None:
        raw = await self.redis.hget(self.proposals_key, proposal_id)
        return None if raw is None else Proposal.model_validate_json(raw)

    async def proposals(self, status: ProposalStatus | None = None) -> list[Proposal]:
        raw: dict[str, str] = await self.redis.hgetall(self.proposals_key)
        items = sorted((Proposal.model_validate_json(v) for v in raw.values()), key=lambda p: (p.created_at, p.id))
        return [p for p in items if status is None or p.status == status]

    async def decide_proposal(self, proposal_id: str, status: ProposalStatus, *, by: str, at: datetime,
                              result: str = "", only_if: tuple[ProposalStatus, ...] = ("pending",)) -> Proposal | None:
        """Move a proposal to `status` if it is in one of `only_if` (atomic: WATCH on the hash).
        Returns the updated proposal, or None when it does not exist or was already decided."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.proposals_key)
                    raw = await pipe.hget(self.proposals_key, proposal_id)
                    if raw is None:
                        await pipe.unwatch()
                        return None
                    current = Proposal.model_validate_json(raw)
                    if current.status not in only_if:
                        await pipe.unwatch()
                        return None
                    updated = current.model_copy(update={"status": status, "decided_at": at, "decided_by": by,
                                                         "result": result or current.result})
                    pipe.multi()
                    pipe.hset(self.proposals_key, proposal_id, updated.model_dump_json())
                    self._changed(pipe, "proposals", proposal_id)
                    await pipe.execute()
                    return updated
                except WatchError:  # somebody decided concurrently: read again
                    continue


def dumps_compact(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), default=str)


# KEYS: a hash; ARGV: the digest of its content at the caller's last read ('' for none). Answers
# the digest alone (a string) when the content is unchanged, else the array {digest, field, value,
# ...} (just {digest} for an empty hash): one round trip and a 40-byte reply instead of the hash.
# The digest is of the fields and values in the server's order, joined by NUL (no JSON value or id
# contains one): an equal digest means equal content; a reordering without a change (rehashing)
# only costs a full answer.
_READ_IF_CHANGED = """
local flat = redis.call('HGETALL', KEYS[1])
local digest = redis.sha1hex(table.concat(flat, '\\0'))
if digest == ARGV[1] then return digest end
table.insert(flat, 1, digest)
return flat
"""


class ParsedHashCache(Generic[M]):
    """A read-through cache of a hash of JSON models (watchers, notes, time alerts), for the turn
    engine's snapshot, which reads hundreds of watchers every turn.

    - Only values whose JSON changed since the last read are parsed again (~40 us per model saved).
    - With `live=True` the owner promises to call `invalidate()` on every `store.changed` of this
      hash (its invalidation follower does): then `all()` reads Redis only when something changed,
      or when the copy is older than `max_age_s` (a safety net for a missed invalidation). An
      HGETALL of 500 watchers costs ~2-5 ms in redis-py's pure-Python RESP parser, so this matters:
      `invalidate(record_id)` (one record put or deleted) makes the next `all()` fetch only the
      records named since (one HMGET); `invalidate()` re-reads the whole hash.
    - With `live=False` (default) every `all()` asks Redis, and is always fresh: a script answers
      with a digest of the hash alone when nothing changed since the last read, so an unchanged
      hash of 500 watchers costs one small round trip, not an HGETALL to parse (the server does the
      hashing: ~0.3 ms for 500 watchers, off this process).
    `key` orders the result like the repository does. Unchanged records keep their parsed object
    (the snapshot remembers work per object)."""

    def __init__(self, redis: AnyRedis, hash_key: str, model: type[M], key: Callable[[M], Any], *,
                 live: bool = False, max_age_s: float = 30.0) -> None:
        self.redis = redis
        self.hash_key = hash_key
        self.model = model
        self.key = key
        self.live = live
        self.max_age_s = max_age_s
        self._parsed: dict[str, tuple[str, M]] = {}
        self._sorted: list[M] | None = None  # None: the whole hash must be read again
        self._dirty: set[str] = set()  # records changed since `_sorted` was read
        self._read_at = 0.0
        self._generation = 0
        self._digest = ""  # of the hash's content at the last full read (cold reads)

    def invalidate(self, record_id: str | None = None) -> None:
        """The record `record_id` changed (put or deleted); None: anything in the hash may have."""
        self._generation += 1
        if record_id is None:
            self._sorted = None
        else:
            self._dirty.add(record_id)

    def _parse(self, rid: str, value: str) -> tuple[str, M]:
        hit = self._parsed.get(rid)
        return hit if hit is not None and hit[0] == value else (value, self.model.model_validate_json(value))

    async def all(self) -> list[M]:
        fresh = self.live and self._sorted is not None and time.monotonic() - self._read_at < self.max_age_s
        if fresh and not self._dirty:
            assert self._sorted is not None
            return list(self._sorted)
        generation = self._generation
        if fresh:  # only some records changed: fetch those
            ids = sorted(self._dirty)
            values: list[str | None] = await self.redis.hmget(self.hash_key, ids)
            parsed = dict(self._parsed)
            for rid, value in zip(ids, values, strict=True):
                if value is None:
                    parsed.pop(rid, None)
                else:
                    parsed[rid] = self._parse(rid, value)
        elif self.live:
            raw: dict[str, str] = await self.redis.hgetall(self.hash_key)
            parsed = {rid: self._parse(rid, value) for rid, value in raw.items()}
        else:
            digest = self._digest
            answer: str | list[str] = await self.redis.eval(_READ_IF_CHANGED, 1, self.hash_key, digest)
            if isinstance(answer, str):  # unchanged since the read `_parsed` holds
                if self._sorted is not None:
                    return list(self._sorted)
                parsed = self._parsed
            else:
                flat = answer[1:]
                parsed = {flat[i]: self._parse(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)}
                self._digest = answer[0]
        self._parsed = parsed
        ordered = sorted((m for _, m in parsed.values()), key=self.key)
        if generation == self._generation:  # an invalidation during the read keeps the cache unsure
            self._sorted, self._read_at = ordered, time.monotonic()
            self._dirty.clear()
        return list(ordered)
