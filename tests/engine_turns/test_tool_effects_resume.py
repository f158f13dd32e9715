"""Tools with an effect run once per tool-call id across a crash (issue 12, item 4).

A turn whose message asked for several tool calls is killed (its task cancelled, as a dying owner)
after some calls' effects are in Redis but before the message's batch of results is written. The
alert is redelivered to a new runner (its own store), which resumes the turn and runs the calls left
without results again: each effect must exist once, and each result must be the one the call got
the first time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from revagent.engine.providers.base import (
    Finished,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResultBlock,
    Usage,
)
from revagent.engine.runner import TurnRunner
from revagent.engine.tools import Tool, ToolRegistry, default_tools
from revagent.engine.tools.base import Args, ToolContext, ToolResult
from revagent.models import LegDirection, Note, TimeAlert, TimeAlertStatus, WatcherLeg, WatcherPair
from revagent.store.alert_events import AlertEvent
from revagent.store.threads import ThreadStore
from tests.engine_turns.conftest import Harness

pytestmark = pytest.mark.timeout(60)


class Batch:
    """An in-process model: its first answer is one message asking for `calls` (in order), then it
    says done once it has the results."""

    name = "scripted"

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        if not any(isinstance(b, ToolResultBlock) for b in request.messages[-1].content):
            for n, (name, args) in enumerate(self.calls):
                yield ToolCall(f"toolu_batch_{n}", name, args)
            yield Usage(100, 5, 0, 0, "claude-sonnet-4-6")
            yield Finished("tool_use")
            return
        yield TextDelta("done.")
        yield Usage(100, 3, 0, 0, "claude-sonnet-4-6")
        yield Finished("end_turn")


def registry_with_block(started: asyncio.Event, release: asyncio.Event) -> ToolRegistry:
    """The default tools and `block`, a call that waits until released (the crash happens meanwhile)."""

    async def block(args: Args, ctx: ToolContext) -> ToolResult:
        started.set()
        await release.wait()
        return ToolResult.ok({"ok": True})

    base = default_tools()
    tools = [t for t in (base.get(n) for n in base.names) if t is not None]
    return ToolRegistry([*tools, Tool("block", "waits", Args, block)])


async def test_effects_of_a_killed_batch_exist_once_after_the_resume(harness: Harness) -> None:
    store, now = harness.store, harness.clock()
    # things for the cancelling and removing tools to act on
    old_note = Note(text="old note", created_at=now, updated_at=now)
    await store.notes.put(old_note)
    old_pair = WatcherPair(market="BTC", upper=WatcherLeg(level=Decimal("70000"), direction=LegDirection.ABOVE),
                           created_at=now, created_by="trader")
    await store.watchers.put(old_pair)
    old_alert = TimeAlert(fire_at=now + timedelta(hours=2), prompt="old", created_at=now)
    await store.time_alerts.put(old_alert)

    calls: list[tuple[str, dict[str, Any]]] = [
        ("add_note", {"text": "BTC likes to wick 61k", "tags": ["btc"]}),
        ("set_watcher_pair", {"market": "BTC", "upper": {"level": "62000", "thesis": "breakout"},
                              "lower": {"level": "58000", "thesis": "breakdown"}}),
        ("set_time_alert", {"prompt": "review BTC", "in": "4h"}),
        ("remove_note", {"id": old_note.id}),
        ("cancel_watcher", {"id": old_pair.id}),
        ("cancel_time_alert", {"id": old_alert.id}),
        ("halt_trading", {"reason": "testing the kill switch"}),
        ("block", {}),
    ]
    event = AlertEvent(alert_id="t_crash", kind="time", trigger_key="t_crash#2026-03-02T12:00:00Z", fired_at=now,
                       context={"prompt": "manage the book"})
    thread = await harness.thread_ops.for_alert(event)
    started, release = asyncio.Event(), asyncio.Event()
    registry = registry_with_block(started, release)
    first = harness.runner(Batch(calls), registry=registry)
    turn = asyncio.get_running_loop().create_task(first.run_alert(thread.id, event), name="test:alert-turn")
    await asyncio.wait_for(started.wait(), 10)  # every call before `block` has had its effect
    turn.cancel()  # the owner dies before the message's batch of results is written
    with pytest.raises(asyncio.CancelledError):
        await turn
    release.set()
    await asyncio.sleep(0.05)

    # A human resumes trading meanwhile: a re-run halt_trading would halt it again.
    from revagent.risk import resume as resume_trading

    await harness.services.risk.update(lambda s: resume_trading(s, now))

    provider = Batch(calls)
    again = TurnRunner(threads=ThreadStore(harness.redis, store.keys), provider=provider, tools=registry,
                       services=harness.services, settings=first.settings, layers=first.layers, bus=harness.bus)
    outcome = await asyncio.wait_for(again.run_alert(thread.id, event), 20)
    assert outcome.status == "done" and outcome.resumed, outcome
    assert len(provider.requests) == 1  # the model was not asked again for the calls

    notes = await store.notes.all()
    assert [n.text for n in notes] == ["BTC likes to wick 61k"]  # added once, the old one removed once
    pairs = await store.watchers.all()
    assert len(pairs) == 2, pairs  # the old (cancelled) pair and one new pair
    assert [p.upper.status.value for p in pairs if p.id == old_pair.id and p.upper] == ["cancelled"]
    alerts = await store.time_alerts.all()
    assert len(alerts) == 2, alerts
    assert {a.id: a.status for a in alerts}[old_alert.id] is TimeAlertStatus.CANCELLED
    assert not (await harness.services.risk.get()).halted  # halted once, before the human resumed

    # every call's result is the one it got the first time (no "no note ..." for a second removal)
    log = await harness.threads.transcript(thread.id)
    [batch] = [e for e in log if e.kind == "tool_results"]
    errors = {b["tool"]: b["content"] for b in batch.blocks if b["is_error"]}
    assert errors == {}, errors
    await first.aclose()
    await again.aclose()
