"""The wallet's risk state and its runtime risk settings, in Redis.

Settings: the config gives the starting values (`base`); `revagent risk set KEY VALUE` stores an
override per wallet (`settings` hash, field `risk.KEY`) that wins until `risk reset KEY`. Every
change is validated against the whole `RiskSettings` model first, so a bad value changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError

from revagent.bus import encode_raw
from revagent.errors import UsageError
from revagent.risk import RiskSettings, RiskState
from revagent.store.connection import AnyRedis, queue_publish
from revagent.store.keys import Keyspace
from revagent.store.lease import Lease

PREFIX = "risk."
Source = Literal["default", "config", "runtime"]


class RiskStore:
    def __init__(self, redis: AnyRedis, keys: Keyspace, base: RiskSettings, lease: Lease | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.base = base
        self.lease = lease
        self._lock = asyncio.Lock()

    # -- state ------------------------------------------------------------------------------
    async def get(self) -> RiskState:
        raw = await self.redis.get(self.keys.risk_state)
        return RiskState() if raw is None else RiskState.model_validate_json(raw)

    async def update(self, change: Callable[[RiskState], RiskState]) -> RiskState:
        """Read, change and write the state as one step for this process: the gateway (orders sent),
        the sync loop (equity) and commands (halt, unlock) never overwrite each other's change. (Only
        the lease holder writes the state, so a process-local lock is enough.)"""
        async with self._lock:
            state = change(await self.get())
            await self.put(state)
            return state

    async def put(self, state: RiskState) -> None:
        from revagent.store.orders import write_step  # one round trip, fenced by the lease when given

        await write_step(self.redis, self.keys, self.lease, [
            ("SET", self.keys.risk_state, state.model_dump_json()),
            ("PUBLISH", self.keys.events,
             encode_raw("store.changed", {"what": "risk_state", "id": None, "op": "put"}))])

    # -- settings -----------------------------------------------------------------------------
    async def overrides(self) -> dict[str, Any]:
        raw: dict[str, str] = await self.redis.hgetall(self.keys.settings)
        return {k[len(PREFIX):]: json.loads(v) for k, v in raw.items() if k.startswith(PREFIX)}

    async def settings(self) -> RiskSettings:
        overrides = await self.overrides()
        if not overrides:
            return self.base
        return RiskSettings.model_validate({**self.base.model_dump(), **overrides})

    async def set(self, key: str, value: str) -> RiskSettings:
        """Validate `key = value` against the whole model, then store it. UsageError changes nothing."""
        if key not in RiskSettings.model_fields:
            known = ", ".join(sorted(RiskSettings.model_fields))
            raise UsageError(f"KEY: {key!r} is not a risk setting (one of: {known})")
        overrides = await self.overrides()
        candidate = {**self.base.model_dump(), **overrides, key: value}
        try:
            validated = RiskSettings.model_validate(candidate)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or key
            raise UsageError(f"VALUE: {where}: {first['msg'].removeprefix('Value error, ')} (got {value!r})") from None
        stored = validated.model_dump(mode="json")[key]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.settings, PREFIX + key, json.dumps(stored))
            queue_publish(pipe, self.keys.events,
                          encode_raw("store.changed", {"what": "settings", "id": key, "op": "put"}))
            await pipe.execute()
        return validated

    async def reset(self, key: str) -> bool:
        if key not in RiskSettings.model_fields:
            raise UsageError(f"KEY: {key!r} is not a risk setting")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.settings, PREFIX + key)
            queue_publish(pipe, self.keys.events,
                          encode_raw("store.changed", {"what": "settings", "id": key, "op": "delete"}))
            results = await pipe.execute()
        return bool(results[0])

    async def sources(self) -> dict[str, Source]:
        """Where each setting's value comes from: default, config (file or env), or runtime (Redis)."""
        overrides = await self.overrides()
        defaults = RiskSettings()
        out: dict[str, Source] = {}
        for name in RiskSettings.model_fields:
            if name in overrides:
                out[name] = "runtime"
            elif getattr(self.base, name) != getattr(defaults, name):
                out[name] = "config"
            else:
                out[name] = "default"
        return out
