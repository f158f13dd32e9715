"""The TurnEngine facade the TUI and the session use: thread list, history, send, proposals, build."""

from __future__ import annotations

import asyncio

from revagent.config import LLMSettings
from revagent.engine.providers.fallback import FallbackProvider
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.providers.retry import RetryingProvider
from revagent.engine.service import TurnEngine, build_provider
from revagent.events import TurnEvent
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool


async def test_thread_list_history_and_send(harness: Harness, fake: FakeAnthropic) -> None:
    from revagent.engine.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    runner = harness.runner(provider)
    engine = TurnEngine(threads=harness.thread_ops, runner=runner, proposals=harness.proposals)
    fake.script(reply(text("Looking."), tool("get_snapshot", {"section": "risk"})), reply(text("All fine.")))
    info = await engine.new_thread("desk")
    sub = harness.bus.subscribe(TurnEvent)
    await engine.send(info.id, "how is risk?")
    kinds: list[str] = []
    async with asyncio.timeout(10):
        while not kinds or kinds[-1] != "done":
            kinds.append((await sub.get()).kind)  # type: ignore[attr-defined]
    assert kinds[0] == "started" and "tool_call" in kinds and "usage" in kinds
    threads = await engine.threads()
    assert [(t.title, t.kind, t.status) for t in threads] == [("desk", "chat", "idle")]
    history = await engine.history(info.id)
    assert [(h.role, h.text) for h in history] == [("user", "how is risk?"), ("assistant", "Looking."),
                                                   ("notice", "tools: get_snapshot"), ("assistant", "All fine.")]
    await engine.rename_thread(info.id, "risk desk")
    await engine.close_thread(info.id)
    assert await engine.threads() == []
    await provider.aclose()


def test_build_provider_follows_the_llm_config() -> None:
    assert isinstance(build_provider(LLMSettings(provider="offline"), env={}), OfflineProvider)
    assert isinstance(build_provider(LLMSettings(), env={}), OfflineProvider)  # no key: offline
    with_key = build_provider(LLMSettings(), env={"ANTHROPIC_API_KEY": "k"})
    assert isinstance(with_key, FallbackProvider) and isinstance(with_key.fallback, OfflineProvider)
    assert isinstance(build_provider(LLMSettings(fallback=""), env={"ANTHROPIC_API_KEY": "k"}), RetryingProvider)
    chained = build_provider(LLMSettings(fallback="claude-haiku-4-5"), env={"ANTHROPIC_API_KEY": "k"})
    assert isinstance(chained, FallbackProvider) and isinstance(chained.primary, FallbackProvider)
    assert chained.primary.fallback_model == "claude-haiku-4-5"
