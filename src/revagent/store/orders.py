"""The order journal and the trade plans: what the gateway decided and sent, keyed so that a
retried action finds its own orders (by client order id) and never places them twice."""

from __future__ import annotations

import json
from typing import Any

from revagent.bus import encode_raw
from revagent.models import OrderRecord, TradePlan, utc_now
from revagent.store.connection import AnyRedis
from revagent.store.keys import Keyspace
from revagent.store.lease import Lease

LOG_MAXLEN = 20_000


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
        """Write records (new or updated) and their log entries; fenced by the lease when given."""
        if not records:
            return
        actions: dict[str, list[str]] = {}
        for r in records:
            actions.setdefault(r.action, []).append(r.cloid)
        existing = {a: json.loads(v) for a, v in zip(
            actions, await self.redis.hmget(self.by_action, list(actions)), strict=True) if v is not None}

        def write(pipe: Any) -> None:
            for r in records:
                pipe.hset(self.hash, r.cloid, r.model_dump_json())
                pipe.xadd(self.log, {"cloid": r.cloid, "status": r.status, "record": r.model_dump_json()},
                          maxlen=LOG_MAXLEN, approximate=True)
            for action, cloids in actions.items():
                merged = list(dict.fromkeys([*existing.get(action, []), *cloids]))
                pipe.hset(self.by_action, action, json.dumps(merged))
            pipe.publish(self.keys.events, encode_raw("store.changed", {"what": "orders", "id": None, "op": "put"}))

        if self.lease is not None:
            await self.lease.fenced(write)
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                write(pipe)
                await pipe.execute()

    async def update(self, cloid: str, **changes: Any) -> OrderRecord:
        current = await self.get(cloid)
        if current is None:
            raise KeyError(cloid)
        updated = current.model_copy(update={**changes, "updated_at": utc_now()})
        await self.record(updated)
        return updated


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

    async def save(self, plan: TradePlan) -> None:
        # Only the lease holder writes plans, so reading the index first cannot race another writer.
        indexed = await self.redis.hget(self.open_index, plan.market)

        def write(pipe: Any) -> None:
            pipe.hset(self.hash, plan.trade_id, plan.model_dump_json())
            if plan.status in ("opening", "open"):
                pipe.hset(self.open_index, plan.market, plan.trade_id)
            elif indexed == plan.trade_id:
                pipe.hdel(self.open_index, plan.market)
            pipe.publish(self.keys.events, encode_raw("store.changed",
                                                      {"what": "trades", "id": plan.trade_id, "op": "put"}))

        if self.lease is not None:
            await self.lease.fenced(write)
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                write(pipe)
                await pipe.execute()
