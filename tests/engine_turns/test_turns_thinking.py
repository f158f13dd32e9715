"""Turns on a thinking model (Claude's 5.x generation): the runner streams, stores and replays thinking
and redacted_thinking blocks exactly as returned, through the real SDK against the strict fake (which
refuses a follow-up that drops or alters them, as the real API does)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.threads import run_alert_turn
from revagent.engine.tools import Tool, ToolRegistry, default_tools
from revagent.engine.tools.base import Args, ToolContext, ToolResult
from revagent.events import TurnEvent
from revagent.store.alert_events import AlertEvent
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, redacted, reply, text, thinking, tool

MODEL = "claude-sonnet-5-5"
pytestmark = pytest.mark.timeout(60)


def assistant_types(body: dict[str, Any]) -> list[list[str]]:
    return [[b["type"] for b in m["content"]] for m in body["messages"] if m["role"] == "assistant"]


def refused(fake: FakeAnthropic) -> list[str]:
    return [r.error for r in fake.requests if r.status == 400]


async def test_a_three_step_tool_loop_replays_every_thinking_block(harness: Harness, fake: FakeAnthropic,
                                                                    anthropic: AnthropicProvider) -> None:
    fake.script(
        reply(thinking("Check risk first."), text("Looking."), tool("get_snapshot", {"section": "risk"})),
        reply(thinking("Risk is fine; keep a note."), redacted("r1"),
              tool("add_note", {"text": "BTC range 58k-62k", "tags": ["btc"]})),
        reply(thinking("Done."), text("Noted the range.")),
    )
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    outcome = await harness.runner(anthropic, model=MODEL).submit(thread.id, "remember the range",
                                                                  listener=events.append)
    assert outcome.status == "done", (outcome.error, refused(fake))
    assert outcome.model_calls == 3 and outcome.tool_calls == 2 and not refused(fake)
    assert outcome.text == "Looking.Noted the range."
    last = fake.requests[-1].body
    assert assistant_types(last) == [["thinking", "text", "tool_use"], ["thinking", "redacted_thinking", "tool_use"]]
    # the ask --json / TUI stream: thinking events, in order, before the text and the call they preceded
    thoughts = [e.data for e in events if e.kind == "thinking"]
    assert [t.get("text", "") for t in thoughts] == ["Check risk first.", "Risk is fine; keep a note.", "", "Done."]
    assert thoughts[2]["redacted"] is True
    order = [e.kind for e in events if e.kind in ("thinking", "text", "tool_call")]
    assert order.index("thinking") < order.index("text") < order.index("tool_call")
    # the transcript keeps them, signatures included, in the model's order
    log = await harness.threads.transcript(thread.id)
    first = next(e for e in log if e.kind == "assistant")
    assert [b["type"] for b in first.blocks] == ["thinking", "text", "tool_use"]
    assert first.blocks[0]["signature"].startswith("sig_")


async def test_the_next_turn_stays_valid_after_a_thinking_turn(harness: Harness, fake: FakeAnthropic,
                                                               anthropic: AnthropicProvider) -> None:
    fake.script(reply(thinking("Look."), tool("get_snapshot", {"section": "risk"})),
                reply(thinking("Fine."), text("Risk is fine.")),
                reply(thinking("Again."), tool("get_snapshot", {"section": "risk"})),
                reply(text("Still fine.")))
    thread = await harness.thread_ops.chat()
    runner = harness.runner(anthropic, model=MODEL)
    one = await runner.submit(thread.id, "risk?")
    harness.clock.now += timedelta(minutes=5)  # a new snapshot: the earlier turn's prefix changed
    two = await runner.submit(thread.id, "and now?")
    assert (one.status, two.status) == ("done", "done"), (two.error, refused(fake))
    # the earlier turn's thinking is dropped (the API strips it anyway); the current loop keeps its own
    assert assistant_types(fake.requests[-1].body) == [["tool_use"], ["text"], ["thinking", "tool_use"]]


async def test_an_interrupted_thinking_turn_leaves_a_valid_history(harness: Harness, fake: FakeAnthropic,
                                                                   anthropic: AnthropicProvider) -> None:
    fake.script(reply(thinking("Long plan."), text("Partial answer that goes on " * 5, chunks=30),
                      tool("get_snapshot", {"section": "risk"}), delay_s=0.05),
                reply(thinking("Short."), text("Here.")))
    thread = await harness.thread_ops.chat()
    runner = harness.runner(anthropic, model=MODEL)
    events: list[TurnEvent] = []
    fut = runner.submit(thread.id, "plan?", listener=events.append)
    for _ in range(200):
        if any(e.kind == "text" for e in events):
            break
        await asyncio.sleep(0.02)
    assert runner.interrupt(thread.id)
    first = await asyncio.wait_for(fut, 10)
    assert first.status == "interrupted"
    log = await harness.threads.transcript(thread.id)
    stored = next(e for e in log if e.kind == "assistant")
    assert stored.interrupted and stored.blocks[0]["type"] == "thinking"
    second = await runner.submit(thread.id, "go on")
    assert second.status == "done", (second.error, refused(fake))


async def test_a_resumed_alert_turn_replays_its_thinking_with_the_original_prefix(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    hang = asyncio.Event()
    release = asyncio.Event()
    hang.set()

    async def slow_note(args: Args, ctx: ToolContext) -> ToolResult:
        if hang.is_set():
            await release.wait()
        return ToolResult.ok({"ok": True})

    base = default_tools()
    tools = [t for t in (base.get(n) for n in base.names) if t is not None]
    registry = ToolRegistry([*tools, Tool("slow_note", "a slow note", Args, slow_note, "read")])
    event = AlertEvent(alert_id="w_7", kind="watcher", trigger_key="w_7#upper:g1", fired_at=harness.clock(),
                       price=Decimal("61000"), context={"market": "BTC", "thesis": "breakout"})
    fake.script(reply(thinking("Note it, then decide."), tool("slow_note", {}, id="toolu_slow")),
                reply(thinking("Decided."), text("Standing aside.")))
    crashed = harness.runner(anthropic, model=MODEL, registry=registry)
    task = asyncio.get_running_loop().create_task(run_alert_turn(crashed, harness.thread_ops, event))
    for _ in range(200):
        if len(fake.requests) == 1 and any(e.kind == "assistant" for e in
                                           await harness.threads.transcript("alert:w_7")):
            break
        await asyncio.sleep(0.02)
    await crashed.aclose()  # the process dies while the tool runs
    task.cancel()
    release.set()
    hang.clear()
    harness.clock.now += timedelta(minutes=3)  # the restart sees a newer snapshot
    again = harness.runner(anthropic, model=MODEL, registry=registry)
    outcome = await run_alert_turn(again, harness.thread_ops, event)
    assert outcome.status == "done" and outcome.resumed, (outcome.error, refused(fake))
    assert assistant_types(fake.requests[-1].body) == [["thinking", "tool_use"]]


async def test_compaction_never_splits_a_tool_call_from_its_thinking(harness: Harness, fake: FakeAnthropic,
                                                                     anthropic: AnthropicProvider) -> None:
    for i in range(4):
        fake.script(reply(thinking(f"think {i} " + "deep " * 30), tool("get_snapshot", {"section": "risk"})),
                    reply(thinking(f"wrap {i}"), text(f"answer {i} " + "blah " * 60)))
    runner = harness.runner(anthropic, model=MODEL, context_budget_tokens=300, keep_turns=1)
    thread = await harness.thread_ops.chat()
    for i in range(4):
        outcome = await runner.submit(thread.id, f"question {i} " + "words " * 40)
        assert outcome.status == "done", (outcome.error, refused(fake))
    log = await harness.threads.transcript(thread.id)
    assert any(e.kind == "summary" for e in log)
    assert not refused(fake)
    assert assistant_types(fake.requests[-1].body)[-1] == ["thinking", "tool_use"]


async def test_thinking_and_effort_are_set_per_thread_kind(harness: Harness, fake: FakeAnthropic,
                                                           anthropic: AnthropicProvider) -> None:
    fake.script(reply(text("chat")), reply(text("alert")))
    runner = harness.runner(anthropic, model=MODEL, temperature=0.3, effort="high")
    thread = await harness.thread_ops.chat()
    assert (await runner.submit(thread.id, "hi")).status == "done"
    chat = fake.requests[-1].body
    event = AlertEvent(alert_id="w_8", kind="watcher", trigger_key="w_8#upper:g1", fired_at=harness.clock(),
                       price=Decimal("61000"), context={"market": "BTC"})
    assert (await run_alert_turn(runner, harness.thread_ops, event)).status == "done"
    alert = fake.requests[-1].body
    assert chat["thinking"] == alert["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert chat["output_config"] == {"effort": "high"} and alert["output_config"] == {"effort": "medium"}
    assert "temperature" not in chat and "temperature" not in alert  # Sonnet 5.5 refuses sampling parameters


async def test_an_unknown_model_is_refused_while_budgets_are_on_unless_priced(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    from revagent.engine.providers.pricing import parse_price

    thread = await harness.thread_ops.chat()
    refused_turn = await harness.runner(anthropic, model="claude-next-1").submit(thread.id, "hi")
    assert refused_turn.status == "refused" and "llm.unknown_model_price" in refused_turn.error
    assert fake.requests == []
    fake.script(reply(text("ok")))
    events: list[TurnEvent] = []
    priced = harness.runner(anthropic, model="claude-next-1", unknown_model_price=parse_price("15/75"))
    outcome = await priced.submit(thread.id, "hi", listener=events.append)
    assert outcome.status == "done" and outcome.cost_usd > 0
    assert "thinking" not in fake.requests[-1].body  # unknown: the model's own defaults


async def test_a_400_never_switches_a_chat_to_offline_but_an_alert_runs_offline_and_raises_health(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    from revagent.engine.providers.fallback import FallbackProvider
    from revagent.engine.providers.offline import OfflineProvider
    from revagent.engine.providers.retry import with_retries
    from revagent.events import ConnectionChanged
    from tests.fakes.anthropic_server import http_error

    provider = FallbackProvider(with_retries(anthropic), OfflineProvider())
    health = harness.bus.subscribe(ConnectionChanged)
    try:
        fake.script(http_error(400, "model: claude-sonnet-9 is not a valid model"))
        thread = await harness.thread_ops.chat()
        events: list[TurnEvent] = []
        chat = await harness.runner(provider).submit(thread.id, "hi", listener=events.append)
        assert chat.status == "error" and "claude-sonnet-9 is not a valid model" in chat.error
        assert not any("switching to offline" in str(e.data) for e in events)
        assert any(e.kind == "error" and "is not a valid model" in e.data["message"] for e in events)

        fake.script(http_error(404, "model: not found", error_type="not_found_error"))
        event = AlertEvent(alert_id="w_9", kind="watcher", trigger_key="w_9#upper:g1", fired_at=harness.clock(),
                           price=Decimal("61000"), context={"market": "BTC", "thesis": "breakout"})
        alert_events: list[TurnEvent] = []
        alert = await run_alert_turn(harness.runner(provider), harness.thread_ops, event, listener=alert_events.append)
        assert alert.status == "done" and alert.text  # the offline policy handled the alert
        assert any(e.kind == "notice" and "misconfigured" in e.data["text"] for e in alert_events)
        seen = [await asyncio.wait_for(health.get(), 2), await asyncio.wait_for(health.get(), 2)]
        assert all(isinstance(d, ConnectionChanged) and d.link == "model" and not d.up for d in seen)
        assert "not found" in seen[-1].detail  # the alert's configuration error raises the model health alert
    finally:
        health.close()
