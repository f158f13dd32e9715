"""The command channel: how a process that does not own a wallet asks its owner to act.

A sender appends `{id, name, args, deadline}` to the session's command stream and reads the
owner's reply stream `reply:<id>` from its start (durable, so a sender that reads late misses
nothing); the reply stream expires after a while. The owner reads commands through a consumer
group, so a command taken but not answered by a crashed owner is handed to the next owner.
Reply entries are `{type, data}` JSON; the last one has type `done` or `error`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from revagent.errors import OwnerBusyError
from revagent.store.connection import AnyRedis
from revagent.store.keys import Keyspace

GROUP = "owner"
REPLY_TTL_SECONDS = 600
COMMANDS_MAXLEN = 10_000
BLOCK_MS = 1000  # keep blocking reads short: redis-py's socket timeout would cut longer ones


@dataclass(frozen=True)
class Command:
    entry_id: str
    id: str
    name: str
    args: dict[str, Any]
    deadline: float  # epoch seconds after which the sender has given up

    @property
    def expired(self) -> bool:
        return time.time() > self.deadline


def new_command_id() -> str:
    return f"c_{int(time.time() * 1000):x}_{secrets.token_hex(4)}"


async def send(redis: AnyRedis, keys: Keyspace, name: str, args: dict[str, Any], *, timeout: float = 10.0,
               command_id: str | None = None) -> str:
    command_id = command_id or new_command_id()
    await redis.xadd(
        keys.commands,
        {"id": command_id, "name": name, "args": json.dumps(args), "deadline": f"{time.time() + timeout:.3f}"},
        maxlen=COMMANDS_MAXLEN,
        approximate=True,
    )
    return command_id


async def replies(redis: AnyRedis, keys: Keyspace, command_id: str, *, timeout: float = 10.0,
                  idle_timeout: float | None = None) -> AsyncIterator[dict[str, Any]]:
    """Yield the owner's reply entries until `done`/`error`. Raises OwnerBusyError (exit 7) if
    the first reply does not come within `timeout`, or no reply comes within `idle_timeout` after."""
    stream = keys.reply(command_id)
    last = "0-0"
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OwnerBusyError(f"the wallet's owner did not answer command {command_id} in time")
        block = max(1, min(BLOCK_MS, int(remaining * 1000)))
        result = await redis.xread({stream: last}, count=100, block=block)
        for _stream, entries in result or []:
            for entry_id, fields in entries:
                last = entry_id
                reply = {"type": fields.get("type", "data"), "data": json.loads(fields.get("data", "null"))}
                yield reply
                if reply["type"] in ("done", "error"):
                    return
                deadline = time.monotonic() + (idle_timeout if idle_timeout is not None else timeout)


async def reply(redis: AnyRedis, keys: Keyspace, command_id: str, type_: str, data: Any) -> None:
    stream = keys.reply(command_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(stream, {"type": type_, "data": json.dumps(data, default=str)})
        pipe.expire(stream, REPLY_TTL_SECONDS)
        await pipe.execute()


class CommandInbox:
    """The owner's side: read commands through the consumer group and acknowledge them."""

    def __init__(self, redis: AnyRedis, keys: Keyspace, consumer: str) -> None:
        self.redis = redis
        self.keys = keys
        self.consumer = consumer

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.commands, GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, *, block_ms: int = BLOCK_MS) -> list[Command]:
        """Commands not yet taken, plus any a previous owner took and never acknowledged."""
        commands: list[Command] = []
        claimed = await self.redis.xautoclaim(self.keys.commands, GROUP, self.consumer, min_idle_time=5000,
                                              start_id="0-0", count=20)
        # Redis 6.2 answers [next, entries]; 7.0+ adds a third element (deleted ids).
        for entry_id, fields in claimed[1] if claimed else []:
            if fields:
                commands.append(_parse(entry_id, fields))
        result = await self.redis.xreadgroup(GROUP, self.consumer, {self.keys.commands: ">"}, count=20,
                                             block=block_ms)
        for _stream, entries in result or []:
            for entry_id, fields in entries:
                commands.append(_parse(entry_id, fields))
        return commands

    async def ack(self, command: Command) -> None:
        await self.redis.xack(self.keys.commands, GROUP, command.entry_id)


def _parse(entry_id: str, fields: dict[str, str]) -> Command:
    try:
        args = json.loads(fields.get("args", "{}"))
    except ValueError:
        args = {}
    return Command(entry_id, fields.get("id", entry_id), fields.get("name", ""),
                   args if isinstance(args, dict) else {}, float(fields.get("deadline", "0") or 0))
