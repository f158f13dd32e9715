"""Turn-start retries and the fallback provider: the real SDK against the fake, and the offline provider."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.base import (
    Finished,
    Message,
    ModelRequest,
    Notice,
    ProviderError,
    StreamEvent,
    TextDelta,
    Usage,
)
from revagent.engine.providers.fallback import FallbackProvider
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.providers.pricing import cost_usd
from revagent.engine.providers.retry import RetryingProvider, RetryPolicy, with_retries
from tests.engine.conftest import TEST_KEY
from tests.fakes.anthropic_server import FakeAnthropic, http_error, overloaded, reply, text

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)
REQ = ModelRequest(model="claude-sonnet-4-6", max_tokens=256, messages=(Message.user("status?"),))


async def collect(provider: object, req: ModelRequest = REQ) -> list[StreamEvent]:
    return [e async for e in provider.stream(req)]  # type: ignore[attr-defined]


def texts(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


class Scripted:
    """A provider that replays canned event lists, one per call (a unit-level stand-in)."""

    name = "scripted"

    def __init__(self, *calls: list[StreamEvent]) -> None:
        self.calls = list(calls)
        self.count = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.count += 1
        for event in self.calls.pop(0):
            yield event


def test_backoff_grows_caps_and_honours_the_server_hint() -> None:
    policy = RetryPolicy(attempts=5, base_delay_s=1.0, max_delay_s=10.0, jitter=0.25)
    assert [policy.delay_s(n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert policy.delay_s(1, rand=lambda: 1.0) == 0.75  # jitter shortens by up to 25 %
    assert policy.delay_s(1, hint_s=6.0, rand=lambda: 0.0) == 6.0
    assert policy.delay_s(1, hint_s=60.0, rand=lambda: 0.0) == 10.0


async def test_retries_stop_after_the_attempts_and_surface_the_error() -> None:
    overload = ProviderError("overloaded", "Overloaded", True)
    inner = Scripted([overload], [overload], [overload])
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    events = await collect(RetryingProvider(inner, FAST, sleep=fake_sleep))
    assert inner.count == 3 and len(sleeps) == 2
    assert [type(e) for e in events] == [Notice, Notice, ProviderError]


async def test_non_retryable_errors_are_not_retried() -> None:
    inner = Scripted([ProviderError("bad_request", "nope", False)])
    events = await collect(with_retries(inner, FAST))
    assert inner.count == 1 and events == [ProviderError("bad_request", "nope", False)]


async def test_no_key_is_a_configuration_error_chat_sees_it_alerts_run_offline(fake: FakeAnthropic) -> None:
    primary = AnthropicProvider(api_key=None, base_url=fake.base_url)
    chat = await collect(FallbackProvider(with_retries(primary, FAST), OfflineProvider()))
    assert chat == [ProviderError("auth", "no Anthropic API key configured", False)]  # no silent fall to offline
    alert_req = dataclasses.replace(REQ, thread_kind="alert")
    events = await collect(FallbackProvider(with_retries(primary, FAST), OfflineProvider()), alert_req)
    notice = events[0]
    assert isinstance(notice, Notice) and "misconfigured" in notice.text and "auth" in notice.text
    assert notice.config_error is not None and notice.config_error.kind == "auth"
    assert "No language model is configured" in texts(events)
    assert events[-1] == Finished("end_turn")
    assert fake.requests == []


async def test_overload_after_all_retries_falls_back(fake: FakeAnthropic) -> None:
    primary = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, max_retries=1)
    # SDK: 529, retry 529 -> our wrapper retries once more: 529, 529 -> fallback
    fake.script(overloaded(), overloaded(), overloaded(), overloaded())
    provider = FallbackProvider(
        with_retries(primary, RetryPolicy(attempts=2, base_delay_s=0.01)), OfflineProvider()
    )
    events = await collect(provider)
    await primary.aclose()
    assert len(fake.requests) == 4
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 2 and "retrying" in notices[0] and "switching to offline" in notices[1]
    assert "No language model is configured" in texts(events)
    costs = [cost_usd(e) for e in events if isinstance(e, Usage)]
    assert costs == [0]  # only the offline call produced usage


async def test_fallback_to_another_model_on_the_same_endpoint(fake: FakeAnthropic) -> None:
    primary = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    second = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    fake.script(http_error(429, "rate limited", retry_after=0.01), reply("from haiku"))
    provider = FallbackProvider(primary, second, fallback_model="claude-haiku-4-5")
    events = await collect(provider)
    await primary.aclose()
    await second.aclose()
    assert texts(events) == "from haiku"
    assert [r.body["model"] for r in fake.requests] == ["claude-sonnet-4-6", "claude-haiku-4-5"]
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.model == "claude-haiku-4-5"


async def test_no_fallback_once_text_was_streamed(fake: FakeAnthropic) -> None:
    primary = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    fake.script(reply(text("partial answ", chunks=2), error_after=5))
    events = await collect(FallbackProvider(with_retries(primary, FAST), OfflineProvider()))
    await primary.aclose()
    assert texts(events) == "partial answ"
    assert isinstance(events[-1], ProviderError) and events[-1].streamed
    assert not any(isinstance(e, Notice) for e in events)


async def test_switch_on_can_exclude_bad_requests() -> None:
    inner = Scripted([ProviderError("bad_request", "messages: broken", False)])
    provider = FallbackProvider(inner, OfflineProvider(), switch_on=frozenset({"overloaded"}))
    events = await collect(provider)
    assert events == [ProviderError("bad_request", "messages: broken", False)]


async def test_cancelling_through_both_wrappers_closes_the_http_stream(fake: FakeAnthropic) -> None:
    import asyncio
    import contextlib

    primary = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    fake.script(reply(text("tick " * 200, chunks=100), delay_s=0.02))
    provider = FallbackProvider(with_retries(primary, FAST), OfflineProvider())
    got_text = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(REQ):
            if isinstance(event, TextDelta):
                got_text.set()

    task = asyncio.create_task(consume(), name="test-consume-wrapped")
    await asyncio.wait_for(got_text.wait(), 3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(fake.disconnected.wait(), 3)
    await primary.aclose()
    assert fake.disconnects == 1 and len(fake.requests) == 1
