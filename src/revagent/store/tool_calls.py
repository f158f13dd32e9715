"""The call records of effectful tool calls, per thread (what makes a tool run once per call id).

Key `thread:<thread id>:calls` (a hash, under the session's hash tag): tool-call id -> `CallRecord`
JSON. The engine's `engine.tools.effects` decides what a record means; this module only keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from revagent.store.repos import SessionStore

CallState = Literal["started", "done"]


class CallRecord(BaseModel):
    """One effectful tool call of a thread: the tool, a fingerprint of the call (tool name and
    validated arguments) and, once the call finished, its result (a JSON document)."""

    tool: str
    fingerprint: str
    state: CallState = "started"
    result: dict[str, Any] | None = Field(default=None)


class ToolCallLog:
    """The call records of a session's threads."""

    def __init__(self, store: SessionStore) -> None:
        self.redis = store.redis
        self.keys = store.keys

    def key(self, thread_id: str) -> str:
        return self.keys.key(f"thread:{thread_id}:calls")

    async def get(self, thread_id: str, call_id: str) -> CallRecord | None:
        raw = await self.redis.hget(self.key(thread_id), call_id)
        return None if raw is None else CallRecord.model_validate_json(raw)

    async def start(self, thread_id: str, call_id: str, tool: str, fp: str) -> CallRecord | None:
        """Write the `started` record unless one exists; returns the record that was there (None: written)."""
        record = CallRecord(tool=tool, fingerprint=fp)
        if await self.redis.hsetnx(self.key(thread_id), call_id, record.model_dump_json()):
            return None
        return await self.get(thread_id, call_id)

    async def done(self, thread_id: str, call_id: str, tool: str, fp: str, result: dict[str, Any],
                   writes: Callable[[Any], None] | None = None) -> None:
        """Record the call's result; with `writes` (a tool's own Redis effect, queued on the MULTI
        pipeline), the effect and the record are one transaction: after a crash, both or neither."""
        record = CallRecord(tool=tool, fingerprint=fp, state="done", result=result)
        async with self.redis.pipeline(transaction=True) as pipe:
            if writes is not None:
                writes(pipe)
            pipe.hset(self.key(thread_id), call_id, record.model_dump_json())
            await pipe.execute()


async def commit_writes(store: SessionStore, writes: Callable[[Any], None]) -> None:
    """A tool's effect outside a recorded call (a tool run directly, as tests do): one MULTI."""
    async with store.redis.pipeline(transaction=True) as pipe:
        writes(pipe)
        await pipe.execute()


__all__ = ["CallRecord", "CallState", "ToolCallLog", "commit_writes"]
