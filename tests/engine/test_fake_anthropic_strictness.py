"""The fake rejects what the real Messages API rejects, with the real error shape (raw HTTP, no SDK)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.engine.conftest import TEST_KEY
from tests.fakes.anthropic_server import FakeAnthropic, reply, text

HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
TOOL = {"name": "get_market", "description": "d", "input_schema": {"type": "object", "properties": {}}}


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


async def post(
    fake: FakeAnthropic, payload: dict[str, Any], headers: dict[str, str] = HEADERS
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/messages", json=payload, headers=headers) as resp,
    ):
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def use(tid: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": tid, "name": "get_market", "input": {}}


def result(tid: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tid, "content": "ok"}


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no model", body(model=None), "model: Field required"),
    ("no max_tokens", body(max_tokens=None), "max_tokens: Field required"),
    ("empty messages", body(messages=[]), "at least one message"),
    ("assistant first", body(messages=[{"role": "assistant", "content": "hi"}]), "first message must use"),
    ("empty text", body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), "non-empty"),
    ("bad tool name", body(tools=[{**TOOL, "name": "get market!"}]), "String should match pattern"),
    ("long tool name", body(tools=[{**TOOL, "name": "x" * 65}]), "String should match pattern"),
    ("schema not object", body(tools=[{**TOOL, "input_schema": {"type": "string"}}]), "input_schema.type"),
    ("duplicate tools", body(tools=[TOOL, TOOL]), "Tool names must be unique"),
    (
        "tool blocks without tools",
        body(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [use("toolu_1")]},
                {"role": "user", "content": [result("toolu_1")]},
            ]
        ),
        "must define tools",
    ),
    (
        "unanswered tool_use",
        body(
            tools=[TOOL],
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [use("toolu_1"), use("toolu_2")]},
                {"role": "user", "content": [result("toolu_1")]},
            ],
        ),
        "without `tool_result` blocks immediately after: toolu_2",
    ),
    (
        "tool_result after text",
        body(
            tools=[TOOL],
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [use("toolu_1")]},
                {"role": "user", "content": [{"type": "text", "text": "here"}, result("toolu_1")]},
            ],
        ),
        "without `tool_result` blocks immediately after",
    ),
    (
        "orphan tool_result",
        body(tools=[TOOL], messages=[{"role": "user", "content": [result("toolu_9")]}]),
        "unexpected `tool_use_id`",
    ),
    (
        "tool_use in a user message",
        body(tools=[TOOL], messages=[{"role": "user", "content": [use("toolu_1")]}]),
        "only allowed in assistant messages",
    ),
    (
        "five breakpoints",
        body(
            system=[
                {"type": "text", "text": f"s{i}", "cache_control": {"type": "ephemeral"}} for i in range(5)
            ]
        ),
        "A maximum of 4 blocks with cache_control",
    ),
    (
        "bad cache type",
        body(system=[{"type": "text", "text": "s", "cache_control": {"type": "forever"}}]),
        "ephemeral",
    ),
    ("temperature > 1", body(temperature=1.5), "temperature"),
    (
        "bad image",
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="},
                        }
                    ],
                }
            ]
        ),
        "invalid image source",
    ),
]


@pytest.mark.parametrize(("case", "payload", "message"), BAD, ids=[b[0] for b in BAD])
async def test_invalid_requests_get_400_with_the_real_error_shape(
    fake: FakeAnthropic, case: str, payload: dict[str, Any], message: str
) -> None:
    fake.script(reply("never"))
    status, answer = await post(fake, payload)
    assert status == 400, answer
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert message in answer["error"]["message"]
    assert answer["request_id"].startswith("req_")
    assert fake.pending == 1  # a rejected request consumes no scripted reply


async def test_missing_or_wrong_key_is_401(fake: FakeAnthropic) -> None:
    status, answer = await post(fake, body(), {k: v for k, v in HEADERS.items() if k != "x-api-key"})
    assert (status, answer["error"]["type"]) == (401, "authentication_error")
    status, answer = await post(fake, body(), {**HEADERS, "x-api-key": "sk-wrong"})
    assert (status, answer["error"]["type"]) == (401, "authentication_error")


async def test_missing_anthropic_version_is_400(fake: FakeAnthropic) -> None:
    status, answer = await post(fake, body(), {k: v for k, v in HEADERS.items() if k != "anthropic-version"})
    assert status == 400 and "anthropic-version" in answer["error"]["message"]


async def test_valid_tool_loop_and_merged_same_role_turns_are_accepted(fake: FakeAnthropic) -> None:
    fake.script(reply(text("fine!!", chunks=3)))
    payload = body(
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "go"},
            {"role": "user", "content": "also this"},  # merged into one user turn, as the API documents
            {"role": "assistant", "content": [{"type": "text", "text": "checking"}, use("toolu_1")]},
            {"role": "user", "content": [result("toolu_1"), {"type": "text", "text": "and?"}]},
        ],
    )
    status, answer = await post(fake, payload)
    assert status == 200
    events = [line.split(": ", 1)[1] for line in answer.splitlines() if line.startswith("event: ")]
    assert events == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_unscripted_request_fails_loudly_without_sdk_retries(fake: FakeAnthropic) -> None:
    status, answer = await post(fake, body())
    assert status == 500 and "no scripted reply" in answer["error"]["message"]
