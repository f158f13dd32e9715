"""A local, strict fake of the Anthropic Messages API (streaming only), for the real `anthropic` SDK.

    async with FakeAnthropic() as fake:          # aiohttp on 127.0.0.1, a free port
        fake.script(reply(text("Hello"), tool("get_snapshot", {"market": "BTC"})))
        fake.script(http_error(429, retry_after=0), reply(text("ok")))
        client = AsyncAnthropic(api_key="k", base_url=fake.base_url)
        ...
        fake.requests[-1].body                   # every request received, valid or not

Each valid `POST /v1/messages` consumes the next scripted item: a `Reply` (streamed as server-sent
events in the real order: message_start, ping, per block content_block_start / deltas /
content_block_stop, message_delta with stop_reason and usage, message_stop), an `HttpError`
(an error status before the stream, with `retry-after` if asked), or a callable that builds one from
the request body. Replies can stream slowly (`delay_s` between events, for cancellation tests) and
can break with an `event: error` after `error_after` events (the mid-stream overload).

Strict like the real API (checked before a script item is consumed; a rejected request consumes
nothing): 401 `authentication_error` without a key (`x-api-key`, or `Authorization: Bearer`, which
is how anthropic 2.x sends an API key), or with the wrong one when `api_key` is set; 400
`invalid_request_error` without `anthropic-version`, without `model` / `max_tokens`,
with empty or malformed messages, a first message that is not the user's, an empty text block, a
`tool_use` not answered by `tool_result` blocks at the start of the next user message (or a
`tool_result` answering nothing), tool blocks without `tools`, more than 4 `cache_control`
breakpoints, a tool name outside `^[a-zA-Z0-9_-]{1,64}$`, duplicate tool names, an input schema that
is not an object schema, temperature outside [0, 1] or sent to a model that no longer takes it
(`NO_SAMPLING_MODELS`), a malformed image (a source that is not base64 of
the declared media type's bytes, or over 5 MB; an image is counted as the API bills it, width * height
/ 750 tokens after its downscale: `image_tokens`). Consecutive messages with the
same role are accepted and merged into one turn, as the real API documents ("Consecutive user or
assistant turns in your request will be combined into a single turn").

Thinking, as strictly as the real API. `ThinkingOut` streams a thinking block (`thinking_delta`
chunks, then one `signature_delta`); `RedactedThinkingOut` a `redacted_thinking` block. A block's
signature binds its text, the model family that wrote it and its prefix (system, tools, and every
message block before it, cache markers aside): the newer models' "preserved thinking" rule, under
which a block whose prefix changed is refused. On a follow-up request:
- every thinking / redacted_thinking block sent back must carry a signature this fake issued, for
  that exact text and prefix ("Invalid `signature` in `thinking` block" otherwise);
- the assistant messages of the current tool loop (those after the last user message that is not
  only tool results) must carry the thinking blocks the fake emitted with their tool calls, all of
  them, unmodified, in order; dropping them answers the real message: "Expected `thinking` or
  `redacted_thinking`, but found `text`. When `thinking` is enabled, a final `assistant` message
  must start with a thinking block." Earlier turns may drop their thinking blocks (the API strips
  them from the context anyway).
Parameters checked per model family (`THINKING_RULES`): `thinking.type` (`adaptive`, `enabled` with
`budget_tokens`, `disabled`, `between_tools`), `output_config.effort`, forced `tool_choice`.
`POST /v1/messages/count_tokens` answers `{"input_tokens": N}` with the same estimate as usage.

Usage: tokens are ceil(chars / CHARS_PER_TOKEN) (3) of each block's JSON. The prompt is ordered tools,
system, messages (the API's cache prefix order); every breakpoint whose prefix is at least
`min_cache_tokens` long (1024, Sonnet's minimum) is written to the fake's cache. A breakpoint hits an
entry written at its own position or at one of the 20 blocks before it (the API's lookback, which is
what lets a moving breakpoint on the newest message reuse the previous turn's). A request reports
`cache_read_input_tokens` for the longest prefix found, `cache_creation_input_tokens` for the rest
up to its last cacheable breakpoint, and `input_tokens` for what follows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import re
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20  # the API checks this many blocks before a breakpoint for an earlier cache entry
# Models that answer 400 to any sampling parameter (Opus 4.7 onwards, the 5.x family).
NO_SAMPLING_MODELS = (
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-haiku-5",
    "claude-fable",
    "claude-mythos",
)

ALL_EFFORTS = ("low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class ModelRules:
    """What one model family accepts (Anthropic's model pages and migration guides, read 2026-12)."""

    thinks_by_default: bool
    thinking_types: tuple[str, ...]
    efforts: tuple[str, ...]
    forced_tool_choice: bool = True


# longest prefix first wins
THINKING_RULES: tuple[tuple[str, ModelRules], ...] = (
    ("claude-sonnet-5-5", ModelRules(True, ("adaptive", "between_tools"), ALL_EFFORTS, False)),
    ("claude-opus-5-5", ModelRules(True, ("adaptive",), ALL_EFFORTS, False)),
    ("claude-haiku-5-5", ModelRules(True, ("adaptive", "disabled"), ("low", "medium", "high"))),
    ("claude-fable-5-", ModelRules(True, ("adaptive",), ALL_EFFORTS, False)),
    ("claude-mythos-5-", ModelRules(True, ("adaptive",), ALL_EFFORTS, False)),
    ("claude-fable-5", ModelRules(True, ("adaptive",), ALL_EFFORTS)),
    ("claude-mythos-5", ModelRules(True, ("adaptive",), ALL_EFFORTS)),
    ("claude-mythos-preview", ModelRules(False, ("adaptive",), ("low", "medium", "high", "max"))),
    ("claude-opus-5", ModelRules(True, ("adaptive", "disabled"), ALL_EFFORTS)),
    ("claude-sonnet-5", ModelRules(True, ("adaptive", "disabled"), ALL_EFFORTS)),
    ("claude-opus-4-8", ModelRules(False, ("adaptive", "disabled"), ALL_EFFORTS)),
    ("claude-opus-4-7", ModelRules(False, ("adaptive", "disabled"), ALL_EFFORTS)),
    ("claude-opus-4-6", ModelRules(False, ("adaptive", "enabled", "disabled"), ("low", "medium", "high", "max"))),
    ("claude-sonnet-4-6", ModelRules(False, ("adaptive", "enabled", "disabled"), ("low", "medium", "high", "max"))),
    ("claude-opus-4-5", ModelRules(False, ("enabled", "disabled"), ("low", "medium", "high"))),
    ("claude-", ModelRules(False, ("enabled", "disabled"), ())),
)


def rules_for(model: str) -> ModelRules:
    for prefix, rules in THINKING_RULES:
        if model.startswith(prefix):
            return rules
    return THINKING_RULES[-1][1]


def model_family(model: str) -> str:
    """The family a thinking signature is bound to (`claude-sonnet-5-5-20261001` -> `claude-sonnet-5-5`)."""
    for prefix, _ in THINKING_RULES:
        if model.startswith(prefix):
            return prefix.rstrip("-")
    return model


# --- script items --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextOut:
    text: str
    chunks: int = 3


@dataclass(frozen=True)
class ThinkingOut:
    """A thinking block, streamed as thinking_delta chunks then a signature_delta. The signature binds
    the text, the model family and the prefix, so a replayed block that was modified, or whose prefix
    changed, is rejected (as the API does)."""

    thinking: str
    chunks: int = 2


@dataclass(frozen=True)
class RedactedThinkingOut:
    """A redacted_thinking block (encrypted thinking: `data` only, sent whole in content_block_start)."""

    label: str = "redacted"


def thinking_signature(thinking: str, family: str = "", prefix: str = "") -> str:
    """The fake's signature of a thinking block (`prefix`: the digest of what came before it)."""
    return "sig_" + hashlib.sha256(f"{family}\x00{prefix}\x00{thinking}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class ToolOut:
    name: str
    input: dict[str, Any]
    id: str = ""
    chunks: int = 3


@dataclass(frozen=True)
class Reply:
    """A streamed answer. `stop_reason` None: `tool_use` if a tool is called, else `end_turn`.
    `error_after`: send `event: error` of `error_type` after this many SSE events (0 = right after
    the headers) instead of finishing. `delay_s`: pause before each event."""

    blocks: tuple[TextOut | ThinkingOut | RedactedThinkingOut | ToolOut, ...]
    stop_reason: str | None = None
    delay_s: float = 0.0
    error_after: int | None = None
    error_type: str = "overloaded_error"
    error_message: str = "Overloaded"
    output_tokens: int | None = None


@dataclass(frozen=True)
class HttpError:
    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


ScriptItem = Reply | HttpError | Callable[[dict[str, Any]], "Reply | HttpError"]


def text(value: str, chunks: int = 3) -> TextOut:
    return TextOut(value, chunks)


def thinking(value: str, chunks: int = 2) -> ThinkingOut:
    return ThinkingOut(value, chunks)


def redacted(label: str = "redacted") -> RedactedThinkingOut:
    return RedactedThinkingOut(label)


def tool(name: str, input: dict[str, Any], id: str = "", chunks: int = 3) -> ToolOut:
    return ToolOut(name, input, id, chunks)


def reply(*blocks: TextOut | ThinkingOut | RedactedThinkingOut | ToolOut | str, **kwargs: Any) -> Reply:
    """A reply of `blocks` (a bare string is a text block); kwargs as `Reply`'s fields."""
    return Reply(tuple(TextOut(b) if isinstance(b, str) else b for b in blocks), **kwargs)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def http_error(
    status: int, message: str = "", *, retry_after: float | None = None, error_type: str | None = None
) -> HttpError:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    etype = error_type or _ERROR_TYPES.get(status, "api_error")
    return HttpError(status, etype, message or etype.replace("_", " "), headers)


def overloaded(retry_after: float | None = 0.01) -> HttpError:
    """529 before the stream (the SDK retries it; a short `retry-after` keeps tests fast)."""
    return http_error(529, "Overloaded", retry_after=retry_after)


# --- recording -----------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    headers: dict[str, str]
    body: Any
    status: int = 0
    error: str = ""

    def cache_breakpoints(self) -> list[str]:
        """Where `cache_control` sits: `tools[i]`, `system[i]`, `messages[i].content[j]`."""
        return [where for where, _ in _cache_marks(self.body)] if isinstance(self.body, dict) else []


# --- validation ----------------------------------------------------------------------------------


class Invalid(Exception):
    def __init__(self, message: str, status: int = 400, error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def _cache_marks(body: dict[str, Any]) -> list[tuple[str, Any]]:
    marks: list[tuple[str, Any]] = []
    for i, t in enumerate(body.get("tools") or []):
        if isinstance(t, dict) and "cache_control" in t:
            marks.append((f"tools[{i}]", t["cache_control"]))
    system = body.get("system")
    if isinstance(system, list):
        for i, b in enumerate(system):
            if isinstance(b, dict) and "cache_control" in b:
                marks.append((f"system[{i}]", b["cache_control"]))
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for j, b in enumerate(content):
                if isinstance(b, dict) and "cache_control" in b:
                    marks.append((f"messages[{i}].content[{j}]", b["cache_control"]))
                if (
                    isinstance(b, dict)
                    and b.get("type") == "tool_result"
                    and isinstance(b.get("content"), list)
                ):
                    for k, inner in enumerate(b["content"]):
                        if isinstance(inner, dict) and "cache_control" in inner:
                            marks.append((f"messages[{i}].content[{j}].content[{k}]", inner["cache_control"]))
    return marks


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if not content:
            raise Invalid(f"{where}: text content blocks must be non-empty")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise Invalid(f"{where}: Input should be a valid list")
    for j, b in enumerate(content):
        if not isinstance(b, dict) or "type" not in b:
            raise Invalid(f"{where}.{j}: Input should be an object with a type")
    return content


IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
               "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",)}
IMAGE_MAX_EDGE = 1568
IMAGE_MAX_TOKENS = 1600  # about 1.15 megapixels: a larger image is scaled down to this first


def _image_bytes(src: dict[str, Any]) -> bytes:
    return base64.b64decode(src["data"], validate=True)


def _check_image_bytes(src: dict[str, Any], where: str) -> None:
    """The real API's checks of a base64 image: valid base64, at most 5 MB, bytes of the declared type."""
    try:
        raw = _image_bytes(src)
    except (binascii.Error, ValueError):
        raise Invalid(f"{where}.source.base64: invalid base64 data") from None
    if len(raw) > IMAGE_MAX_BYTES:
        raise Invalid(f"{where}.source.base64: image exceeds 5 MB maximum: {len(raw)} bytes > "
                      f"{IMAGE_MAX_BYTES} bytes")
    media_type = src["media_type"]
    if not raw.startswith(IMAGE_MAGIC[media_type]) or (media_type == "image/webp" and raw[8:12] != b"WEBP"):
        raise Invalid(f"{where}.source.base64.data: Image does not match the provided media type {media_type}")


def image_tokens(width: int, height: int) -> int:
    """An image's input tokens as the API bills them: width * height / 750, after scaling an image
    whose long edge exceeds 1568 px or whose cost exceeds about 1,600 tokens down (aspect kept)."""
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height, 1),
                math.sqrt(IMAGE_MAX_TOKENS * 750 / max(width * height, 1)))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    return max(1, math.ceil(w * h / 750))


def _image_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or GIF (None for the other types: their cost is taken at the cap)."""
    if raw.startswith(b"\x89PNG") and len(raw) >= 24:
        return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if raw.startswith(b"GIF") and len(raw) >= 10:
        return int.from_bytes(raw[6:8], "little"), int.from_bytes(raw[8:10], "little")
    return None


def _block_tokens(b: dict[str, Any]) -> int:
    if b.get("type") == "image" and isinstance(b.get("source"), dict):
        size = _image_size(_image_bytes(b["source"]))
        return image_tokens(*size) if size is not None else IMAGE_MAX_TOKENS
    if b.get("type") == "tool_result" and isinstance(b.get("content"), list):
        inner = [_block_tokens(ib) for ib in b["content"] if ib.get("type") == "image"]
        rest = {**b, "content": [ib for ib in b["content"] if ib.get("type") != "image"]}
        return _tokens(rest) + sum(inner)
    return _tokens(b)


def _check_block(b: dict[str, Any], where: str) -> None:
    kind = b["type"]
    if kind == "text":
        if not isinstance(b.get("text"), str) or not b["text"]:
            raise Invalid(f"{where}: text content blocks must be non-empty")
    elif kind == "image":
        src = b.get("source")
        if (
            not isinstance(src, dict)
            or src.get("type") != "base64"
            or src.get("media_type") not in IMAGE_TYPES
            or not isinstance(src.get("data"), str)
            or not src.get("data")
        ):
            raise Invalid(
                f"{where}.source: invalid image source (base64 with media_type in {sorted(IMAGE_TYPES)})"
            )
        _check_image_bytes(src, where)
    elif kind == "thinking":
        if not isinstance(b.get("thinking"), str) or not isinstance(b.get("signature"), str):
            raise Invalid(f"{where}: thinking blocks need `thinking` and `signature`")
    elif kind == "redacted_thinking":
        if not isinstance(b.get("data"), str) or not b["data"]:
            raise Invalid(f"{where}.data: Field required")
    elif kind == "tool_use":
        if not isinstance(b.get("id"), str) or not re.fullmatch(r"[a-zA-Z0-9_-]+", b["id"]):
            raise Invalid(f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        if not isinstance(b.get("input"), dict):
            raise Invalid(f"{where}.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(b.get("tool_use_id"), str):
            raise Invalid(f"{where}.tool_use_id: Field required")
        inner = b.get("content")
        if isinstance(inner, list):
            for k, ib in enumerate(inner):
                if not isinstance(ib, dict) or ib.get("type") not in ("text", "image"):
                    raise Invalid(f"{where}.content.{k}: tool_result content must be text or image blocks")
                _check_block(ib, f"{where}.content.{k}")
    else:
        raise Invalid(
            f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        )
    cc = b.get("cache_control")
    if cc is not None and (not isinstance(cc, dict) or cc.get("type") != "ephemeral"):
        raise Invalid(f"{where}.cache_control: Input tag does not match 'ephemeral'")


def validate(headers: dict[str, str], body: Any, api_key: str | None) -> None:
    """Raise `Invalid` with the real API's status, type and (close to real) message."""
    key = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()  # anthropic 2.x sends the API key as `Authorization: Bearer <key>`
    if not key:
        raise Invalid("x-api-key header is required", 401, "authentication_error")
    if api_key is not None and key != api_key:
        raise Invalid("invalid x-api-key", 401, "authentication_error")
    if not headers.get("anthropic-version"):
        raise Invalid("anthropic-version: header is required")
    if not isinstance(body, dict):
        raise Invalid("Input should be a valid dictionary")
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            raise Invalid(f"{required}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise Invalid("model: Input should be a valid string")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 0:
        raise Invalid("max_tokens: Input should be a valid integer greater than or equal to 0")
    temp = body.get("temperature")
    if temp is not None and (not isinstance(temp, int | float) or not 0 <= temp <= 1):
        raise Invalid("temperature: Input should be less than or equal to 1")
    if temp is not None and body["model"].startswith(NO_SAMPLING_MODELS):
        raise Invalid("`temperature` is deprecated for this model.")
    _check_thinking_params(body)

    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise Invalid("tools: Input should be a valid list")
        for i, t in enumerate(tools):
            if not isinstance(t, dict):
                raise Invalid(f"tools.{i}: Input should be a valid dictionary")
            name = t.get("name")
            if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
                raise Invalid(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if name in names:
                raise Invalid("tools: Tool names must be unique.")
            names.add(name)
            schema = t.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise Invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
            props = schema.get("properties")
            if props is not None and not isinstance(props, dict):
                raise Invalid(
                    f"tools.{i}.custom.input_schema: JSON schema is invalid - properties must be an object"
                )
            cc = t.get("cache_control")
            if cc is not None and (not isinstance(cc, dict) or cc.get("type") != "ephemeral"):
                raise Invalid(f"tools.{i}.custom.cache_control: Input tag does not match 'ephemeral'")

    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list):
            raise Invalid("system: Input should be a valid list")
        for i, b in enumerate(system):
            if not isinstance(b, dict) or b.get("type") != "text":
                raise Invalid(f"system.{i}: Input should be a text block")
            _check_block(b, f"system.{i}")

    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    turns: list[tuple[str, list[tuple[int, int, dict[str, Any]]]]] = []  # role, [(msg idx, block idx, block)]
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        blocks = _blocks(m.get("content"), f"messages.{i}.content")
        if not blocks and not (i == len(messages) - 1 and m["role"] == "assistant"):
            raise Invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        for j, b in enumerate(blocks):
            _check_block(b, f"messages.{i}.content.{j}")
            if b["type"] == "tool_use" and m["role"] != "assistant":
                raise Invalid(
                    f"messages.{i}.content.{j}: tool_use blocks are only allowed in assistant messages"
                )
            if b["type"] in ("thinking", "redacted_thinking") and m["role"] != "assistant":
                raise Invalid(
                    f"messages.{i}.content.{j}: thinking blocks are only allowed in assistant messages"
                )
            if b["type"] == "tool_result" and m["role"] != "user":
                raise Invalid(
                    f"messages.{i}.content.{j}: tool_result blocks are only allowed in user messages"
                )
        entry = [(i, j, b) for j, b in enumerate(blocks)]
        if turns and turns[-1][0] == m["role"]:
            turns[-1][1].extend(entry)  # consecutive same-role messages form one turn
        else:
            turns.append((m["role"], entry))
    if messages[0]["role"] != "user":
        raise Invalid('messages: first message must use the "user" role')

    uses_tools = any(b["type"] in ("tool_use", "tool_result") for _, tb in turns for _, _, b in tb)
    if uses_tools and not tools:
        raise Invalid("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    seen_ids: set[str] = set()
    for t_idx, (role, turn) in enumerate(turns):
        if role == "assistant":
            ids = [b["id"] for _, _, b in turn if b["type"] == "tool_use"]
            for tid in ids:
                if tid in seen_ids:
                    raise Invalid(f"messages: `tool_use` ids must be unique; found {tid} twice")
                seen_ids.add(tid)
            if not ids:
                continue
            nxt = turns[t_idx + 1][1] if t_idx + 1 < len(turns) else []
            leading: list[str] = []
            for _, _, b in nxt:
                if b["type"] != "tool_result":
                    break
                leading.append(b["tool_use_id"])
            missing = [tid for tid in ids if tid not in leading]
            if missing:
                first = turn[0][0]
                raise Invalid(
                    f"messages.{first}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
        else:
            prev_ids = (
                {b["id"] for _, _, b in turns[t_idx - 1][1] if b["type"] == "tool_use"} if t_idx else set()
            )
            in_lead = True
            for mi, bj, b in turn:
                if b["type"] != "tool_result":
                    in_lead = False
                    continue
                if not in_lead:
                    raise Invalid(
                        f"messages.{mi}.content.{bj}: `tool_result` blocks must come first in the user "
                        "message, before any other content"
                    )
                if b["tool_use_id"] not in prev_ids:
                    raise Invalid(
                        f"messages.{mi}.content.{bj}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {b['tool_use_id']}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )

    marks = _cache_marks(body)
    if len(marks) > MAX_BREAKPOINTS:
        raise Invalid(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}."
        )
    if body.get("stream") is not True:
        raise Invalid("fake: only streaming requests (stream: true) are supported")


def thinking_enabled(body: dict[str, Any]) -> bool:
    """Whether the request runs with thinking (the model's default when `thinking` is absent)."""
    cfg = body.get("thinking")
    if isinstance(cfg, dict) and cfg.get("type") in ("adaptive", "enabled", "between_tools", "disabled"):
        return bool(cfg["type"] != "disabled")
    return rules_for(str(body.get("model", ""))).thinks_by_default


def _check_thinking_params(body: dict[str, Any]) -> None:
    rules = rules_for(body["model"])
    cfg = body.get("thinking")
    kind: str | None = None
    if cfg is not None:
        if not isinstance(cfg, dict) or cfg.get("type") not in ("adaptive", "enabled", "disabled", "between_tools"):
            raise Invalid(
                "thinking: Input tag found using 'type' does not match any of the expected tags: "
                "'adaptive', 'between_tools', 'disabled', 'enabled'"
            )
        kind = str(cfg["type"])
        if kind not in rules.thinking_types:
            if kind == "disabled" and "between_tools" in rules.thinking_types:
                raise Invalid(
                    "thinking.type: 'disabled' is not supported for this model. Use 'between_tools' to turn "
                    "off up-front thinking."
                )
            if kind == "enabled":
                raise Invalid(
                    "thinking.type.enabled is not supported for this model. Use thinking.type.adaptive and "
                    "output_config.effort to control thinking behavior."
                )
            raise Invalid(f"thinking.type: '{kind}' is not supported for this model.")
        if kind == "enabled":
            budget = cfg.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise Invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= body["max_tokens"]:
                raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
        if cfg.get("display") not in (None, "summarized", "omitted"):
            raise Invalid("thinking.display: Input should be 'summarized' or 'omitted'")
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise Invalid("output_config: Input should be a valid dictionary")
    effort = (config or {}).get("effort")
    if effort is not None:
        if effort not in ALL_EFFORTS:
            raise Invalid("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
        if effort not in rules.efforts:
            raise Invalid(f"output_config.effort: effort '{effort}' is not supported for this model.")
        if kind == "between_tools" and effort in ("xhigh", "max"):
            raise Invalid(
                f"thinking.type 'between_tools' is not supported at effort '{effort}'; use adaptive thinking."
            )
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        if not rules.forced_tool_choice:
            raise Invalid("tool_choice: forced tool use is not supported for this model; use `auto` or `none`.")
        if thinking_enabled(body):
            raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _canon(obj: Any) -> Any:
    """A block with every `cache_control` removed (cache markers are not part of a thinking prefix)."""
    if isinstance(obj, dict):
        return {k: _canon(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_canon(v) for v in obj]
    return obj


FlatBlock = tuple[int, int, str, dict[str, Any]]  # message index, block index, role, canonical block


def flatten(body: dict[str, Any]) -> list[FlatBlock]:
    out: list[FlatBlock] = []
    for i, m in enumerate(body["messages"]):
        for j, b in enumerate(_blocks(m["content"], f"messages.{i}.content")):
            out.append((i, j, m["role"], _canon(b)))
    return out


def prefix_digest(body: dict[str, Any], blocks: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """The digest of a thinking block's prefix: system, tools, and the (role, block)s before it."""
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    payload = {
        "system": _canon(system or []),
        "tools": _canon(body.get("tools") or []),
        "blocks": [[role, b] for role, b in blocks],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


THINKING_TYPES = ("thinking", "redacted_thinking")


# --- token accounting ----------------------------------------------------------------------------


CHARS_PER_TOKEN = 3
"""The fake's tokenizer: a fixed 3 characters of compact JSON per token, deterministic and unlike the
engine's chars/4 estimate, so a test can tell a figure the API gave (usage, count_tokens) from one the
engine guessed."""


def _tokens(obj: Any) -> int:
    return max(1, math.ceil(len(json.dumps(obj, sort_keys=True, separators=(",", ":"))) / CHARS_PER_TOKEN))


def _strip_cc(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "cache_control"}


def prompt_units(body: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """The prompt in cache-prefix order as (content hash, tokens, ends a breakpoint) per block."""
    units: list[tuple[str, int, bool]] = []
    for t in body.get("tools") or []:
        units.append((json.dumps(_strip_cc(t), sort_keys=True), _tokens(_strip_cc(t)), "cache_control" in t))
    system = body.get("system")
    if isinstance(system, str):
        units.append((system, _tokens(system), False))
    elif isinstance(system, list):
        for b in system:
            units.append(
                (json.dumps(_strip_cc(b), sort_keys=True), _tokens(_strip_cc(b)), "cache_control" in b)
            )
    for m in body["messages"]:
        blocks = _blocks(m["content"], "")
        for b in blocks:
            units.append(
                (
                    m["role"] + json.dumps(_strip_cc(b), sort_keys=True),
                    _block_tokens(_strip_cc(b)),
                    "cache_control" in b,
                )
            )
    return units


# --- the server ----------------------------------------------------------------------------------


class FakeAnthropic:
    """See the module docstring. `api_key` None accepts any non-empty key."""

    def __init__(self, api_key: str | None = None, min_cache_tokens: int = 1024,
                 known_models: frozenset[str] | None = None) -> None:
        self.api_key = api_key
        self.known_models = known_models  # set: any other model id answers 404 not_found_error
        self.min_cache_tokens = min_cache_tokens
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.disconnected = asyncio.Event()
        self.stream_started = asyncio.Event()
        self._script: deque[ScriptItem] = deque()
        self._cache: set[str] = set()
        self._signatures: dict[str, tuple[str, str, str]] = {}  # signature/data -> (family, prefix, text)
        self._emitted: dict[str, list[dict[str, Any]]] = {}  # tool_use id -> thinking blocks emitted with it
        self.count_requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._ids = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def script(self, *items: ScriptItem) -> None:
        """Queue replies for the next valid requests, in order."""
        self._script.extend(items)

    @property
    def pending(self) -> int:
        return len(self._script)

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)  # the API takes requests up to 32 MB
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAnthropic:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handler --

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_fake{self._ids:04d}{secrets.token_hex(4)}"

    def _error(
        self,
        rec: RecordedRequest,
        status: int,
        etype: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        rec.status, rec.error = status, f"{etype}: {message}"
        request_id = self._next_id("req")
        body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id}
        return web.json_response(body, status=status, headers={"request-id": request_id, **(headers or {})})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        rec = RecordedRequest(headers, body)
        self.requests.append(rec)
        try:
            validate(headers, body, self.api_key)
            self._check_model(body)
            self._check_thinking(body)
        except Invalid as exc:
            return self._error(rec, exc.status, exc.error_type, str(exc))
        if not self._script:
            return self._error(
                rec, 500, "api_error", "fake: no scripted reply left", {"x-should-retry": "false"}
            )
        item = self._script.popleft()
        if callable(item):
            item = item(body)
        if isinstance(item, HttpError):
            return self._error(rec, item.status, item.error_type, item.message, item.headers)
        return await self._stream(request, rec, body, item)

    def _check_model(self, body: dict[str, Any]) -> None:
        if self.known_models is not None and body["model"] not in self.known_models:
            raise Invalid(f"model: {body['model']}", 404, "not_found_error")

    def _check_thinking(self, body: dict[str, Any]) -> None:
        """Thinking blocks sent back: signed by this fake for their exact text and prefix; the current
        tool loop's assistant messages carry every thinking block emitted with their tool calls."""
        family = model_family(body["model"])
        flat = flatten(body)
        for p, (i, j, _, b) in enumerate(flat):
            if b["type"] not in THINKING_TYPES:
                continue
            key = b.get("signature") if b["type"] == "thinking" else b.get("data")
            rec = self._signatures.get(str(key))
            label = "thinking" if b["type"] == "thinking" else "redacted_thinking"
            if rec is None or (b["type"] == "thinking" and rec[2] != b.get("thinking")):
                raise Invalid(f"messages.{i}.content.{j}: Invalid `signature` in `{label}` block")
            if rec[0] != family:
                continue  # a block another model wrote: the API drops it from the request, no error
            if rec[1] != prefix_digest(body, [(role, fb) for _, _, role, fb in flat[:p]]):
                raise Invalid(
                    f"messages.{i}.content.{j}: the `{label}` block's prefix (system, tools and the messages "
                    "before it) differs from the one it was produced after; a thinking block is valid only "
                    "after its original prefix"
                )
        if not thinking_enabled(body):
            return
        turns: list[tuple[str, list[FlatBlock]]] = []
        for fb in flat:
            if turns and turns[-1][0] == fb[2]:
                turns[-1][1].append(fb)
            else:
                turns.append((fb[2], [fb]))
        last_real = max(
            (t for t, (role, blocks) in enumerate(turns)
             if role == "user" and any(b[3]["type"] != "tool_result" for b in blocks)),
            default=0,
        )
        for role, blocks in turns[last_real + 1 :]:
            if role != "assistant":
                continue
            ids = [b[3]["id"] for b in blocks if b[3]["type"] == "tool_use"]
            expected = next((self._emitted[t] for t in ids if self._emitted.get(t)), None)
            if not expected:
                continue
            actual = [b[3] for b in blocks if b[3]["type"] in THINKING_TYPES]
            first_i, first_j, _, first = blocks[0]
            if first["type"] not in THINKING_TYPES:
                raise Invalid(
                    f"messages.{first_i}.content.{first_j}: Expected `thinking` or `redacted_thinking`, but "
                    f"found `{first['type']}`. When `thinking` is enabled, a final `assistant` message must "
                    "start with a thinking block."
                )
            if actual != expected:
                raise Invalid(
                    f"messages.{first_i}: the thinking blocks of an assistant message that called tools must "
                    "be passed back complete and unmodified, in their original order"
                )

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        rec = RecordedRequest(headers, body)
        self.count_requests.append(rec)
        try:
            probe = dict(body) if isinstance(body, dict) else body
            if isinstance(probe, dict):  # the endpoint takes no max_tokens: any thinking budget fits
                probe.setdefault("max_tokens", 1_000_000)
                probe["stream"] = True
            validate(headers, probe, self.api_key)
            self._check_model(probe)
        except Invalid as exc:
            return self._error(rec, exc.status, exc.error_type, str(exc))
        rec.status = 200
        total = sum(t for _, t, _ in prompt_units(body))
        return web.json_response({"input_tokens": total})

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        units = prompt_units(body)
        total = sum(t for _, t, _ in units)
        digest = hashlib.sha256()
        hashes: list[str] = []
        cumulative: list[int] = []
        for key, tokens, _ in units:
            digest.update(key.encode())
            hashes.append(digest.hexdigest())
            cumulative.append((cumulative[-1] if cumulative else 0) + tokens)
        read = 0
        last_cacheable = 0
        for pos, (_, _, mark) in enumerate(units):
            if not mark or cumulative[pos] < self.min_cache_tokens:
                continue
            last_cacheable = cumulative[pos]
            # A breakpoint also finds an entry written at one of the LOOKBACK blocks before it.
            for q in range(pos, max(-1, pos - LOOKBACK_BLOCKS), -1):
                if hashes[q] in self._cache:
                    read = max(read, cumulative[q])
                    break
        for pos, (_, _, mark) in enumerate(units):
            if mark and cumulative[pos] >= self.min_cache_tokens:
                self._cache.add(hashes[pos])
        creation = max(0, last_cacheable - read)
        return {
            "input_tokens": total - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
        }

    async def _stream(
        self, request: web.Request, rec: RecordedRequest, body: dict[str, Any], item: Reply
    ) -> web.StreamResponse:
        usage = self._usage(body)
        events = self._events(body, item, usage)
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "request-id": self._next_id("req"),
            },
        )
        rec.status = 200
        try:
            await response.prepare(request)
            self.stream_started.set()
            for n, (name, data) in enumerate(events):
                if item.error_after is not None and n >= item.error_after:
                    err = {"type": "error", "error": {"type": item.error_type, "message": item.error_message}}
                    await response.write(_sse("error", err))
                    rec.error = f"{item.error_type} mid-stream after {n} events"
                    break
                if item.delay_s:
                    await asyncio.sleep(item.delay_s)
                await response.write(_sse(name, data))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            self.disconnected.set()
            raise
        return response

    def _events(
        self, body: dict[str, Any], item: Reply, usage: dict[str, int]
    ) -> list[tuple[str, dict[str, Any]]]:
        msg_id = self._next_id("msg")
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": body["model"],
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**usage, "output_tokens": 1},
                    },
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        out_chars = 0
        has_tool = False
        family = model_family(body["model"])
        before: list[tuple[str, dict[str, Any]]] = [(role, b) for _, _, role, b in flatten(body)]
        emitted_thinking: list[dict[str, Any]] = []
        tool_ids: list[str] = []

        def delta(index: int, d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})

        def start(index: int, b: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": b})

        for index, block in enumerate(item.blocks):
            canon: dict[str, Any]
            if isinstance(block, ThinkingOut):
                out_chars += len(block.thinking)
                sig = thinking_signature(block.thinking, family, prefix_digest(body, before))
                self._signatures[sig] = (family, prefix_digest(body, before), block.thinking)
                canon = {"type": "thinking", "thinking": block.thinking, "signature": sig}
                emitted_thinking.append(canon)
                events.append(start(index, {"type": "thinking", "thinking": "", "signature": ""}))
                for piece in _split(block.thinking, block.chunks):
                    events.append(delta(index, {"type": "thinking_delta", "thinking": piece}))
                events.append(delta(index, {"type": "signature_delta", "signature": sig}))
            elif isinstance(block, RedactedThinkingOut):
                out_chars += 64
                digest = prefix_digest(body, before)
                data = "rdt_" + hashlib.sha256(f"{family}\x00{digest}\x00{block.label}".encode()).hexdigest()
                self._signatures[data] = (family, digest, "")
                canon = {"type": "redacted_thinking", "data": data}
                emitted_thinking.append(canon)
                events.append(start(index, dict(canon)))
            elif isinstance(block, TextOut):
                out_chars += len(block.text)
                canon = {"type": "text", "text": block.text}
                events.append(start(index, {"type": "text", "text": ""}))
                for piece in _split(block.text, block.chunks):
                    events.append(delta(index, {"type": "text_delta", "text": piece}))
            else:
                has_tool = True
                raw = json.dumps(block.input)
                out_chars += len(raw) + len(block.name)
                tid = block.id or self._next_id("toolu")
                tool_ids.append(tid)
                canon = {"type": "tool_use", "id": tid, "name": block.name, "input": block.input}
                events.append(start(index, {"type": "tool_use", "id": tid, "name": block.name, "input": {}}))
                for piece in ["", *_split(raw, block.chunks)]:  # the real API opens with an empty partial_json
                    events.append(delta(index, {"type": "input_json_delta", "partial_json": piece}))
            before.append(("assistant", canon))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        for tid in tool_ids:
            self._emitted[tid] = list(emitted_thinking)
        stop_reason = item.stop_reason or ("tool_use" if has_tool else "end_turn")
        output_tokens = (
            item.output_tokens if item.output_tokens is not None else max(1, math.ceil(out_chars / 4))
        )
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {**usage, "output_tokens": output_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events


def _split(value: str, chunks: int) -> Sequence[str]:
    if not value:
        return []
    size = max(1, math.ceil(len(value) / max(1, chunks)))
    return [value[i : i + size] for i in range(0, len(value), size)]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
