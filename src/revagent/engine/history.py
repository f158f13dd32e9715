"""A thread's transcript as API messages, and compaction (older turns summarised).

`build_messages` replays the log from the latest `summary` entry on:

- the summary (if any) opens the conversation as a user message;
- `user` entries become user messages; the current turn's one starts with the turn context
  (snapshot and alert suffix), earlier ones are replayed without it, so the prefix of earlier
  messages is byte-identical from turn to turn (prompt cache). An alert brief's chart
  (`data.image == "chart"`) is put back from memory (`images[brief_image_key(turn)]`) before the
  brief's text in the current turn (a resumed one loads it from its Redis key first); elsewhere
  (an earlier turn, or a kept chart gone) a text says it is not kept;
- `assistant` entries become assistant messages (empty text blocks dropped), except the offline
  provider's text replies (`data.offline`: "no model is configured" and its command list), which
  are the trader's to read and never a model's words. Their `thinking` and
  `redacted_thinking` blocks are replayed, with their signatures and in their place, only in the
  current turn (the tool loop the API requires them in); earlier turns' thinking is dropped: the API
  strips it from the context anyway, and a replayed block whose prefix changed (an earlier turn's
  user message loses its snapshot) is refused by the models that bind thinking to its prefix;
- `tool_results` entries become user messages made of `tool_result` blocks; images of the current
  turn are re-attached from memory (`images`), older ones are replaced by a text;
- a `tool_use` never answered (a crash between the model and the tools) gets a synthetic error
  result, so the request is always valid;
- `notice` entries with `data.replay` are told to the model in the next user message;
- consecutive messages of one role are merged (tool results stay first).

Cache breakpoints: the last message before the current turn (the stable history) and the last
message of the request (so a tool loop re-reads its own prefix).

Compaction (`compact`): when the prompt exceeds the budget, every turn but the last `keep_turns` is
summarised extractively (trader, agent, tool calls and results, one line each,
deterministic, no model call) into a new `summary` entry that the trader can read in the thread.
The prompt's size is the runner's to measure (in tokens, from the API: the last call's usage, the
token-counting endpoint near the limit); `estimate_tokens` and `request_chars` / `CHARS_PER_TOKEN`
are the last resort when the API gave no figure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass

from revagent.engine.providers.base import (
    ContentBlock,
    ImageBlock,
    Message,
    ModelRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from revagent.store.threads import TranscriptEntry

CHARS_PER_TOKEN = 4
SUMMARY_MAX_CHARS = 12_000
IMAGE_PLACEHOLDER = "[chart image shown earlier; call get_chart again to see it]"
BRIEF_IMAGE_PLACEHOLDER = ("[the chart image sent with this alert brief is not kept (images are not stored); "
                           "call get_chart to see it again]")


def brief_image_key(turn_id: str) -> str:
    """The key of a turn's alert-brief chart in the runner's in-memory images (tool call ids aside)."""
    return f"brief:{turn_id}"


def latest_summary(entries: Sequence[TranscriptEntry]) -> TranscriptEntry | None:
    for e in reversed(entries):
        if e.kind == "summary":
            return e
    return None


def live_entries(entries: Sequence[TranscriptEntry]) -> tuple[TranscriptEntry | None, list[TranscriptEntry]]:
    """The latest summary and the entries it does not cover."""
    summary = latest_summary(entries)
    if summary is None:
        return None, list(entries)
    upto = summary.upto_seq or 0
    return summary, [e for e in entries if e.seq >= upto and e.kind != "summary"]


def build_messages(entries: Sequence[TranscriptEntry], *, current_turn: str | None = None, context: str = "",
                   images: Mapping[str, ImageBlock] | None = None) -> tuple[Message, ...]:
    """The API messages for a request in `current_turn` (see the module docstring)."""
    summary, live = live_entries(entries)
    raw: list[Message] = []
    if summary is not None:
        raw.append(Message.user(f"[Summary of the earlier conversation]\n{summary.text}"))
    pending_notices: list[str] = []
    open_tool_uses: list[str] = []
    for e in live:
        if e.kind == "user":
            if open_tool_uses:
                raw.append(_unanswered(open_tool_uses))
                open_tool_uses = []
            text = e.text
            if pending_notices:
                text = "\n".join(pending_notices) + "\n\n" + text
                pending_notices = []
            blocks: list[ContentBlock] = []
            if e.turn_id == current_turn and context:
                blocks.append(TextBlock(context))
            if e.data.get("image") == "chart":
                image = (images or {}).get(brief_image_key(e.turn_id)) if e.turn_id == current_turn else None
                blocks.append(image if image is not None else TextBlock(BRIEF_IMAGE_PLACEHOLDER))
            blocks.append(TextBlock(text or "(no text)"))
            raw.append(Message("user", tuple(blocks)))
        elif e.kind == "assistant" and not e.data.get("offline"):  # the offline reply is the trader's only
            if open_tool_uses:
                raw.append(_unanswered(open_tool_uses))
                open_tool_uses = []
            content: list[ContentBlock] = []
            current = e.turn_id == current_turn
            for b in e.blocks:
                if b.get("type") == "thinking":
                    if current:
                        content.append(ThinkingBlock(b["thinking"], b["signature"]))
                elif b.get("type") == "redacted_thinking":
                    if current:
                        content.append(RedactedThinkingBlock(b["data"]))
                elif b.get("type") == "text" and b.get("text", "").strip():
                    content.append(TextBlock(b["text"]))
                elif b.get("type") == "tool_use":
                    content.append(ToolUseBlock(b["id"], b["name"], b.get("input", {})))
                    open_tool_uses.append(b["id"])
            if any(not isinstance(c, ThinkingBlock | RedactedThinkingBlock) for c in content):
                raw.append(Message("assistant", tuple(content)))
        elif e.kind == "tool_results":
            results: list[ContentBlock] = []
            for b in e.blocks:
                tid = b["tool_use_id"]
                if tid not in open_tool_uses:
                    continue  # never answer a call twice or a call that is not open
                open_tool_uses.remove(tid)
                text = str(b.get("content", ""))
                body: str | tuple[TextBlock | ImageBlock, ...] = text or "(empty)"
                if b.get("image"):
                    image = (images or {}).get(tid) if e.turn_id == current_turn else None
                    body = (TextBlock(text or "chart"), image) if image is not None else \
                        f"{text}\n{IMAGE_PLACEHOLDER}"
                results.append(ToolResultBlock(tid, body, bool(b.get("is_error"))))
            if open_tool_uses:
                results.extend(ToolResultBlock(t, "not executed: the turn stopped before this call ran", True)
                               for t in open_tool_uses)
                open_tool_uses = []
            if results:
                raw.append(Message("user", tuple(results)))
        elif e.kind == "notice" and e.data.get("replay"):
            pending_notices.append(f"[{e.text}]")
    if open_tool_uses:
        raw.append(_unanswered(open_tool_uses))
    if pending_notices:
        raw.append(Message.user("\n".join(pending_notices)))
    merged = _merge(raw)
    return _with_breakpoints(merged, entries, current_turn)


def _unanswered(ids: Sequence[str]) -> Message:
    return Message("user", tuple(ToolResultBlock(t, "not executed: the turn stopped before this call ran", True)
                                 for t in ids))


def _merge(messages: list[Message]) -> list[Message]:
    out: list[Message] = []
    for m in messages:
        if out and out[-1].role == m.role:
            prev = out[-1]
            out[-1] = Message(m.role, prev.content + m.content)
        else:
            out.append(m)
    while out and out[0].role != "user":
        out.pop(0)
    return out


def _with_breakpoints(messages: list[Message], entries: Sequence[TranscriptEntry],
                      current_turn: str | None) -> tuple[Message, ...]:
    if not messages:
        return ()
    # the current turn's user message is the one that carries the context: find it from the end
    current_index = len(messages) - 1
    if current_turn is not None:
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            if m.role == "user" and not all(isinstance(b, ToolResultBlock) for b in m.content):
                current_index = i
                break
    marks = {len(messages) - 1}
    if current_index > 0:
        marks.add(current_index - 1)
    return tuple(Message(m.role, m.content, cache=i in marks) for i, m in enumerate(messages))


# ------------------------------------------------------------------------------------ compaction


IMAGE_CHARS = 1600 * CHARS_PER_TOKEN
"""An image as characters for the estimate: about 1,600 tokens (a chart at the API's 1.15 MP bound)."""


_FIELDS: dict[type, tuple[tuple[str, int], ...]] = {}
"""Per dataclass type: its fields' names with their share of the count (the name, quotes and colon)."""
_SPECS: dict[int, tuple[ToolSpec, int]] = {}
"""A tool spec's count by identity (the spec is kept, so its id is never reused while remembered):
the registry hands out the same specs every call, and their schemas are most of a prompt."""
_SPECS_MAX = 1024


def _chars(obj: object) -> int:
    """About the JSON length of `obj`: every field, key and value (a walk of plain loops: this runs
    over every request's messages)."""
    kind = type(obj)
    if kind is str:
        return len(obj) + 2  # type: ignore[arg-type]
    if kind is ToolSpec:
        known = _SPECS.get(id(obj))
        if known is not None and known[0] is obj:
            return known[1]
        if len(_SPECS) >= _SPECS_MAX:
            _SPECS.clear()
        chars = _chars_of_fields(obj, _field_names(obj))
        _SPECS[id(obj)] = (obj, chars)  # type: ignore[assignment]
        return chars
    names = _FIELDS.get(kind)
    if names is not None:
        n = 2
        for name, extra in names:
            v = getattr(obj, name)
            n += extra + (len(v) + 2 if type(v) is str else _chars(v))
        return n
    if kind is tuple or kind is list:
        n = 2
        for v in obj:  # type: ignore[attr-defined]
            n += 1 + (len(v) + 2 if type(v) is str else _chars(v))
        return n
    if isinstance(obj, ImageBlock):
        return IMAGE_CHARS
    if is_dataclass(obj) and not isinstance(obj, type):
        return _chars_of_fields(obj, _FIELDS.setdefault(kind, _field_names(obj)))
    if isinstance(obj, str):
        return len(obj) + 2
    if isinstance(obj, Mapping):
        n = 2
        for k, v in obj.items():
            n += len(str(k)) + 4 + (len(v) + 2 if type(v) is str else _chars(v))
        return n
    if isinstance(obj, list | tuple):
        return 2 + sum(_chars(v) + 1 for v in obj)
    return len(str(obj))


def _field_names(obj: object) -> tuple[tuple[str, int], ...]:
    return tuple((f.name, len(f.name) + 4) for f in fields(obj))  # type: ignore[arg-type]


def _chars_of_fields(obj: object, names: tuple[tuple[str, int], ...]) -> int:
    return 2 + sum(extra + _chars(getattr(obj, name)) for name, extra in names)


def request_chars(request: ModelRequest) -> int:
    """The prompt of `request` (tools, system, messages) in characters, about as long as its JSON.
    A tool spec's count is remembered (specs are immutable: a new schema is a new spec)."""
    return _chars(request.tools) + _chars(request.system) + _chars(request.messages)


def estimate_tokens(entries: Sequence[TranscriptEntry]) -> int:
    """A cheap estimate of the live history's prompt size (chars / 4)."""
    summary, live = live_entries(entries)
    chars = len(summary.text) if summary is not None else 0
    chars += sum(e.prompt_chars() for e in live)
    return chars // CHARS_PER_TOKEN


@dataclass(frozen=True)
class Compaction:
    upto_seq: int
    text: str
    turns: int


def compact(entries: Sequence[TranscriptEntry], budget_tokens: int, *, keep_turns: int = 3,
            max_chars: int = SUMMARY_MAX_CHARS, tokens: int | None = None) -> Compaction | None:
    """A summary of every turn but the last `keep_turns` when the prompt (`tokens`, measured by the
    caller; None: the live history's chars/4 estimate) exceeds `budget_tokens`; None when it fits or
    there is nothing old enough to summarise."""
    if (estimate_tokens(entries) if tokens is None else tokens) <= budget_tokens:
        return None
    summary, live = live_entries(entries)
    starts = [e.seq for e in live if e.kind == "user"]
    if len(starts) <= keep_turns:
        return None
    cut = starts[-keep_turns] if keep_turns > 0 else live[-1].seq + 1
    old = [e for e in live if e.seq < cut]
    lines = [summary.text] if summary is not None else []
    for e in old:
        lines.extend(_summary_lines(e))
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = "… (older lines dropped)\n" + text[-max_chars:]
    return Compaction(upto_seq=cut, text=text, turns=sum(1 for e in old if e.kind == "user"))


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


def _summary_lines(e: TranscriptEntry) -> list[str]:
    if e.kind == "user":
        return [f"Trader ({e.at.isoformat(timespec='minutes')}): {_clip(e.text, 300)}"]
    if e.kind == "assistant":
        out = []
        for b in e.blocks:
            if b.get("type") == "text" and b.get("text"):
                out.append(f"Agent: {_clip(b['text'], 300)}")
            elif b.get("type") == "tool_use":
                out.append(f"Agent called {b.get('name')}({_clip(json.dumps(b.get('input', {}), default=str), 200)})")
        return out
    if e.kind == "tool_results":
        return [f"  -> {'ERROR' if b.get('is_error') else 'ok'}: {_clip(str(b.get('content', '')), 200)}"
                for b in e.blocks]
    return []
