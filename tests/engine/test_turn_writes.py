"""The runner's Redis writes: one transaction per step, everything in Redis before the turn reports
done (and before a tool runs), nothing lost or written twice when a commit fails, and the owner's
in-memory log still seeing what another writer appended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel

from revagent.bus import Bus
from revagent.engine.providers.base import (
    Finished,
    ModelRequest,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolCall,
    ToolResultBlock,
    Usage,
)
from revagent.engine.runner import TurnRunner
from revagent.engine.settings import EngineSettings
from revagent.engine.threads import Threads
from revagent.engine.tools import ToolServices, default_tools
from revagent.engine.tools.base import Tool, ToolContext, ToolRegistry, ToolResult
from revagent.gateway import Gateway
from revagent.models import SessionId
from revagent.risk import AccountView, RiskSettings
from revagent.store.alert_events import AlertEvent
from revagent.store.keys import Keyspace
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.repos import SessionStore
from revagent.store.risk import RiskStore
from revagent.store.threads import Committed, ThreadStore, TranscriptEntry

SID = SessionId(network="paper", address="0x" + "3e" * 20)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Scripted:
    """An in-process provider: with `tool`, calls it first and answers after its result. Keeps
    every request it was given."""

    name = "scripted"

    def __init__(self, tool: str | None = None, tool_input: dict[str, Any] | None = None) -> None:
        self.tool = tool
        self.tool_input = tool_input or {}
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        answered = any(isinstance(b, ToolResultBlock) for b in request.messages[-1].content)
        if self.tool and not answered:
            yield ToolCall(f"toolu_{len(self.requests)}", self.tool, self.tool_input)
            yield Usage(100, 5, 0, 0, "claude-sonnet-4-6")
            yield Finished("tool_use")
            return
        yield TextDelta("done.")
        yield Usage(100, 3, 0, 0, "claude-sonnet-4-6")
        yield Finished("end_turn")


class FlakyThreads(ThreadStore):
    """A ThreadStore whose commit number `fail_at` raises, after (`applied`) or instead of writing:
    the two sides of a connection lost around EXEC."""

    def __init__(self, redis: Any, keys: Keyspace, fail_at: int, applied: bool) -> None:
        super().__init__(redis, keys)
        self.fail_at = fail_at
        self.applied = applied
        self.commits = 0

    async def commit(self, thread_id: str, entries: Sequence[TranscriptEntry] = (), **kw: Any) -> Committed:
        self.commits += 1
        if self.commits != self.fail_at:
            return await super().commit(thread_id, entries, **kw)
        if self.applied:
            await super().commit(thread_id, entries, **kw)
        self._complete.discard(thread_id)
        raise ConnectionError("connection lost around EXEC")


@dataclass
class World:
    redis: Any
    store: SessionStore
    services: ToolServices
    bus: Bus
    seen: list[list[str]] = field(default_factory=list)

    def runner(self, threads: ThreadStore, provider: Scripted, registry: ToolRegistry | None = None,
               **settings: Any) -> TurnRunner:
        return TurnRunner(threads=threads, provider=provider, tools=registry or default_tools(),
                          services=self.services, settings=EngineSettings(**{"max_usd_per_day": Decimal(0),
                                                                             **settings}), bus=self.bus)


@pytest.fixture
async def world(redis_client: aioredis.Redis) -> World:
    keys = Keyspace(SID)
    store = SessionStore(redis_client, SID)
    risk = RiskStore(redis_client, keys, RiskSettings())
    plans, journal = TradePlans(redis_client, keys), OrderJournal(redis_client, keys)

    async def account() -> AccountView:
        return AccountView(equity=Decimal(1000), available_margin=Decimal(1000))

    bus = Bus()
    gateway = Gateway(exchange=None, journal=journal, plans=plans, account=account, settings=risk.settings,
                      risk_state=risk, bus=bus, lease=None, clock=lambda: NOW)
    services = ToolServices(gateway=gateway, plans=plans, journal=journal, risk=risk, store=store,
                            clock=lambda: NOW, account=account)
    return World(redis_client, store, services, bus)


async def execs(redis: Any) -> int:
    return int((await redis.info("commandstats")).get("cmdstat_exec", {}).get("calls", 0))


def kinds(entries: Sequence[TranscriptEntry]) -> list[str]:
    return [e.kind for e in entries]


async def test_a_text_turn_is_two_transactions_and_all_of_it_is_in_redis_when_done(world: World) -> None:
    threads = ThreadStore(world.redis, Keyspace(SID))
    thread = await Threads(threads).create_chat("main")
    runner = world.runner(threads, Scripted())
    before = await execs(world.redis)
    outcome = await runner.submit(thread.id, "status?")
    assert outcome.status == "done" and outcome.text == "done."
    assert await execs(world.redis) - before == 2  # the turn's start; then answer, usage, end, thread
    reader = ThreadStore(world.redis, Keyspace(SID))  # the TUI viewer or `ask` in another process
    log = await reader.transcript(thread.id)
    assert kinds(log) == ["turn_start", "user", "assistant", "turn_end"]
    assert log[-1].status == "done" and log[-1].data["model_calls"] == 1
    usage = await reader.thread_usage(thread.id)
    assert (usage.input_tokens, usage.output_tokens, usage.calls) == (100, 3, 1)
    assert usage.cost_usd == outcome.cost_usd > 0
    stored = await reader.get(thread.id)
    assert stored is not None and stored.turns == 1
    await runner.aclose()


async def test_the_tool_call_is_in_redis_before_the_tool_runs_and_its_result_right_after(world: World) -> None:
    threads = ThreadStore(world.redis, Keyspace(SID))
    thread = await Threads(threads).create_chat("main")
    reader = ThreadStore(world.redis, Keyspace(SID))

    class Args(BaseModel):
        pass

    async def look(args: Any, ctx: ToolContext) -> ToolResult:
        world.seen.append(kinds(await reader.transcript(ctx.thread_id)))
        return ToolResult.ok({"ok": True})

    registry = ToolRegistry([Tool("look", "reads the log", Args, look)])
    runner = world.runner(threads, Scripted("look"), registry)
    outcome = await runner.submit(thread.id, "look")
    assert outcome.status == "done" and outcome.tool_calls == 1
    assert world.seen == [["turn_start", "user", "assistant"]]  # a crash now resumes the call, not the model
    assert kinds(await reader.transcript(thread.id)) == ["turn_start", "user", "assistant", "tool_results",
                                                         "assistant", "turn_end"]
    assert (await reader.thread_usage(thread.id)).calls == 2
    await runner.aclose()


@pytest.mark.parametrize("applied", [True, False], ids=["exec-ran", "exec-never-ran"])
async def test_a_failed_commit_is_written_once_at_the_turns_end(world: World, applied: bool) -> None:
    # commit 1 is the turn's start, 2 the assistant's tool call (before the tool runs)
    threads = FlakyThreads(world.redis, Keyspace(SID), fail_at=2, applied=applied)
    thread = await Threads(threads).create_chat("main")
    runner = world.runner(threads, Scripted("add_note", {"text": "never twice"}))
    outcome = await runner.submit(thread.id, "note it")
    assert outcome.status == "error" and "connection lost" in outcome.error
    log = await ThreadStore(world.redis, Keyspace(SID)).transcript(thread.id)
    assert kinds(log) == ["turn_start", "user", "assistant", "turn_end"]  # the call once, never run
    assert log[-1].status == "error"
    assert (await threads.thread_usage(thread.id)).calls == 1  # usage counted once either way
    assert await world.store.notes.all() == []
    await runner.aclose()


async def test_the_next_turn_sees_what_another_writer_appended(world: World) -> None:
    threads = ThreadStore(world.redis, Keyspace(SID))
    thread = await Threads(threads).create_chat("main")
    provider = Scripted()
    runner = world.runner(threads, provider)
    await runner.submit(thread.id, "first")
    other = ThreadStore(world.redis, Keyspace(SID))  # e.g. a proposal decided through another process
    await other.append(thread.id, TranscriptEntry(kind="notice", turn_id="", at=NOW, text="proposal p_1 was rejected",
                                                  data={"replay": True}))
    await runner.submit(thread.id, "second")
    last_user = provider.requests[-1].messages[-1]
    texts = [b.text for b in last_user.content if isinstance(b, TextBlock)]
    assert texts[-1].startswith("[proposal p_1 was rejected]") and texts[-1].endswith("second")
    log = await other.transcript(thread.id)
    assert [e.seq for e in log] == list(range(len(log)))
    assert kinds(log)[-4:] == ["turn_start", "user", "assistant", "turn_end"]
    await runner.aclose()


async def test_the_day_budget_counts_the_turns_own_usage_between_steps(world: World) -> None:
    threads = ThreadStore(world.redis, Keyspace(SID))
    thread = await Threads(threads).create_chat("main")
    # each call costs 100 input + 5 output tokens of sonnet: far over a one-millionth-dollar budget
    runner = world.runner(threads, Scripted("add_note", {"text": "n"}), max_usd_per_day=Decimal("0.000001"))
    outcome = await runner.submit(thread.id, "go")
    assert outcome.status == "budget" and outcome.model_calls == 1  # stopped before the second call
    refused = await runner.submit(thread.id, "again")
    assert refused.status == "budget" and refused.model_calls == 0
    await runner.aclose()


async def test_a_crash_while_a_tool_runs_resumes_the_call_and_never_asks_the_model_again(world: World) -> None:
    threads = ThreadStore(world.redis, Keyspace(SID))
    event = AlertEvent(alert_id="w_1", kind="watcher", trigger_key="w_1#upper:g1", fired_at=NOW,
                       price=Decimal("61000"), context={"market": "BTC"})
    thread = await Threads(threads).for_alert(event)
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    class Args(BaseModel):
        pass

    async def slow(args: Any, ctx: ToolContext) -> ToolResult:
        runs.append(ctx.tool_call_id)
        started.set()
        await release.wait()
        return ToolResult.ok({"ok": True})

    registry = ToolRegistry([Tool("slow", "takes its time", Args, slow)])
    first = world.runner(threads, Scripted("slow"), registry)
    handler = asyncio.get_running_loop().create_task(first.run_alert(thread.id, event), name="test:alert")
    await started.wait()
    handler.cancel()  # the process dies while the tool runs
    with pytest.raises(asyncio.CancelledError):
        await handler
    release.set()
    await asyncio.sleep(0)
    # a new process: its own store and runner; the alert is redelivered
    provider = Scripted("slow")
    again = world.runner(ThreadStore(world.redis, Keyspace(SID)), provider, registry)
    outcome = await again.run_alert(thread.id, event)
    assert outcome.status == "done" and outcome.resumed
    assert runs == ["toolu_1", "toolu_1"]  # the same call again (same id: same client order ids)
    assert len(provider.requests) == 1  # the model's first answer came from Redis
    log = await ThreadStore(world.redis, Keyspace(SID)).transcript(thread.id)
    assert kinds(log) == ["turn_start", "user", "assistant", "tool_results", "assistant", "turn_end"]
    await first.aclose()
    await again.aclose()
