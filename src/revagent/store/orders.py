"""The order journal and the trade plans: what the gateway decided and sent, keyed so that a
retried action finds its own orders (by client order id) and never places them twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from redis.exceptions import ResponseError

from revagent.bus import encode_raw
from revagent.models import OrderRecord, TradePlan, UtcDateTime, utc_now
from revagent.store.connection import AnyRedis
from revagent.store.keys import Keyspace
from revagent.store.lease import Lease

LOG_MAXLEN = 20_000

Command = tuple[str, ...]

# One bookkeeping step as one round trip: the lease check (KEYS[1] equals ARGV[1], skipped when
# ARGV[1] is '') and every write of the step, atomically (a script runs alone). ARGV[2] is the
# number of commands; each is its argument count, then its arguments. Two commands are the
# script's own: JSONMERGE key field item... appends the items missing from the JSON list at
# key/field (the action index), HDELIF key field value deletes key/field if it holds value.
_STEP = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASELOST the lease is held by another process')
end
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[i])
  local name = ARGV[i + 1]
  if name == 'JSONMERGE' then
    local key, field = ARGV[i + 2], ARGV[i + 3]
    local raw = redis.call('HGET', key, field)
    local list = raw and cjson.decode(raw) or {}
    local seen = {}
    for _, v in ipairs(list) do seen[v] = true end
    for j = i + 4, i + n do
      if not seen[ARGV[j]] then
        list[#list + 1] = ARGV[j]
        seen[ARGV[j]] = true
      end
    end
    redis.call('HSET', key, field, cjson.encode(list))
  elseif name == 'HDELIF' then
    if redis.call('HGET', ARGV[i + 2], ARGV[i + 3]) == ARGV[i + 4] then
      redis.call('HDEL', ARGV[i + 2], ARGV[i + 3])
    end
  else
    redis.call(unpack(ARGV, i + 1, i + n))
  end
  i = i + n + 1
end
return 1
"""


async def write_step(redis: AnyRedis, keys: Keyspace, lease: Lease | None, commands: list[Command]) -> None:
    """Apply one step's writes in one round trip, fenced by `lease` when given (as `Lease.fenced`:
    nothing is written unless this process holds the lease; LeaseLostError otherwise)."""
    if lease is not None:
        key, value = await lease.fence_args()
    else:
        key, value = keys.lease, ""
    args: list[str] = [value, str(len(commands))]
    for command in commands:
        args.append(str(len(command)))
        args.extend(command)
    try:
        await redis.eval(_STEP, 1, key, *args)
    except ResponseError as exc:
        if lease is not None and str(exc).startswith("LEASELOST"):
            raise lease.lost() from None
        raise


def _log_entry(log: str, *fields: str) -> Command:
    return ("XADD", log, "MAXLEN", "~", str(LOG_MAXLEN), "*", *fields)

StopMoveState = Literal["moving", "done", "failed"]


class StopMove(BaseModel):
    """One move of a trade's protective stop, journaled as a single transition: `old_stop` ->
    `new_stop`, and its `state`. The gateway writes it `moving` before it touches the exchange and
    `done` in the same transaction as the plan that records the new stop (`TradePlans.save`), or
    `failed` when the exchange refused it. The sync's live view, the alert scheduler's stop check and
    the panel read it: while a move is `moving`, a stop at either level is the trade's stop and
    nobody reports it missing or wrong. `seq` counts the trade's moves (a reader compares two reads to
    see whether a move happened in between). The last move of each trade is kept (hash `stop_moves`)."""

    model_config = ConfigDict(frozen=True)

    trade_id: str
    market: str
    action: str
    old_stop: Decimal | None
    new_stop: Decimal
    state: StopMoveState
    seq: int = 1
    started_at: UtcDateTime
    updated_at: UtcDateTime

    def in_flight(self, now: datetime, settle: timedelta) -> bool:
        """`moving`, and started less than `settle` ago (a move the gateway never finished, e.g. it
        crashed mid-way, stops counting as in flight then)."""
        return self.state == "moving" and now - self.started_at < settle

    def finished(self, state: StopMoveState, at: datetime) -> StopMove:
        return self.model_copy(update={"state": state, "updated_at": at})

    def levels(self) -> tuple[Decimal, ...]:
        """The stop levels this move may leave on the exchange while it is in flight."""
        return (self.new_stop,) if self.old_stop is None else (self.old_stop, self.new_stop)


def _stop_moves_key(keys: Keyspace) -> str:
    return keys.key("stop_moves")


class OrderJournal:
    """Hash `orders` (cloid -> record), plus `orders:log`, an append-only stream of every transition."""

    def __init__(self, redis: AnyRedis, keys: Keyspace, lease: Lease | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.lease = lease
        self.hash = keys.key("orders")
        self.by_action = keys.key("orders:by_action")  # hash: action -> JSON list of cloids
        self.log = keys.key("orders:log")

    async def get(self, cloid: str) -> OrderRecord | None:
        raw = await self.redis.hget(self.hash, cloid)
        return None if raw is None else OrderRecord.model_validate_json(raw)

    async def for_action(self, action: str) -> list[OrderRecord]:
        raw = await self.redis.hget(self.by_action, action)
        if raw is None:
            return []
        cloids: list[str] = json.loads(raw)
        values = await self.redis.hmget(self.hash, cloids)
        return [OrderRecord.model_validate_json(v) for v in values if v is not None]

    async def all(self) -> list[OrderRecord]:
        raw: dict[str, str] = await self.redis.hgetall(self.hash)
        return sorted((OrderRecord.model_validate_json(v) for v in raw.values()), key=lambda r: r.created_at)

    async def record(self, *records: OrderRecord) -> None:
        """Write records (new or updated), their log entries, the action index and the change event in
        one round trip (one script); fenced by the lease when given."""
        if not records:
            return
        actions: dict[str, list[str]] = {}
        commands: list[Command] = []
        for r in records:
            actions.setdefault(r.action, []).append(r.cloid)
            data = r.model_dump_json()
            commands.append(("HSET", self.hash, r.cloid, data))
            commands.append(_log_entry(self.log, "cloid", r.cloid, "status", r.status, "record", data))
        for action, cloids in actions.items():
            commands.append(("JSONMERGE", self.by_action, action, *cloids))
        commands.append(("PUBLISH", self.keys.events,
                         encode_raw("store.changed", {"what": "orders", "id": None, "op": "put"})))
        await write_step(self.redis, self.keys, self.lease, commands)

    # ---------------------------------------------------------------------- stop moves
    async def stop_moves(self) -> dict[str, StopMove]:
        """The last stop move of every trade that had one (trade id -> move)."""
        raw: dict[str, str] = await self.redis.hgetall(_stop_moves_key(self.keys))
        return {tid: StopMove.model_validate_json(v) for tid, v in raw.items()}

    async def begin_stop_move(self, *, trade_id: str, market: str, action: str, old_stop: Decimal | None,
                              new_stop: Decimal, at: datetime | None = None) -> StopMove:
        """Record that the trade's stop starts moving (before anything is sent); returns the move."""
        at = at or utc_now()
        key = _stop_moves_key(self.keys)
        previous = await self.redis.hget(key, trade_id)
        seq = StopMove.model_validate_json(previous).seq + 1 if previous is not None else 1
        move = StopMove(trade_id=trade_id, market=market, action=action, old_stop=old_stop, new_stop=new_stop,
                        state="moving", seq=seq, started_at=at, updated_at=at)
        await self._write_move(move)
        return move

    async def end_stop_move(self, move: StopMove, state: StopMoveState, at: datetime | None = None) -> StopMove:
        """Record the end of a move that no plan records (refused by the exchange: `failed`)."""
        done = move.finished(state, at or utc_now())
        await self._write_move(done)
        return done

    async def _write_move(self, move: StopMove) -> None:
        await write_step(self.redis, self.keys, self.lease, [
            *stop_move_commands(self.keys, move),
            ("PUBLISH", self.keys.events, encode_raw("store.changed", {"what": "orders", "id": move.trade_id,
                                                                       "op": "put"}))])

    async def update(self, cloid: str, **changes: Any) -> OrderRecord:
        current = await self.get(cloid)
        if current is None:
            raise KeyError(cloid)
        updated = current.model_copy(update={**changes, "updated_at": utc_now()})
        await self.record(updated)
        return updated


def write_stop_move(pipe: Any, keys: Keyspace, move: StopMove) -> None:
    """Queue the writes of a stop move's transition on a transaction (`pipe`)."""
    data = move.model_dump_json()
    pipe.hset(_stop_moves_key(keys), move.trade_id, data)
    pipe.xadd(keys.key("orders:log"), {"cloid": f"stop-move:{move.trade_id}:{move.seq}", "status": move.state,
                                       "stop_move": data}, maxlen=LOG_MAXLEN, approximate=True)


def stop_move_commands(keys: Keyspace, move: StopMove) -> list[Command]:
    """The writes of a stop move's transition, for `write_step`."""
    data = move.model_dump_json()
    return [("HSET", _stop_moves_key(keys), move.trade_id, data),
            _log_entry(keys.key("orders:log"), "cloid", f"stop-move:{move.trade_id}:{move.seq}", "status", move.state,
                       "stop_move", data)]


class TradePlans:
    """Hash `trades` (trade id -> plan) and `trades:open` (market -> trade id): one trade per market."""

    def __init__(self, redis: AnyRedis, keys: Keyspace, lease: Lease | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.lease = lease
        self.hash = keys.key("trades")
        self.open_index = keys.key("trades:open")

    async def get(self, trade_id: str) -> TradePlan | None:
        raw = await self.redis.hget(self.hash, trade_id)
        return None if raw is None else TradePlan.model_validate_json(raw)

    async def open_for(self, market: str) -> TradePlan | None:
        trade_id = await self.redis.hget(self.open_index, market)
        return None if trade_id is None else await self.get(trade_id)

    async def open_trades(self) -> list[TradePlan]:
        ids: dict[str, str] = await self.redis.hgetall(self.open_index)
        if not ids:
            return []
        values = await self.redis.hmget(self.hash, list(ids.values()))
        return [TradePlan.model_validate_json(v) for v in values if v is not None]

    async def all(self) -> list[TradePlan]:
        raw: dict[str, str] = await self.redis.hgetall(self.hash)
        return sorted((TradePlan.model_validate_json(v) for v in raw.values()), key=lambda t: t.opened_at)

    async def save(self, plan: TradePlan, *, stop_move: StopMove | None = None) -> None:
        """Write the plan; with `stop_move` (its finished transition), both in one transaction, so no
        reader ever sees the move done with the old stop still planned."""
        commands: list[Command] = [("HSET", self.hash, plan.trade_id, plan.model_dump_json())]
        if stop_move is not None:
            commands += stop_move_commands(self.keys, stop_move)
        if plan.status in ("opening", "open"):
            commands.append(("HSET", self.open_index, plan.market, plan.trade_id))
        else:
            commands.append(("HDELIF", self.open_index, plan.market, plan.trade_id))
        commands.append(("PUBLISH", self.keys.events,
                         encode_raw("store.changed", {"what": "trades", "id": plan.trade_id, "op": "put"})))
        await write_step(self.redis, self.keys, self.lease, commands)
