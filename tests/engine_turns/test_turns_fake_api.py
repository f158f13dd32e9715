"""Turns against the strict fake Anthropic server, through the real `anthropic` SDK."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.base import Usage
from revagent.engine.providers.pricing import cost_usd
from revagent.events import TurnEvent
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, overloaded, reply, text, tool


def kinds(events: list[TurnEvent]) -> list[str]:
    return [e.kind for e in events]


def user_blocks(body: dict[str, Any], index: int = -1) -> list[dict[str, Any]]:
    msg = body["messages"][index]
    assert msg["role"] == "user"
    return list(msg["content"])


async def test_streaming_text_is_published_and_recorded(harness: Harness, fake: FakeAnthropic,
                                                        anthropic: AnthropicProvider) -> None:
    fake.script(reply(text("Hello trader, all quiet.", chunks=4)))
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    runner = harness.runner(anthropic)
    outcome = await runner.submit(thread.id, "how are we?", listener=events.append)
    assert outcome.status == "done", outcome.error
    assert outcome.text == "Hello trader, all quiet."
    texts = [e.data["text"] for e in events if e.kind == "text"]
    assert len(texts) >= 2 and "".join(texts) == outcome.text
    assert kinds(events)[0] == "started" and kinds(events)[-1] == "done"
    log = await harness.threads.transcript(thread.id)
    assert [e.kind for e in log] == ["turn_start", "user", "assistant", "turn_end"]
    assert log[1].text == "how are we?"
    assert log[2].blocks == [{"type": "text", "text": "Hello trader, all quiet."}]
    assert fake.requests[-1].status in (0, 200)


async def test_layer_order_and_cache_breakpoints(harness: Harness, fake: FakeAnthropic,
                                                 anthropic: AnthropicProvider) -> None:
    from revagent.models import Note

    await harness.store.notes.put(Note(text="never trade DOGE", created_at=harness.clock(), updated_at=harness.clock()))
    fake.script(reply(text("first")), reply(text("second")))
    thread = await harness.thread_ops.chat()
    runner = harness.runner(anthropic)
    await runner.submit(thread.id, "one")
    await runner.submit(thread.id, "two")
    body = fake.requests[-1].body
    system = [b["text"] for b in body["system"]]
    assert system[0].startswith("You are revagent")
    assert system[1].startswith("This is a chat thread")
    # notes change often: they are in the turn context, after the cached prefix (tools + system)
    assert all("PERSISTENT NOTES" not in s for s in system)
    # only the last stable layer carries cache_control; the tool list's last tool carries one
    assert [("cache_control" in b) for b in body["system"]] == [False] * (len(system) - 1) + [True]
    assert "cache_control" in body["tools"][-1] and all("cache_control" not in t for t in body["tools"][:-1])
    marks = fake.requests[-1].cache_breakpoints()
    assert len(marks) <= 4
    # the newest user message starts with the live snapshot; the older one is replayed without it
    newest = user_blocks(body)
    assert newest[0]["text"].startswith("# RUNTIME SNAPSHOT") and newest[-1]["text"] == "two"
    assert "# PERSISTENT NOTES" in newest[0]["text"] and "never trade DOGE" in newest[0]["text"]
    first = user_blocks(body, 0)
    assert [b["text"] for b in first] == ["one"]
    # the stable history (the previous answer) ends with a breakpoint, so the prefix is cached
    assert "cache_control" in body["messages"][1]["content"][-1]
    assert "cache_control" in body["messages"][-1]["content"][-1]
    # the snapshot never goes into system (it changes every turn)
    assert all("RUNTIME SNAPSHOT" not in s for s in system)


async def test_one_tool_call_then_answer(harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    fake.script(reply(text("Let me look."), tool("get_snapshot", {"section": "risk"})), reply(text("Risk is fine.")))
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    outcome = await harness.runner(anthropic).submit(thread.id, "risk?", listener=events.append)
    assert outcome.status == "done" and outcome.tool_calls == 1 and outcome.model_calls == 2
    assert outcome.text == "Let me look.Risk is fine."
    second = fake.requests[-1].body
    results = user_blocks(second)
    assert results[0]["type"] == "tool_result"
    assert "## RISK" in str(results[0]["content"])
    assert results[0].get("is_error") is not True
    assert [k for k in kinds(events) if k in ("tool_call", "tool_result")] == ["tool_call", "tool_result"]


async def test_several_tool_calls_in_one_reply(harness: Harness, fake: FakeAnthropic,
                                               anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("add_note", {"text": "BTC range 58k-62k", "tags": ["btc"]}),
                      tool("get_snapshot", {"section": "notes"})), reply(text("Noted.")))
    thread = await harness.thread_ops.chat()
    outcome = await harness.runner(anthropic).submit(thread.id, "remember the range")
    assert outcome.status == "done" and outcome.tool_calls == 2
    notes = await harness.store.notes.all()
    assert [n.text for n in notes] == ["BTC range 58k-62k"]
    results = user_blocks(fake.requests[-1].body)
    assert [b["type"] for b in results] == ["tool_result", "tool_result"]
    assert "BTC range 58k-62k" in str(results[1]["content"])  # the second call saw the first one's effect


async def test_invalid_arguments_are_fed_back_with_every_error(harness: Harness, fake: FakeAnthropic,
                                                               anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("open_trade", {"market": "BTC", "side": "sideways", "risk_usd": "10", "bogus": 1})),
                reply(text("I will fix the call.")))
    thread = await harness.thread_ops.chat()
    outcome = await harness.runner(anthropic).submit(thread.id, "go long")
    assert outcome.status == "done"
    result = user_blocks(fake.requests[-1].body)[0]
    assert result["is_error"] is True
    content = str(result["content"])
    for expected in ("side", "stop_px", "target_px", "conviction", "thesis", "invalidation",
                     "bogus: unknown argument"):
        assert expected in content, (expected, content)


async def test_risk_refusal_reasons_go_back_to_the_model(harness: Harness, fake: FakeAnthropic,
                                                         anthropic: AnthropicProvider) -> None:
    # stop above the entry for a long, and a risk far above the per-trade cap: two reasons at once
    args = {"market": "BTC", "side": "long", "stop_px": "61000", "target_px": "65000", "conviction": 70,
            "risk_usd": "500", "rationale": "breakout", "thesis": "breakout", "invalidation": "back in the range"}
    fake.script(reply(tool("open_trade", args)), reply(text("Refused; standing aside.")))
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    outcome = await harness.runner(anthropic).submit(thread.id, "buy BTC", listener=events.append)
    assert outcome.status == "done"
    result = user_blocks(fake.requests[-1].body)[0]
    assert result["is_error"] is True
    content = str(result["content"])
    assert content.startswith("REFUSED by the risk engine")
    assert "stop_wrong_side" in content and "risk_per_trade" in content
    assert await harness.services.journal.all() == []  # nothing was sent
    tool_results = [e for e in events if e.kind == "tool_result"]
    assert tool_results[0].data["is_error"] is True


async def test_overload_before_the_stream_is_retried(harness: Harness, fake: FakeAnthropic,
                                                     anthropic: AnthropicProvider) -> None:
    fake.script(overloaded(), reply(text("back")))
    thread = await harness.thread_ops.chat()
    outcome = await harness.runner(anthropic).submit(thread.id, "hi")
    assert outcome.status == "done" and outcome.text == "back"
    assert fake.requests[0].status == 529


async def test_interrupt_keeps_streamed_text_and_the_next_turn_is_valid(harness: Harness, fake: FakeAnthropic,
                                                                        anthropic: AnthropicProvider) -> None:
    fake.script(reply(text("Thinking about a very long answer " * 4, chunks=20), delay_s=0.05),
                reply(text("Short answer.")))
    thread = await harness.thread_ops.chat()
    runner = harness.runner(anthropic)
    events: list[TurnEvent] = []
    got_text = asyncio.Event()

    def listener(e: TurnEvent) -> None:
        events.append(e)
        if e.kind == "text":
            got_text.set()

    fut = runner.submit(thread.id, "explain everything", listener=listener)
    await asyncio.wait_for(got_text.wait(), 5)
    assert runner.interrupt(thread.id)
    outcome = await asyncio.wait_for(fut, 5)
    assert outcome.status == "interrupted"
    assert outcome.text and outcome.text in "Thinking about a very long answer " * 4
    log = await harness.threads.transcript(thread.id)
    assistant = [e for e in log if e.kind == "assistant"]
    assert assistant[-1].interrupted and assistant[-1].blocks[0]["text"] == outcome.text
    assert log[-1].kind == "turn_end" and log[-1].status == "interrupted"
    # the next turn replays the partial answer and the API accepts it
    second = await runner.submit(thread.id, "short please")
    assert second.status == "done", second.error
    assert fake.requests[-1].body["messages"][1]["content"][0]["text"] == outcome.text


async def test_messages_arriving_mid_turn_are_merged_into_the_next_turn(harness: Harness, fake: FakeAnthropic,
                                                                        anthropic: AnthropicProvider) -> None:
    fake.script(reply(text("one two three four", chunks=8), delay_s=0.03), reply(text("merged")))
    thread = await harness.thread_ops.chat()
    runner = harness.runner(anthropic)
    first = runner.submit(thread.id, "first")
    await asyncio.wait_for(fake.stream_started.wait(), 5)
    second = runner.submit(thread.id, "second")
    third = runner.submit(thread.id, "third")
    o1 = await first
    o2, o3 = await second, await third
    assert o1.turn_id != o2.turn_id and o2.turn_id == o3.turn_id and o2.text == "merged"
    users = [e.text for e in await harness.threads.transcript(thread.id) if e.kind == "user"]
    assert users == ["first", "second\n\nthird"]
    assert user_blocks(fake.requests[-1].body)[-1]["text"] == "second\n\nthird"


async def test_usage_and_cost_per_thread_and_day(harness: Harness, fake: FakeAnthropic,
                                                 anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("get_snapshot", {})), reply(text("done")))
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    outcome = await harness.runner(anthropic).submit(thread.id, "status", listener=events.append)
    usage_events = [e.data for e in events if e.kind == "usage"]
    assert len(usage_events) == 2
    expected = Decimal(0)
    for u in usage_events:
        expected += cost_usd(Usage(u["input_tokens"], u["output_tokens"], u["cache_creation_input_tokens"],
                                   u["cache_read_input_tokens"], u["model"]))
    assert expected > 0 and outcome.cost_usd == expected
    per_thread = await harness.threads.thread_usage(thread.id)
    per_day = await harness.threads.day_usage(harness.clock().date())
    assert per_thread.cost_usd == per_day.cost_usd == expected
    assert per_thread.calls == 2
    assert per_thread.output_tokens == sum(u["output_tokens"] for u in usage_events)


async def test_day_budget_stops_the_turn_and_tells_the_trader(harness: Harness, fake: FakeAnthropic,
                                                              anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("get_snapshot", {})), reply(text("never reached")))
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    runner = harness.runner(anthropic, max_usd_per_day=Decimal("0.000001"))
    outcome = await runner.submit(thread.id, "status", listener=events.append)
    assert outcome.status == "budget" and outcome.model_calls == 1
    assert any(e.kind == "error" and e.data["code"] == "budget_day" for e in events)
    assert fake.pending == 1  # the second model call never happened
    # the transcript stays valid: the tool call was answered before the stop
    log = await harness.threads.transcript(thread.id)
    assert [e.kind for e in log][-2:] == ["tool_results", "turn_end"]
    again = await runner.submit(thread.id, "hello?")
    assert again.status == "budget" and again.model_calls == 0


async def test_alert_turn_budget_stops_the_thread(harness: Harness, fake: FakeAnthropic,
                                                  anthropic: AnthropicProvider) -> None:
    from datetime import timedelta

    from revagent.engine.threads import run_alert_turn
    from revagent.store.alert_events import AlertEvent

    fake.script(reply(tool("get_snapshot", {})), reply(text("never reached")))
    runner = harness.runner(anthropic, max_usd_per_alert_turn=Decimal("0.000001"))
    event = AlertEvent(alert_id="t_1", kind="time", trigger_key="t_1#2026-03-02T12:00:00Z",
                       fired_at=harness.clock() - timedelta(seconds=1), context={"prompt": "check BTC"})
    outcome = await run_alert_turn(runner, harness.thread_ops, event)
    assert outcome.status == "budget"
    thread = await harness.threads.get(outcome.thread_id)
    assert thread is not None and thread.status == "stopped" and "budget" in thread.stopped_reason
    # the alert suffix opened the turn's user message, after the snapshot
    first_user = user_blocks(fake.requests[0].body)
    assert first_user[0]["text"].startswith("# RUNTIME SNAPSHOT") and "# ALERT: time (t_1)" in first_user[0]["text"]
    assert fake.requests[0].body["system"][1]["text"].startswith("This is an alert thread")


async def test_rate_limit_and_mid_stream_overload_are_retried(harness: Harness, fake: FakeAnthropic,
                                                              anthropic: AnthropicProvider) -> None:
    from revagent.engine.providers.retry import RetryingProvider, RetryPolicy
    from tests.fakes.anthropic_server import http_error

    async def no_sleep(_s: float) -> None:
        return None

    provider = RetryingProvider(anthropic, RetryPolicy(attempts=3, base_delay_s=0.0), sleep=no_sleep)
    fake.script(http_error(429, retry_after=0), reply(text("partial"), error_after=0), reply(text("recovered")))
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    outcome = await harness.runner(provider).submit(thread.id, "hi", listener=events.append)
    assert outcome.status == "done" and outcome.text == "recovered"
    assert [r.status for r in fake.requests][:1] == [429]
    assert any(e.kind == "notice" and "retrying" in e.data["text"] for e in events)


async def test_an_unreachable_model_is_reported_to_the_session_then_its_return(
        harness: Harness, fake: FakeAnthropic) -> None:
    from revagent.events import ConnectionChanged

    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10, max_retries=0)
    health = harness.bus.subscribe(ConnectionChanged)
    try:
        fake.script(overloaded(), reply(text("back")))
        thread = await harness.thread_ops.chat()
        runner = harness.runner(provider)
        failed = await runner.submit(thread.id, "hi")
        assert failed.status == "error"
        down = await asyncio.wait_for(health.get(), 2)
        assert isinstance(down, ConnectionChanged) and (down.link, down.up) == ("model", False)
        again = await runner.submit(thread.id, "still there?")
        assert again.status == "done", again.error
        back = await asyncio.wait_for(health.get(), 2)
        assert isinstance(back, ConnectionChanged) and (back.link, back.up) == ("model", True)
    finally:
        health.close()
        await provider.aclose()


async def test_an_oversized_tool_input_never_enters_the_transcript(harness: Harness, fake: FakeAnthropic,
                                                                  anthropic: AnthropicProvider) -> None:
    """Issue 12 item 8: a 1 MB add_note was refused but stayed in the thread, resent with every turn."""
    import json

    huge = "x" * 1_000_000
    fake.script(reply(text("Noting."), tool("add_note", {"text": huge}, id="toolu_huge", chunks=50)),
                reply(text("That note was too long.")), reply(text("Fine.")))
    thread = await harness.thread_ops.chat()
    runner = harness.runner(anthropic)
    first = await runner.submit(thread.id, "remember everything")
    assert first.status == "done", first.error
    second = await runner.submit(thread.id, "and now?")
    assert second.status == "done", second.error
    sizes = [len(json.dumps(r.body)) for r in fake.requests]
    assert len(sizes) == 3 and max(sizes[1:]) < 50_000, sizes  # the request stays bounded
    # the model was told, as the call's error, and the call kept its id
    [result] = [b for b in user_blocks(fake.requests[1].body) if b.get("type") == "tool_result"]
    assert result["tool_use_id"] == "toolu_huge" and result["is_error"] is True
    assert "too large" in str(result["content"])
    log = await harness.threads.transcript(thread.id)
    assert max(len(e.model_dump_json()) for e in log) < 10_000
    assert await harness.store.notes.all() == []  # nothing ran
