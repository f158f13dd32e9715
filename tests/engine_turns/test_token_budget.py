"""The context budget in tokens from the API, not characters (issue 15.6): the compaction trigger uses
the thread's last call's usage (input + cache read + cache write) and, near the limit, the
token-counting endpoint; chars/4 is the last resort. The fake counts 3 characters per token (the
engine guesses 4), so each figure shows where it came from."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.events import TurnEvent
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, prompt_units, reply, text

pytestmark = pytest.mark.timeout(60)
BIG = 10_000_000


def counted(body: dict[str, Any]) -> int:
    """The fake's own count of a request's prompt (what its usage and count_tokens report)."""
    return sum(t for _, t, _ in prompt_units(body))


def compactions(events: list[TurnEvent]) -> list[dict[str, Any]]:
    return [e.data["compaction"] for e in events if e.kind == "notice" and "compaction" in e.data]


def budget_for(threshold: float) -> int:
    return int(threshold / 0.8) + 1  # compaction_threshold_tokens is 80% of the budget


async def two_turns(harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> tuple[Any, str, int]:
    fake.script(*(reply(text(f"answer {i} " + "the range holds " * 30)) for i in range(3)))
    runner = harness.runner(anthropic, context_budget_tokens=BIG, keep_turns=1)
    thread = await harness.thread_ops.chat()
    for i in range(2):
        outcome = await runner.submit(thread.id, f"question {i} " + "what about funding " * 20)
        assert outcome.status == "done", outcome.error
    body = fake.requests[-1].body
    usage = counted(body)
    return runner, thread.id, usage


async def test_the_trigger_uses_the_last_calls_usage(harness: Harness, fake: FakeAnthropic,
                                                     anthropic: AnthropicProvider) -> None:
    runner, thread_id, usage = await two_turns(harness, fake, anthropic)
    runner.settings = dataclasses.replace(runner.settings, context_budget_tokens=budget_for(usage * 0.5))
    events: list[TurnEvent] = []
    outcome = await runner.submit(thread_id, "and now?", listener=events.append)
    assert outcome.status == "done", outcome.error
    [c] = compactions(events)
    assert c["source"] == "usage" and c["tokens"] >= usage  # the API's figure of the last call, plus the new message
    assert fake.count_requests == []  # far over the limit: no count needed
    assert "from the last call's usage" in next(e.data["text"] for e in events if e.kind == "notice")


async def test_near_the_limit_the_counting_endpoint_decides_where_chars_would_not(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    _, thread_id, usage = await two_turns(harness, fake, anthropic)
    limit = usage * 0.9
    fresh = harness.runner(anthropic, context_budget_tokens=budget_for(limit), keep_turns=1)  # no usage known
    events: list[TurnEvent] = []
    outcome = await fresh.submit(thread_id, "and now?", listener=events.append)
    assert outcome.status == "done", outcome.error
    [c] = compactions(events)
    assert c["source"] == "count_tokens"
    [count] = fake.count_requests
    assert c["tokens"] == counted(count.body) > c["limit"]  # the endpoint's exact figure, over the limit
    assert c["estimate"] < c["limit"]  # chars/4 alone would have let the prompt through
    assert count.body["messages"][-1]["content"][-1]["text"].endswith("and now?")  # the request about to be sent


async def test_below_the_band_nothing_is_counted_or_compacted(harness: Harness, fake: FakeAnthropic,
                                                              anthropic: AnthropicProvider) -> None:
    runner, thread_id, usage = await two_turns(harness, fake, anthropic)
    runner.settings = dataclasses.replace(runner.settings, context_budget_tokens=budget_for(usage * 2))
    events: list[TurnEvent] = []
    assert (await runner.submit(thread_id, "and now?", listener=events.append)).status == "done"
    assert compactions(events) == [] and fake.count_requests == []
