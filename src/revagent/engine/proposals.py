"""Copilot proposals: a trade call the trader approves or rejects instead of the agent executing it.

`ProposalService.propose` (the `ProposalSink` the tool executor calls in copilot mode) stores a
`Proposal` with the risk engine's preview. The proposal id is derived from (thread, tool call), so
a resumed turn finds its proposal instead of making a second one.

- Chat threads: the tool returns at once ("awaiting approval"); the turn goes on. When the trader
  decides, the outcome is written to the thread as a `notice` the model reads at its next turn.
- Alert threads: the tool waits for a decision up to `timeout`; approved -> the result of the
  execution is the tool's result; rejected or no answer -> it does not trade, and says so.

`decide(id, approve, by)` is what `revagent proposals approve|reject`, the TUI and slash commands
call (on the wallet's owner). Approving executes the original tool call with its original
thread and tool call ids, so its client order ids are the ones the proposal was made with (a
double approval cannot place twice). Only one decision wins (atomic `pending` -> `approved`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from revagent.bus import Bus
from revagent.engine.tools.base import Args, Tool, ToolContext, ToolResult, dumps
from revagent.errors import NotFoundError, UsageError
from revagent.events import TurnEvent
from revagent.store.threads import Proposal, ProposalStatus, ThreadStore, TranscriptEntry

if TYPE_CHECKING:
    from revagent.engine.tools.base import ToolRegistry, ToolServices

log = logging.getLogger(__name__)


def proposal_id_for(thread_id: str, tool_call_id: str) -> str:
    return "p_" + hashlib.sha256(f"{thread_id}:{tool_call_id}".encode()).hexdigest()[:10]


def _summary(tool: str, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in args.items() if v not in (None, "", []) and k != "rationale")
    return f"{tool}({shown})"


class ProposalService:
    """See the module docstring. `registry` and `services` are set after construction when the
    tool services need this service (`attach`)."""

    def __init__(self, threads: ThreadStore, *, clock: Callable[[], datetime], timeout: timedelta,
                 bus: Bus | None = None) -> None:
        self.threads = threads
        self.clock = clock
        self.timeout = timeout
        self.bus = bus
        self.registry: ToolRegistry | None = None
        self.services: ToolServices | None = None
        self._waiters: dict[str, asyncio.Event] = {}

    def attach(self, registry: ToolRegistry, services: ToolServices) -> None:
        self.registry = registry
        self.services = services

    async def propose(self, tool: Tool, args: Args, ctx: ToolContext) -> ToolResult:
        pid = proposal_id_for(ctx.thread_id, ctx.tool_call_id)
        existing = await self.threads.get_proposal(pid)
        now = self.clock()
        if existing is None:
            preview: dict[str, Any] = {}
            if tool.preview is not None:
                try:
                    preview = await tool.preview(args, ctx)
                except Exception as exc:
                    preview = {"error": f"{type(exc).__name__}: {exc}"}
            arguments = args.model_dump(mode="json", by_alias=True, exclude_none=True)
            existing = await self.threads.put_proposal(Proposal(
                id=pid, thread_id=ctx.thread_id, tool_call_id=ctx.tool_call_id, tool=tool.name, arguments=arguments,
                summary=_summary(tool.name, arguments), preview=preview, created_at=now,
                expires_at=now + self.timeout))
        data = {"proposal_id": pid, "summary": existing.summary, "preview": existing.preview,
                "expires_at": existing.expires_at.isoformat() if existing.expires_at else None}
        if ctx.thread_kind == "chat":
            if existing.status != "pending":
                return self._as_result(existing, data)
            return ToolResult.ok({"proposal": pid, "status": "pending", "summary": existing.summary,
                                  "preview": existing.preview,
                                  "message": "copilot mode: this order is a proposal awaiting the trader's approval; "
                                             "you will be told the outcome"}, data=data, proposal_id=pid)
        return await self._wait(existing, data)

    async def _wait(self, proposal: Proposal, data: dict[str, Any]) -> ToolResult:
        pid = proposal.id
        event = self._waiters.setdefault(pid, asyncio.Event())
        if self.bus is not None and proposal.status == "pending":
            self.bus.publish(TurnEvent(thread_id=proposal.thread_id, turn_id="", kind="proposal",
                                       data={"id": pid, "tool": proposal.tool, **data}))
        remaining = ((proposal.expires_at - self.clock()).total_seconds()
                     if proposal.expires_at else self.timeout.total_seconds())
        try:
            if proposal.status == "pending":
                try:
                    await asyncio.wait_for(event.wait(), timeout=max(0.0, remaining))
                except TimeoutError:
                    expired = await self.threads.decide_proposal(pid, "expired", by="timeout", at=self.clock(),
                                                                 result="no answer in time: not traded")
                    if expired is None:  # decided at the last moment: wait for its execution
                        await asyncio.wait_for(event.wait(), timeout=120)
            final = await self.threads.get_proposal(pid)
        finally:
            self._waiters.pop(pid, None)
        assert final is not None
        return self._as_result(final, data)

    @staticmethod
    def _as_result(p: Proposal, data: dict[str, Any]) -> ToolResult:
        if p.status == "executed":
            return ToolResult(f"approved by {p.decided_by} and executed: {p.result}", data=data, proposal_id=p.id)
        if p.status == "failed":
            return ToolResult.error(f"approved by {p.decided_by} but failed: {p.result}", data=data, proposal_id=p.id)
        if p.status == "rejected":
            return ToolResult.error(f"the trader rejected the proposal ({p.decided_by}); nothing was sent",
                                    data=data, proposal_id=p.id)
        if p.status == "expired":
            return ToolResult.error("no decision before the proposal expired; nothing was sent", data=data,
                                    proposal_id=p.id)
        return ToolResult(f"proposal {p.id} is {p.status}", data=data, proposal_id=p.id)

    async def decide(self, proposal_id: str, approve: bool, *, by: str = "trader") -> Proposal:
        """Approve (and execute) or reject a pending proposal. NotFoundError / UsageError otherwise."""
        current = await self.threads.get_proposal(proposal_id)
        if current is None:
            raise NotFoundError(f"no proposal {proposal_id!r}")
        now = self.clock()
        if current.status == "pending" and current.expires_at is not None and current.expires_at <= now:
            await self.threads.decide_proposal(proposal_id, "expired", by="timeout", at=now,
                                               result="no answer in time: not traded")
            raise UsageError(f"proposal {proposal_id} expired at {current.expires_at.isoformat()}")
        decided = await self.threads.decide_proposal(proposal_id, "approved" if approve else "rejected", by=by, at=now)
        if decided is None:
            raise UsageError(f"proposal {proposal_id} is already {current.status}")
        if approve:
            decided = await self._execute(decided)
        waiter = self._waiters.get(proposal_id)
        if waiter is not None:
            waiter.set()
        else:
            await self._tell_thread(decided)
        return decided

    async def _execute(self, p: Proposal) -> Proposal:
        if self.registry is None or self.services is None:
            raise RuntimeError("ProposalService.attach(registry, services) was not called")
        thread = await self.threads.get(p.thread_id)
        kind = thread.kind if thread is not None else "chat"
        ctx = ToolContext(p.thread_id, p.tool_call_id, kind, "autonomous", self.services)
        result = await self.registry.run_approved(p.tool, p.arguments, ctx)
        status: ProposalStatus = "failed" if result.is_error else "executed"
        updated = await self.threads.decide_proposal(p.id, status, by=p.decided_by, at=self.clock(),
                                                     result=result.content[:2000], only_if=("approved",))
        return updated or p

    async def _tell_thread(self, p: Proposal) -> None:
        text = f"proposal {p.id} ({p.summary}) was {p.status} by {p.decided_by}" + (f": {p.result}" if p.result else "")
        await self.threads.append(p.thread_id, TranscriptEntry(kind="notice", turn_id="", at=self.clock(), text=text,
                                                               data={"replay": True, "proposal_id": p.id}))
        if self.bus is not None:
            self.bus.publish(TurnEvent(thread_id=p.thread_id, turn_id="", kind="proposal",
                                       data={"id": p.id, "status": p.status, "result": p.result}))

    async def list(self, status: str | None = None) -> list[dict[str, Any]]:
        items = await self.threads.proposals(None)
        return [p.model_dump(mode="json") for p in items if status is None or p.status == status]


def describe(p: Proposal) -> str:
    return dumps(p.model_dump(mode="json"))
