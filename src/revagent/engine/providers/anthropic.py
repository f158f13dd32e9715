"""The Anthropic provider: the streaming Messages API through the official SDK (`AsyncAnthropic`).

- The SDK is imported and the client built lazily, at the first call (importing `anthropic` costs
  ~0.9 s; `revagent --help` and the TUI's first paint must not pay it).
- Endpoint: `base_url` (config `llm.base_url`), else the SDK's own `ANTHROPIC_BASE_URL`, else
  api.anthropic.com. Key: the env var named by `llm.api_key_env` (default `ANTHROPIC_API_KEY`). With
  no key the provider fails fast with `ProviderError(auth)` and never lets the SDK go looking for
  other credentials.
- Prompt caching: `cache_control: {"type": "ephemeral"}` on the last tool (when
  `request.cache_tools`), on every `SystemBlock(cache=True)` and on the last block of every
  `Message(cache=True)`, at most `MAX_CACHE_BREAKPOINTS` (4, the API's limit): when more are asked
  for, the earliest system breakpoints are dropped first (a later breakpoint still caches the whole
  prefix before it; only the granularity is lost).
- The SDK retries 429/529/5xx/connection errors before the stream starts (`max_retries`, honouring
  `retry-after`); an `event: error` inside the stream is not retried by it and surfaces as a
  retryable `ProviderError` (wrap with `with_retries`).
- Tool input JSON is accumulated per content block and parsed once, at `content_block_stop`;
  thinking blocks likewise, emitted whole as `Thinking` (replay them; models with adaptive thinking
  on by default send them).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from revagent.engine.providers.base import (
    ContentBlock,
    ErrorKind,
    Finished,
    ImageBlock,
    Message,
    ModelRequest,
    ProviderError,
    RedactedThinkingBlock,
    StreamEvent,
    TextBlock,
    TextDelta,
    Thinking,
    ThinkingBlock,
    ToolCall,
    ToolUseBlock,
    Usage,
)
from revagent.engine.providers.capabilities import capabilities_for

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

    from revagent.config import LLMSettings

log = logging.getLogger(__name__)

MAX_CACHE_BREAKPOINTS = 4
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}


# --- request mapping (pure) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachePlan:
    """Where the breakpoints go: the last tool, system block indices, message indices."""

    tool: bool
    system: frozenset[int]
    messages: frozenset[int]

    @property
    def count(self) -> int:
        return int(self.tool) + len(self.system) + len(self.messages)


def plan_cache(request: ModelRequest, limit: int = MAX_CACHE_BREAKPOINTS) -> CachePlan:
    """Choose at most `limit` breakpoints: messages' first (they carry the longest prefix), then the
    tool list, then the latest system blocks."""
    msgs = [i for i, m in enumerate(request.messages) if m.cache and m.content][-limit:]
    tool = bool(request.cache_tools and request.tools) and len(msgs) < limit
    room = limit - len(msgs) - int(tool)
    sys_idx = [i for i, b in enumerate(request.system) if b.cache and b.text]
    sys_kept = sys_idx[max(0, len(sys_idx) - room) :] if room > 0 else []
    plan = CachePlan(tool, frozenset(sys_kept), frozenset(msgs))
    asked = (
        len(sys_idx)
        + sum(1 for m in request.messages if m.cache and m.content)
        + int(request.cache_tools and bool(request.tools))
    )
    if asked > plan.count:
        log.warning("prompt cache: %d breakpoints asked, %d kept (API limit %d)", asked, plan.count, limit)
    return plan


def _block_param(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": block.media_type, "data": block.data_b64},
        }
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input)}
    content: str | list[dict[str, Any]] = (
        block.content if isinstance(block.content, str) else [_block_param(b) for b in block.content]
    )
    out: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_use_id, "content": content}
    if block.is_error:
        out["is_error"] = True
    return out


def _message_param(message: Message, cache: bool) -> dict[str, Any]:
    blocks = [_block_param(b) for b in message.content]
    if cache:  # on the last block that may carry one (thinking blocks are replayed unmodified)
        for block in reversed(blocks):
            if block["type"] not in ("thinking", "redacted_thinking"):
                block["cache_control"] = dict(EPHEMERAL)
                break
    return {"role": message.role, "content": blocks}


def to_api_params(request: ModelRequest) -> dict[str, Any]:
    """The Messages API body (without `stream`) for `request`."""
    plan = plan_cache(request)
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [_message_param(m, i in plan.messages) for i, m in enumerate(request.messages)],
    }
    if request.system:
        system = []
        for i, b in enumerate(request.system):
            block: dict[str, Any] = {"type": "text", "text": b.text}
            if i in plan.system:
                block["cache_control"] = dict(EPHEMERAL)
            system.append(block)
        params["system"] = system
    if request.tools:
        tools = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.input_schema)}
            for t in request.tools
        ]
        if plan.tool:
            tools[-1]["cache_control"] = dict(EPHEMERAL)
        params["tools"] = tools
    if request.temperature is not None and accepts_temperature(request.model):
        params["temperature"] = request.temperature
    if request.thinking is not None:
        params["thinking"] = dict(request.thinking)
    if request.effort is not None:
        params["output_config"] = {"effort": request.effort}
    return params


def accepts_temperature(model: str) -> bool:
    """Whether `model` takes a sampling temperature (its capability row; an unknown model: no). Opus
    4.7 and later and the 5.x family answer 400 "`temperature` is deprecated for this model";
    anthropic 2.x dropped the parameter from `messages.create`, so it goes through `extra_body`."""
    row = capabilities_for(model)
    return row is not None and row.temperature


# --- error mapping -------------------------------------------------------------------------------


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is not None:
            try:
                return float(raw) / scale
            except ValueError:
                continue
    return None


def map_exception(exc: Exception) -> ProviderError:
    """Map an SDK exception to a `ProviderError` (imports the SDK: call only from the stream)."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError("timeout", "the model did not answer in time", True)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError("connection", f"cannot reach the model endpoint: {exc}", True)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        message = exc.api_message or str(exc)
        retry_after = _retry_after(exc.response.headers)
        kind: ErrorKind
        retryable: bool
        etype = exc.type
        if etype == "overloaded_error" or status == 529:
            kind, retryable = "overloaded", True
        elif etype == "rate_limit_error" or status == 429:
            kind, retryable = "rate_limited", True
        elif etype in ("authentication_error", "permission_error") or status in (401, 403):
            kind, retryable = "auth", False
        elif etype in ("invalid_request_error", "not_found_error", "request_too_large") or status in (
            400,
            404,
            413,
        ):
            kind, retryable = "bad_request", False
        elif etype == "timeout_error" or status in (408, 504):
            kind, retryable = "timeout", True
        else:
            kind, retryable = "other", status >= 500 or etype == "api_error"
        return ProviderError(kind, message, retryable, retry_after, status)
    if isinstance(exc, anthropic.AnthropicError):
        return ProviderError("other", str(exc), False)
    raise exc


# --- the provider ---


async def load_sdk() -> None:
    """Import the anthropic SDK in a worker thread (~0.9 s) so the event loop never blocks on it.
    Call it early (after the first paint) to take the cost off the first turn; idempotent."""
    if "anthropic" not in sys.modules:
        await asyncio.to_thread(importlib.import_module, "anthropic")


@dataclass
class _ToolBuffer:
    id: str
    name: str
    chunks: list[str] = field(default_factory=list)


class AnthropicProvider:
    """Streams Messages API calls. `api_key` None or empty: every call fails with `auth` (no network).
    `timeout_s` bounds connect and each read (a stalled stream fails); `max_retries` is the SDK's."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self._api_key = api_key or None
        self.base_url = base_url or None
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._client: AsyncAnthropic | None = None

    @classmethod
    def from_settings(
        cls, llm: LLMSettings, env: Mapping[str, str] | None = None, max_retries: int = 2
    ) -> AnthropicProvider:
        """Built from the `[llm]` config: key from `env[llm.api_key_env]`, endpoint `llm.base_url`, else
        `ANTHROPIC_BASE_URL` (the SDK's variable), timeout `llm.timeout`."""
        env = os.environ if env is None else env
        base_url = llm.base_url or env.get("ANTHROPIC_BASE_URL") or None
        return cls(
            api_key=env.get(llm.api_key_env),
            base_url=base_url,
            timeout_s=llm.timeout.total_seconds(),
            max_retries=max_retries,
        )

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    def client(self) -> AsyncAnthropic:
        """The SDK client, built on first use (imports the SDK: await `load_sdk()` first on a loop)."""
        if self._client is None:
            from anthropic import AsyncAnthropic

            self._client = AsyncAnthropic(
                api_key=self._api_key,
                base_url=self.base_url,
                timeout=self.timeout_s,
                max_retries=self.max_retries,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def count_tokens(self, request: ModelRequest) -> int | ProviderError:
        """`request`'s prompt size in input tokens from the token-counting endpoint (free; it checks the
        model id, the key, `thinking` and `output_config` as a call would). Never raises."""
        if self._api_key is None:
            return ProviderError("auth", "no Anthropic API key configured", False)
        await load_sdk()
        import anthropic

        params = to_api_params(request)
        params.pop("max_tokens", None)
        params.pop("temperature", None)
        try:
            counted = await self.client().messages.count_tokens(**params)
        except anthropic.AnthropicError as exc:
            return map_exception(exc)
        return int(counted.input_tokens)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        if self._api_key is None:
            yield ProviderError("auth", "no Anthropic API key configured", False)
            return
        await load_sdk()
        import anthropic

        params = to_api_params(request)
        temperature = params.pop("temperature", None)
        extra_body = None if temperature is None else {"temperature": temperature}
        usage = Usage(model=request.model)
        emitted = False
        started = False
        tools: dict[int, _ToolBuffer] = {}
        thinking: dict[int, list[str]] = {}  # index -> [text, signature]
        stop_reason: str | None = None
        create: Any = self.client().messages.create
        try:
            async with await create(**params, stream=True, extra_body=extra_body) as events:
                async for event in events:
                    etype = event.type
                    if etype == "message_start":
                        started = True
                        u = event.message.usage
                        usage = Usage(
                            u.input_tokens,
                            u.output_tokens,
                            u.cache_creation_input_tokens or 0,
                            u.cache_read_input_tokens or 0,
                            event.message.model or request.model,
                        )
                    elif etype == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tools[event.index] = _ToolBuffer(block.id, block.name)
                        elif block.type == "thinking":
                            thinking[event.index] = [block.thinking, block.signature]
                        elif block.type == "redacted_thinking":
                            yield Thinking(RedactedThinkingBlock(block.data))
                        elif block.type == "text" and block.text:
                            emitted = True
                            yield TextDelta(block.text)
                    elif etype == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta":
                            if delta.text:
                                emitted = True
                                yield TextDelta(delta.text)
                        elif delta.type == "input_json_delta" and event.index in tools:
                            tools[event.index].chunks.append(delta.partial_json)
                        elif delta.type == "thinking_delta" and event.index in thinking:
                            thinking[event.index][0] += delta.thinking
                        elif delta.type == "signature_delta" and event.index in thinking:
                            thinking[event.index][1] = delta.signature
                    elif etype == "content_block_stop":
                        if event.index in thinking:
                            body, signature = thinking.pop(event.index)
                            yield Thinking(ThinkingBlock(body, signature))
                        buf = tools.pop(event.index, None)
                        if buf is not None:
                            raw = "".join(buf.chunks)
                            try:
                                parsed = json.loads(raw) if raw.strip() else {}
                            except json.JSONDecodeError as exc:
                                yield usage
                                yield ProviderError(
                                    "other",
                                    f"tool {buf.name}: invalid input JSON ({exc})",
                                    False,
                                    streamed=emitted,
                                )
                                return
                            if not isinstance(parsed, dict):
                                parsed = {"value": parsed}
                            emitted = True
                            yield ToolCall(buf.id, buf.name, parsed)
                    elif etype == "message_delta":
                        d = event.usage
                        usage = Usage(
                            usage.input_tokens if d.input_tokens is None else d.input_tokens,
                            d.output_tokens,
                            usage.cache_creation_input_tokens
                            if d.cache_creation_input_tokens is None
                            else d.cache_creation_input_tokens,
                            usage.cache_read_input_tokens
                            if d.cache_read_input_tokens is None
                            else d.cache_read_input_tokens,
                            usage.model,
                        )
                        stop_reason = event.delta.stop_reason or "end_turn"
                    elif etype == "message_stop":
                        break
                    # ping is skipped by the SDK; unknown block and delta types are ignored
            if stop_reason is None:
                yield ProviderError(
                    "connection", "the stream ended before message_delta", True, streamed=emitted
                )
                return
            yield usage
            yield Finished(stop_reason)
        except anthropic.AnthropicError as exc:
            if started:
                yield usage
            err = map_exception(exc)
            yield ProviderError(err.kind, err.message, err.retryable, err.retry_after_s, err.status, emitted)
