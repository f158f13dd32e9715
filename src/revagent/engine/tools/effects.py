"""Exactly-once tool calls: every tool with an effect runs at most once per tool-call id.

A turn killed mid-batch re-runs, when it resumes, every call of the message whose result is not in
the transcript (the batch's results are written together). Orders were always safe (their client
ids derive from the call id); this makes every other effect safe the same way, once for all tools:

- Key `thread:<thread id>:calls` (kept by `store.tool_calls`): tool-call id -> `CallRecord`
  JSON: the tool, a fingerprint of the call (tool name and validated arguments), and, once the call
  finished, its result.
- `ToolRegistry` wraps every run of a tool whose effect is not `read` (`run_once`): a call whose
  record is `done` is not run again, its recorded result is returned; a record of another call under
  the same id (a different tool or arguments: an id reused) refuses to run, nothing is done. Before
  the first run a `started` record is written (`HSETNX`), so a later run of the same call knows it
  is a retry (`EffectScope.rerun`); trade tools use that to tell a retry's `duplicate` answer from
  the gateway (its own orders, sent before the crash) from another intent's.
- A tool whose effect is a Redis write commits it with `ToolContext.commit(result, writes)`: the
  write and the `done` record are one MULTI, so after a crash either both are there (the re-run
  returns the result) or neither is (the re-run does the write). Other effects (orders, the kill
  switch) are recorded right after the tool returns; the window in between is covered by their own
  idempotence (client order ids; `halt` keeps the first halt).
- A run that raised records nothing: the re-run runs again (an atomic write did not apply, or the
  gateway finds the orders it sent by their client ids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from revagent.engine.tools.result import ToolResult, dumps
from revagent.store.tool_calls import CallRecord, ToolCallLog


def fingerprint(tool: str, arguments: dict[str, Any]) -> str:
    """What makes two runs the same call: the tool and its validated arguments (canonical JSON)."""
    doc = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


def result_doc(result: ToolResult) -> dict[str, Any]:
    """A tool result as stored in its call record (JSON; an image is never stored: effectful tools
    return none)."""
    return {"content": result.content, "is_error": result.is_error, "data": json.loads(dumps(dict(result.data))),
            "orders": list(result.orders), "trade_id": result.trade_id, "proposal_id": result.proposal_id}


def result_of(doc: dict[str, Any]) -> ToolResult:
    return ToolResult(str(doc.get("content", "")), is_error=bool(doc.get("is_error")), data=dict(doc.get("data") or {}),
                      orders=tuple(doc.get("orders") or ()), trade_id=doc.get("trade_id"),
                      proposal_id=doc.get("proposal_id"))


@dataclass
class EffectScope:
    """One run of one effectful call: where its record goes. `rerun`: a `started` record of this very
    call was found (an earlier run was cut short). `recorded`: the tool committed its result with its
    effect (`ToolContext.commit`), so the registry does not record it again."""

    log: ToolCallLog
    thread_id: str
    call_id: str
    tool: str
    fingerprint: str
    rerun: bool = False
    recorded: bool = False

    async def commit(self, result: ToolResult, writes: Callable[[Any], None]) -> ToolResult:
        await self.log.done(self.thread_id, self.call_id, self.tool, self.fingerprint, result_doc(result), writes)
        self.recorded = True
        return result


__all__ = ["CallRecord", "EffectScope", "ToolCallLog", "fingerprint", "result_doc", "result_of"]
