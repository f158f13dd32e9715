"""The command channel: how a process that does not own a wallet asks its owner to act.

A sender appends `{id, name, args, deadline}` to the session's command stream and reads the
owner's reply stream `reply:<id>` from its start (durable, so a sender that reads late misses
nothing); the reply stream expires after a while. The owner reads commands through a consumer
group, so a command taken but not answered by a crashed owner is handed to the next owner.
Reply entries are `{type, data}` JSON; the last one has type `done` or `error`.

The deadline travels with the command: the owner writes `accepted` when it takes the command and
`started` when the command passes its last "still wanted?" check (just before anything
irreversible: the journal record of an order, a risk-state write). Past the deadline a command
that has not started is not run, and the owner says so (`error` with code `not_run`). A sender
whose deadline passes keeps listening a bounded while (`settle`) and then knows which case it is
in: never acknowledged or not started (nothing was done), or started (the outcome is unknown).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from revagent.errors import NotRunError, OutcomeUnknownError
from revagent.store.connection import AnyRedis
from revagent.store.keys import Keyspace

GROUP = "owner"
REPLY_TTL_SECONDS = 600
COMMANDS_MAXLEN = 10_000
BLOCK_MS = 1000  # keep blocking reads short: redis-py's socket timeout would cut longer ones
UNACKED_SETTLE_SECONDS = 3.0  # past its deadline, how long a never-acknowledged command is still awaited
PENDING_TTL_SECONDS = 600  # how long a typed command whose outcome was not final keeps its id for a retry
CHECK_HINT = "check with `revagent orders` and `revagent positions`"


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
                  idle_timeout: float | None = None, settle: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    """Yield the owner's reply entries until `done`/`error` (the `accepted`/`started` markers are
    read here, not yielded).

    The first reply is awaited `timeout` seconds, later ones `idle_timeout`. When that passes, the
    stream is still read for `settle` more seconds (a few only if the owner never acknowledged the
    command), so a final outcome that comes late is shown. Then: NotRunError (exit 7) if the owner
    never started the command (past its deadline it will not), OutcomeUnknownError (exit 9) if it
    did."""
    stream = keys.reply(command_id)
    last = "0-0"
    accepted = started = False
    deadline = time.monotonic() + timeout
    settling = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if not settling and settle > 0:
                settling = True
                deadline = time.monotonic() + (settle if accepted else min(settle, UNACKED_SETTLE_SECONDS))
                continue
            raise _no_final_answer(command_id, accepted=accepted, started=started, waited=timeout + settle)
        block = max(1, min(BLOCK_MS, int(remaining * 1000)))
        result = await redis.xread({stream: last}, count=100, block=block)
        for _stream, entries in result or []:
            for entry_id, fields in entries:
                last = entry_id
                type_ = fields.get("type", "data")
                if type_ == "accepted":
                    accepted = True
                    continue
                if type_ == "started":
                    accepted = started = True
                    continue
                reply = {"type": type_, "data": json.loads(fields.get("data", "null"))}
                yield reply
                if reply["type"] in ("done", "error"):
                    return
                if not settling:
                    deadline = time.monotonic() + (idle_timeout if idle_timeout is not None else timeout)


def _no_final_answer(command_id: str, *, accepted: bool, started: bool, waited: float) -> Exception:
    if started:
        return OutcomeUnknownError(
            f"the wallet's owner started command {command_id} but its outcome did not come within {waited:.0f} s: "
            f"it may have run; {CHECK_HINT} (sending the same command again reuses its id, so it runs once)")
    if accepted:
        return NotRunError(
            f"not run: the wallet's owner acknowledged command {command_id} but had not started it by its deadline, "
            f"so it will not run it; nothing was done ({CHECK_HINT})")
    return NotRunError(  # the owner is busy or stalled (code owner_busy, as before): the same exit 7
        f"not run: the wallet's owner did not acknowledge command {command_id} in time; past its deadline it will "
        f"not run it, so nothing was done ({CHECK_HINT})", code="owner_busy")


async def reply(redis: AnyRedis, keys: Keyspace, command_id: str, type_: str, data: Any) -> None:
    stream = keys.reply(command_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(stream, {"type": type_, "data": json.dumps(data, default=str)})
        pipe.expire(stream, REPLY_TTL_SECONDS)
        await pipe.execute()


def not_run_reply(command: Command) -> dict[str, Any]:
    """The `error` data an owner writes for a command it skipped: it never started it."""
    return {"code": "not_run", "exit_code": int(NotRunError.exit_code),
            "message": f"not run: command {command.id} ({command.name}) reached its deadline before the owner "
                       "started it; nothing was done"}


class PendingCommands:
    """Typed commands whose outcome was not final (not answered, unknown), by what was typed: the
    same command typed again within PENDING_TTL_SECONDS reuses its action id, so it runs once."""

    def __init__(self, redis: AnyRedis, keys: Keyspace) -> None:
        self.redis = redis
        self.key = keys.key("commands:pending")

    @staticmethod
    def fingerprint(name: str, args: dict[str, Any]) -> str:
        return name + " " + json.dumps({k: v for k, v in args.items() if k != "action_id"}, sort_keys=True,
                                       default=str)

    async def action_id(self, name: str, args: dict[str, Any]) -> str | None:
        raw = await self.redis.hget(self.key, self.fingerprint(name, args))
        if not raw:
            return None
        doc = json.loads(raw)
        if float(doc.get("until", 0)) < time.time():
            return None
        return str(doc["action_id"])

    async def remember(self, name: str, args: dict[str, Any], action_id: str) -> None:
        doc = {"action_id": action_id, "until": time.time() + PENDING_TTL_SECONDS}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, self.fingerprint(name, args), json.dumps(doc))
            pipe.expire(self.key, PENDING_TTL_SECONDS)
            await pipe.execute()

    async def settle(self, name: str, args: dict[str, Any]) -> None:
        await self.redis.hdel(self.key, self.fingerprint(name, args))


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
