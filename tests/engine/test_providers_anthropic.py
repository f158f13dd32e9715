"""The Anthropic provider with the real anthropic SDK against the strict local fake."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from decimal import Decimal

from revagent.config import LLMSettings
from revagent.engine.providers.anthropic import AnthropicProvider, plan_cache, to_api_params
from revagent.engine.providers.base import (
    Finished,
    ImageBlock,
    Message,
    ModelRequest,
    Notice,
    ProviderError,
    StreamEvent,
    SystemBlock,
    TextBlock,
    TextDelta,
    Thinking,
    ThinkingBlock,
    ToolCall,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from revagent.engine.providers.pricing import cost_usd, pricing_for
from revagent.engine.providers.retry import RetryPolicy, with_retries
from tests.engine.conftest import TEST_KEY
from tests.fakes.anthropic_server import FakeAnthropic, ThinkingOut, http_error, overloaded, reply, text, tool

MODEL = "claude-sonnet-4-6"
SCHEMA = {"type": "object", "properties": {"market": {"type": "string"}}, "required": ["market"]}
TOOLS = (
    ToolSpec("get_market", "Market conditions", SCHEMA),
    ToolSpec("modify_stop", "Move a stop", {"type": "object", "properties": {"stop_px": {"type": "string"}}}),
)
FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)


def request(*messages: Message, **kwargs: object) -> ModelRequest:
    fields: dict[str, object] = {
        "model": MODEL,
        "max_tokens": 512,
        "messages": messages or (Message.user("hi"),),
    }
    fields.update(kwargs)
    return ModelRequest(**fields)  # type: ignore[arg-type]


async def collect(provider: object, req: ModelRequest) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    async for event in provider.stream(req):  # type: ignore[attr-defined]
        out.append(event)
    return out


def texts(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streams_text_deltas_in_order(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(reply(text("Hello, trader. BTC looks heavy.", chunks=4)))
    events = await collect(provider, request(temperature=0.3))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 4
    assert texts(events) == "Hello, trader. BTC looks heavy."
    assert isinstance(events[-1], Finished) and events[-1].stop_reason == "end_turn"
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.model == MODEL and usage.input_tokens > 0 and usage.output_tokens > 0
    body = fake.requests[-1].body
    assert body["stream"] is True and body["model"] == MODEL and body["max_tokens"] == 512
    assert body["temperature"] == 0.3
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


async def test_one_tool_call_assembled_from_json_chunks(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    args = {"market": "BTC", "levels": [94000.5, 96000], "note": 'wick {into} "liquidity"'}
    fake.script(reply(tool("get_market", args, id="toolu_01", chunks=7)))
    events = await collect(provider, request(tools=TOOLS))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [ToolCall("toolu_01", "get_market", args)]
    assert isinstance(events[-1], Finished) and events[-1].stop_reason == "tool_use"


async def test_several_tool_calls_in_one_reply_keep_their_order(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(
        reply(
            "Checking both.",
            tool("get_market", {"market": "BTC"}, id="toolu_a"),
            tool("get_market", {"market": "ETH"}, id="toolu_b"),
            tool("modify_stop", {}, id="toolu_c"),
        )
    )
    events = await collect(provider, request(tools=TOOLS))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("TextDelta") < kinds.index("ToolCall")
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.id, c.input) for c in calls] == [
        ("toolu_a", {"market": "BTC"}),
        ("toolu_b", {"market": "ETH"}),
        ("toolu_c", {}),
    ]


async def test_tool_result_round_trip_is_accepted_by_the_strict_fake(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply(tool("get_market", {"market": "BTC"}, id="toolu_1")), reply("BTC funding is negative."))
    first = await collect(provider, request(Message.user("how is BTC?"), tools=TOOLS))
    call = next(e for e in first if isinstance(e, ToolCall))
    history = (
        Message.user("how is BTC?"),
        Message("assistant", (ToolUseBlock(call.id, call.name, call.input),)),
        Message(
            "user",
            (
                ToolResultBlock(call.id, "market BTC: unknown field 'levels'", is_error=True),
                TextBlock("also, keep it short"),
            ),
        ),
    )
    second = await collect(provider, request(*history, tools=TOOLS))
    assert texts(second) == "BTC funding is negative."
    assert fake.requests[-1].status == 200
    sent = fake.requests[-1].body["messages"]
    assert sent[1]["content"][0] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_market",
        "input": {"market": "BTC"},
    }
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "market BTC: unknown field 'levels'",
        "is_error": True,
    }


async def test_image_in_a_tool_result_is_sent_as_base64(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("I see a double top."))
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    history = (
        Message.user("chart?"),
        Message("assistant", (ToolUseBlock("toolu_c", "get_market", {"market": "BTC"}),)),
        Message("user", (ToolResultBlock("toolu_c", (TextBlock("BTC 1h"), ImageBlock(png))),)),
    )
    events = await collect(provider, request(*history, tools=TOOLS))
    assert texts(events) == "I see a double top."
    block = fake.requests[-1].body["messages"][2]["content"][0]["content"][1]
    assert block == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}


async def test_sdk_retries_429_and_529_before_the_stream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(http_error(429, "slow down", retry_after=0.01), overloaded(), reply("made it"))
    events = await collect(provider, request())
    assert texts(events) == "made it"
    assert [r.status for r in fake.requests] == [429, 529, 200]
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1", "2"]


async def test_rate_limit_after_the_sdk_gives_up_is_a_retryable_error(fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    fake.script(http_error(429, "rate limited", retry_after=7))
    events = await collect(provider, request())
    await provider.aclose()
    assert events == [ProviderError("rate_limited", "rate limited", True, 7.0, 429)]


async def test_mid_stream_overload_is_not_retried_by_the_sdk(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("never shown", error_after=2))  # message_start, ping, then `event: error`
    events = await collect(provider, request())
    assert len(fake.requests) == 1  # the SDK did not retry
    err = events[-1]
    assert isinstance(err, ProviderError)
    assert (err.kind, err.retryable, err.streamed) == ("overloaded", True, False)
    assert isinstance(events[0], Usage)  # input was billed: reported before the error


async def test_mid_stream_overload_is_retried_by_our_wrapper(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("never shown", error_after=2), reply("second try"))
    events = await collect(with_retries(provider, FAST), request())
    assert texts(events) == "second try"
    assert any(isinstance(e, Notice) and "retrying" in e.text for e in events)
    assert isinstance(events[-1], Finished)
    assert len(fake.requests) == 2


async def test_overload_after_text_was_streamed_is_passed_through(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    # message_start, ping, block start, 2 text deltas, then the error
    fake.script(reply(text("half an answ", chunks=2), error_after=5), reply("should not be asked"))
    events = await collect(with_retries(provider, FAST), request())
    assert texts(events) == "half an answ"
    err = events[-1]
    assert isinstance(err, ProviderError) and err.kind == "overloaded" and err.streamed
    assert len(fake.requests) == 1 and fake.pending == 1


async def test_stopping_iteration_closes_the_http_stream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply(text("tick " * 200, chunks=100), delay_s=0.02))
    stream = provider.stream(request())
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, TextDelta):
                break
    await asyncio.wait_for(fake.disconnected.wait(), 3)
    assert fake.disconnects == 1


async def test_cancelling_the_task_closes_the_http_stream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply(text("tick " * 200, chunks=100), delay_s=0.02))
    got_text = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(request()):
            if isinstance(event, TextDelta):
                got_text.set()

    task = asyncio.create_task(consume(), name="test-consume-stream")
    await asyncio.wait_for(got_text.wait(), 3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(fake.disconnected.wait(), 3)
    assert fake.disconnects == 1


async def test_a_request_the_api_rejects_is_a_non_retryable_bad_request(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("unused"))
    events = await collect(provider, request(Message.assistant("I start"), Message.user("no")))
    assert len(events) == 1
    err = events[0]
    assert isinstance(err, ProviderError)
    assert (err.kind, err.retryable, err.status) == ("bad_request", False, 400)
    assert 'first message must use the "user" role' in err.message
    assert len(fake.requests) == 1 and fake.pending == 1  # not retried; the script item is kept


async def test_unanswered_tool_use_is_rejected(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    history = (
        Message.user("go"),
        Message("assistant", (ToolUseBlock("toolu_x", "get_market", {"market": "BTC"}),)),
        Message.user("why no answer?"),
    )
    events = await collect(provider, request(*history, tools=TOOLS))
    err = events[-1]
    assert isinstance(err, ProviderError) and err.kind == "bad_request"
    assert "toolu_x" in err.message and "tool_result" in err.message


async def test_wrong_key_is_an_auth_error(fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(api_key="sk-wrong", base_url=fake.base_url)
    events = await collect(provider, request())
    await provider.aclose()
    assert len(events) == 1 and isinstance(events[0], ProviderError)
    assert (events[0].kind, events[0].retryable, events[0].status) == ("auth", False, 401)


async def test_no_key_fails_fast_without_network(fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(api_key=None, base_url=fake.base_url)
    events = await collect(provider, request())
    assert events == [ProviderError("auth", "no Anthropic API key configured", False)]
    assert fake.requests == []


async def test_unreachable_endpoint_is_a_retryable_connection_error() -> None:
    async with FakeAnthropic() as gone:
        url = gone.base_url
    provider = AnthropicProvider(api_key=TEST_KEY, base_url=url, max_retries=0, timeout_s=2)
    events = await collect(provider, request())
    await provider.aclose()
    assert len(events) == 1 and isinstance(events[0], ProviderError)
    assert (events[0].kind, events[0].retryable) == ("connection", True)


def cached_request(history: tuple[Message, ...] = ()) -> ModelRequest:
    return request(
        *(history or (Message.user("status?"),)),
        system=(
            SystemBlock("You are revagent. " * 400, cache=True),
            SystemBlock("Thread: chat."),
            SystemBlock("Notes: keep BTC risk small. " * 100, cache=True),
        ),
        tools=TOOLS,
    )


async def test_cache_control_sits_on_the_last_tool_and_the_cached_system_blocks(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("ok"))
    await collect(provider, cached_request())
    rec = fake.requests[-1]
    assert rec.cache_breakpoints() == ["tools[1]", "system[0]", "system[2]"]
    assert rec.body["tools"][1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in rec.body["system"][1]


def test_more_than_four_breakpoints_are_trimmed_keeping_the_latest() -> None:
    req = request(
        Message.user(
            "a",
        ),
        Message("assistant", (TextBlock("b"),), cache=True),
        Message("user", (TextBlock("c"),), cache=True),
        system=tuple(SystemBlock(f"layer {i}", cache=True) for i in range(4)),
        tools=TOOLS,
    )
    plan = plan_cache(req)
    assert plan.count == 4
    assert plan.messages == {1, 2} and plan.tool and plan.system == {3}
    params = to_api_params(req)
    assert sum("cache_control" in b for b in params["system"]) == 1
    assert "cache_control" in params["messages"][2]["content"][-1]


async def test_five_breakpoints_are_rejected_by_the_fake_like_the_api(fake: FakeAnthropic) -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    cc = {"type": "ephemeral"}
    try:
        with contextlib.suppress(anthropic.BadRequestError):
            await client.messages.create(
                model=MODEL,
                max_tokens=10,
                stream=True,
                system=[{"type": "text", "text": f"s{i}", "cache_control": cc} for i in range(5)],  # type: ignore[misc]
                messages=[{"role": "user", "content": "hi"}],
            )
    finally:
        await client.close()
    assert fake.requests[-1].status == 400
    assert "A maximum of 4 blocks with cache_control may be provided. Found 5." in fake.requests[-1].error


async def test_usage_reports_cache_writes_then_reads_and_prices_them(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("first"), reply("second"))
    first = next(e for e in await collect(provider, cached_request()) if isinstance(e, Usage))
    history = (Message.user("status?"), Message.assistant("first"), Message.user("and now?"))
    second = next(e for e in await collect(provider, cached_request(history)) if isinstance(e, Usage))

    assert first.cache_creation_input_tokens > 1024 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens > first.input_tokens  # the new messages are not cached

    p = pricing_for(MODEL)
    assert p is not None
    assert (p.input, p.output, p.cache_write, p.cache_read) == (
        Decimal("3"),
        Decimal("15"),
        Decimal("3.75"),
        Decimal("0.30"),
    )
    expected = (
        Decimal(first.input_tokens) * 3
        + Decimal(first.output_tokens) * 15
        + Decimal(first.cache_creation_input_tokens) * Decimal("3.75")
    ) / 1_000_000
    assert cost_usd(first) == expected
    assert cost_usd(second) < cost_usd(first)  # reading the cache is 12.5x cheaper than writing it
    total = first + second
    assert total.prompt_tokens == first.prompt_tokens + second.prompt_tokens


def test_worked_cost_example() -> None:
    usage = Usage(
        input_tokens=2_000,
        output_tokens=500,
        cache_creation_input_tokens=10_000,
        cache_read_input_tokens=40_000,
        model="claude-sonnet-4-5-20250929",
    )
    # 2000*3 + 500*15 + 10000*3.75 + 40000*0.30 = 6000 + 7500 + 37500 + 12000 = 63000 micro-dollars
    assert cost_usd(usage) == Decimal("0.063")
    # Opus 4.5: 2000*5 + 500*25 + 10000*6.25 + 40000*0.50 = 10000 + 12500 + 62500 + 20000 = 105000
    assert cost_usd(usage, "claude-opus-4-5") == Decimal("0.105")
    assert cost_usd(usage, "offline") == 0
    assert pricing_for("some-future-model") is None  # never a made-up price (see test_model_table)


def test_from_settings_reads_the_key_env_and_base_url() -> None:
    llm = LLMSettings(base_url="http://127.0.0.1:9/", api_key_env="MY_KEY", timeout=timedelta(seconds=30))
    p = AnthropicProvider.from_settings(llm, env={"MY_KEY": "sk-x", "ANTHROPIC_BASE_URL": "http://other"})
    assert (p.has_key, p.base_url, p.timeout_s) == (True, "http://127.0.0.1:9/", 30.0)
    p2 = AnthropicProvider.from_settings(LLMSettings(), env={"ANTHROPIC_BASE_URL": "http://other"})
    assert (p2.has_key, p2.base_url) == (False, "http://other")


async def test_temperature_is_only_sent_to_models_that_take_it(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("old"), reply("new"))
    await collect(provider, request(temperature=0.2))
    assert fake.requests[-1].body["temperature"] == 0.2
    events = await collect(provider, request(model="claude-opus-4-7", temperature=0.2))
    assert texts(events) == "new"  # the fake (like the API) would answer 400 if it were sent
    assert "temperature" not in fake.requests[-1].body


async def test_the_fake_rejects_temperature_for_models_without_sampling(fake: FakeAnthropic) -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)
    try:
        with contextlib.suppress(anthropic.BadRequestError):
            await client.messages.create(
                model="claude-sonnet-5",
                max_tokens=10,
                stream=True,
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"temperature": 0.5},
            )
    finally:
        await client.close()
    assert fake.requests[-1].status == 400 and "deprecated for this model" in fake.requests[-1].error


async def test_thinking_blocks_are_emitted_whole_and_must_be_replayed_unmodified(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(
        reply(
            ThinkingOut("The stop is 2% away; check funding.", chunks=3),
            tool("get_market", {"market": "BTC"}, id="toolu_t"),
        ),
        reply("Funding is flat."),
    )
    events = await collect(provider, request(Message.user("BTC?"), tools=TOOLS))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Thinking") < kinds.index("ToolCall")
    thought = next(e for e in events if isinstance(e, Thinking)).block
    assert isinstance(thought, ThinkingBlock) and thought.thinking == "The stop is 2% away; check funding."

    def history(block: ThinkingBlock) -> tuple[Message, ...]:
        return (
            Message.user("BTC?"),
            Message("assistant", (block, ToolUseBlock("toolu_t", "get_market", {"market": "BTC"}))),
            Message("user", (ToolResultBlock("toolu_t", "funding 0.00%"),)),
        )

    tampered = await collect(
        provider, request(*history(ThinkingBlock("edited", thought.signature)), tools=TOOLS)
    )
    assert isinstance(tampered[-1], ProviderError) and "signature" in tampered[-1].message
    replayed = await collect(provider, request(*history(thought), tools=TOOLS))
    assert texts(replayed) == "Funding is flat."
    assert fake.requests[-1].body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": thought.thinking,
        "signature": thought.signature,
    }


async def test_a_moving_breakpoint_on_the_newest_message_reuses_the_previous_turns_cache(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(reply("one"), reply("two"))
    turn1 = (Message("user", (TextBlock("long question " * 200),), cache=True),)
    u1 = next(e for e in await collect(provider, cached_request(turn1)) if isinstance(e, Usage))
    turn2 = (
        Message("user", (TextBlock("long question " * 200),)),
        Message.assistant("one"),
        Message("user", (TextBlock("follow-up"),), cache=True),
    )
    u2 = next(e for e in await collect(provider, cached_request(turn2)) if isinstance(e, Usage))
    assert u1.cache_read_input_tokens == 0
    assert u2.cache_read_input_tokens == u1.cache_creation_input_tokens  # found by the 20-block lookback
    assert 0 < u2.cache_creation_input_tokens < 30  # only the new tail is written
    assert fake.requests[-1].cache_breakpoints() == [
        "tools[1]",
        "system[0]",
        "system[2]",
        "messages[2].content[0]",
    ]
