"""`request_chars` (the prompt's size in characters, the compaction check's last-resort estimate and
the base of its `usage` delta) is computed for every model call and the turn's compaction check: it
must stay cheap as the tool list grows (the tool schemas are the largest part of the prompt and the
same every call), and it must count what it always counted."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime

from revagent.engine.history import IMAGE_CHARS, build_messages, request_chars
from revagent.engine.prompt import PromptLayers, system_blocks
from revagent.engine.providers.base import ImageBlock, ModelRequest, ToolSpec
from revagent.engine.tools import default_tools
from revagent.store.threads import TranscriptEntry

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def reference_chars(obj: object) -> int:
    """The count as it was defined: JSON-like characters of every field, key and value."""
    if isinstance(obj, ImageBlock):
        return IMAGE_CHARS
    if is_dataclass(obj) and not isinstance(obj, type):
        return 2 + sum(len(f.name) + 4 + reference_chars(getattr(obj, f.name)) for f in fields(obj))
    if isinstance(obj, str):
        return len(obj) + 2
    if isinstance(obj, Mapping):
        return 2 + sum(len(str(k)) + 4 + reference_chars(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return 2 + sum(reference_chars(v) + 1 for v in obj)
    return len(str(obj))


def history(turns: int) -> list[TranscriptEntry]:
    out: list[TranscriptEntry] = []
    for i in range(turns):
        t = f"turn_{i}"
        out += [TranscriptEntry(kind="turn_start", turn_id=t, at=NOW, data={"mode": "auto"}),
                TranscriptEntry(kind="user", turn_id=t, at=NOW, text=f"status please {i}"),
                TranscriptEntry(kind="assistant", turn_id=t, at=NOW, blocks=[
                    {"type": "thinking", "thinking": "hmm " * 20, "signature": "sig"},
                    {"type": "tool_use", "id": f"toolu_{i}", "name": "add_note",
                     "input": {"text": f"note {i}", "tags": ["a", "b"], "n": i, "ok": True}}]),
                TranscriptEntry(kind="tool_results", turn_id=t, at=NOW, blocks=[
                    {"tool_use_id": f"toolu_{i}", "tool": "add_note", "content": "saved", "is_error": False}]),
                TranscriptEntry(kind="assistant", turn_id=t, at=NOW, blocks=[{"type": "text", "text": "Done."}]),
                TranscriptEntry(kind="turn_end", turn_id=t, at=NOW, status="done")]
    return out


def request(turns: int = 20) -> ModelRequest:
    entries = history(turns)
    return ModelRequest(model="m", max_tokens=1000, tools=default_tools().specs(),
                        system=system_blocks(PromptLayers(), "chat"),
                        messages=build_messages(entries, current_turn=f"turn_{turns - 1}", context="# SNAPSHOT\n" * 50))


def test_request_chars_counts_tools_system_and_messages_as_before() -> None:
    req = request()
    expected = reference_chars(req.tools) + reference_chars(req.system) + reference_chars(req.messages)
    assert request_chars(req) == expected
    assert request_chars(req) == expected  # again (remembered parts give the same figure)
    # another tool list (a tool added): counted anew, not the remembered figure of the first list
    extra = ToolSpec("extra_tool", "an extra tool " * 10, {"type": "object", "properties": {"x": {"type": "string"}}})
    more = replace(req, tools=(*req.tools, extra))
    assert request_chars(more) == expected + reference_chars(extra) + 1


def test_request_chars_is_cheap_with_the_full_tool_list() -> None:
    """CPU time of this thread (not wall time: a loaded machine does not fail it). Before, the tool
    schemas were walked in full every call: ~0.5-1 ms for 20 tools alone on the 2-core machine."""
    req = request()
    request_chars(req)
    samples = []
    for _ in range(30):
        t = time.thread_time()
        request_chars(req)
        samples.append(time.thread_time() - t)
    tools_only = replace(req, messages=(), system=())
    tool_samples = []
    for _ in range(30):
        t = time.thread_time()
        request_chars(tools_only)
        tool_samples.append(time.thread_time() - t)
    assert statistics.median(tool_samples) < 50e-6, statistics.median(tool_samples)
    assert statistics.median(samples) < 600e-6, statistics.median(samples)
