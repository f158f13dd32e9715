"""The one streaming interface every model provider implements, and the types that cross it.

A turn asks a `Provider` for `stream(request)` and iterates the events it yields:

- `TextDelta`   a piece of the answer, in order;
- `ToolCall`    a complete tool call, emitted once its input JSON has finished (never partial);
- `Thinking`    a complete thinking block (models that think), to keep in the transcript;
- `Notice`      something the trader should be told that is not the model's answer (a retry, a
                switch to the fallback provider);
- `Usage`       token counts of one model call (emitted before `Finished`, and also before a
                `ProviderError` when the call was billed in part), tagged with the model that
                produced them so the cost can be priced;
- `Finished`    the model stopped (`stop_reason`: `end_turn`, `tool_use`, `max_tokens`, ...);
- `ProviderError` the call failed; it is always the last event.

A stream ends after `Finished` or `ProviderError`; a provider never raises for a model or transport
failure (programming errors still raise). Cancellation: the consumer stops iterating (closing the
async generator, preferably with `contextlib.aclosing`) or its task is cancelled; every provider
closes its HTTP stream when that happens.

These are plain frozen dataclasses (hot path); the runner converts them to its own transcript
records. Nothing here imports the anthropic SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from revagent.engine.providers.policy import AlertDescription

Role = Literal["user", "assistant"]
ThreadKind = Literal["chat", "alert"]
ErrorKind = Literal["overloaded", "rate_limited", "auth", "bad_request", "timeout", "connection", "other"]


# --- request -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str


@dataclass(frozen=True, slots=True)
class ImageBlock:
    """An image sent to the model; `data_b64` is the base64 of the file's bytes (no data: prefix)."""

    data_b64: str
    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"] = "image/png"


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    """A tool call the model made in an earlier assistant message (replayed from the transcript)."""

    id: str
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    """The answer to a `ToolUseBlock`; must open the next user message (the API's rule)."""

    tool_use_id: str
    content: str | tuple[TextBlock | ImageBlock, ...]
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """The model's thinking, with its signature. Must be replayed unmodified, in its original place,
    in the assistant message it came from (the API rejects a tool-use continuation without it)."""

    thinking: str
    signature: str


@dataclass(frozen=True, slots=True)
class RedactedThinkingBlock:
    """Encrypted thinking; replayed as is, like `ThinkingBlock`."""

    data: str


ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the conversation. `cache=True` puts a prompt-cache breakpoint on its last block
    (use it on the last message of the stable history so earlier turns stay cached)."""

    role: Role
    content: tuple[ContentBlock, ...]
    cache: bool = False

    @staticmethod
    def user(text: str) -> Message:
        return Message("user", (TextBlock(text),))

    @staticmethod
    def assistant(text: str) -> Message:
        return Message("assistant", (TextBlock(text),))


@dataclass(frozen=True, slots=True)
class SystemBlock:
    """A layer of the system prompt; `cache=True` ends a cached prefix after this block."""

    text: str
    cache: bool = False


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call; `input_schema` is a JSON schema of type object."""

    name: str
    description: str
    input_schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything one model call needs. `max_tokens` is the output cap (thinking included);
    `temperature` None means the provider's default (it is sent only to models that take it);
    `thinking` is the API's `thinking` object and `effort` its `output_config.effort` (None: the
    model's defaults; see `capabilities.plan_thinking`). `cache_tools` puts a breakpoint on the last
    tool (the tool list is stable).

    `thread_kind` and `alert` are for providers that do not call a model (the offline one runs a
    rule-based policy over `alert`); the Anthropic provider ignores them.
    """

    model: str
    max_tokens: int
    messages: tuple[Message, ...]
    system: tuple[SystemBlock, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    thinking: Mapping[str, Any] | None = None
    effort: str | None = None
    cache_tools: bool = True
    thread_kind: ThreadKind = "chat"
    alert: AlertDescription | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


# --- stream events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Thinking:
    """A complete thinking block of the reply (not shown as the answer). The runner stores it in the
    assistant message, before the tool calls that follow it, so the next call can replay it."""

    block: ThinkingBlock | RedactedThinkingBlock


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for the trader about the provider itself (retrying, falling back), not model text.
    `config_error`: the fallback ran because the model refused the request as misconfigured."""

    text: str
    config_error: ProviderError | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one model call. `input_tokens` excludes the cached ones; the prompt was
    `input_tokens + cache_creation_input_tokens + cache_read_input_tokens` long."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    model: str = ""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.model if self.model == other.model else (self.model or other.model),
        )

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True, slots=True)
class Finished:
    stop_reason: str


@dataclass(frozen=True, slots=True)
class ProviderError:
    """The call failed. `retryable`: the same request may succeed later (overload, rate limit,
    timeout, connection); `retry_after_s` is the server's hint when it gave one. `streamed` tells
    whether text or tool calls of this call had already been emitted."""

    kind: ErrorKind
    message: str
    retryable: bool
    retry_after_s: float | None = None
    status: int | None = None
    streamed: bool = False


StreamEvent = TextDelta | ToolCall | Thinking | Notice | Usage | Finished | ProviderError


@runtime_checkable
class Provider(Protocol):
    """A source of model turns. `name` is for logs and notices (`anthropic`, `offline`, ...)."""

    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one model call. Implemented as an async generator: call it, then `async for`."""
        ...


async def count_prompt_tokens(provider: Provider, request: ModelRequest) -> int | ProviderError | None:
    """`request`'s prompt size in input tokens (tools, system and messages) from the provider's
    token-counting endpoint, when it has one (`count_tokens`; the wrappers ask the provider they wrap).
    None: it has none (the offline provider, a test's scripted one); a `ProviderError`: the endpoint
    refused or failed (never raised)."""
    count = getattr(provider, "count_tokens", None)
    if count is None:
        return None
    result: int | ProviderError | None = await count(request)
    return result


def is_output(event: StreamEvent) -> bool:
    """True for events that the trader saw as the model's answer (text or a tool call)."""
    return isinstance(event, TextDelta | ToolCall)


async def aclose_stream(stream: AsyncIterator[StreamEvent]) -> None:
    """Close a provider's stream early (closes its HTTP response); a no-op for plain iterators."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
