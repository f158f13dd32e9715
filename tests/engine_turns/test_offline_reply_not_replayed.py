"""Issue 23 item 9: the offline reply (its list of slash commands) is shown in the thread but never
enters the model's transcript: once a real model runs, its request has no such assistant turn."""

from __future__ import annotations

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.offline import OfflineProvider
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, reply, text


async def test_the_offline_reply_is_not_sent_to_the_model_later(harness: Harness, fake: FakeAnthropic,
                                                                anthropic: AnthropicProvider) -> None:
    thread = await harness.thread_ops.chat()
    await harness.runner(OfflineProvider()).submit(thread.id, "should I long BTC?")
    shown = [e for e in await harness.threads.transcript(thread.id) if e.kind == "assistant"]
    assert any("cannot answer free text" in str(e.blocks) for e in shown)  # the trader still reads it

    fake.script(reply(text("BTC looks range-bound.")))
    await harness.runner(anthropic).submit(thread.id, "and now, with a model?")
    messages = fake.requests[-1].body["messages"]
    assistant = [m for m in messages if m["role"] == "assistant"]
    assert assistant == [], assistant
    said = str(messages)
    assert "cannot answer free text" not in said and "slash commands work without a model" not in said
    assert "should I long BTC?" in said and "and now, with a model?" in said
