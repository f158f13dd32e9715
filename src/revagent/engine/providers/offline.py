"""The offline provider: no key, no network. The default when no API key is configured, and the usual
fallback.

- Chat threads: it explains that no model is configured and lists the slash commands that work
  without one (`SLASH_COMMANDS`).
- Alert threads (`request.thread_kind == "alert"` with `request.alert` set): it runs `policy`
  (default `rule_based_policy`, see `policy.py`) and emits its actions as ordinary `ToolCall`s
  (stop reason `tool_use`), so the runner executes them through the same path as a model's calls.
  When the runner calls again with the tool results (the last user message starts with
  `tool_result` blocks), it answers with a short text summary of those results and `end_turn`.

Tool-call ids are deterministic per firing (`toolu_offline_<trigger key>_<digest>_<n>`), so a
resumed alert retries the same actions with the same client order ids (exactly-once effects), and
another firing of the same alert (a trade's alerts share one thread) gets new ids: it never
reuses an earlier firing's gateway action keys.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

from revagent.engine.providers.base import (
    Finished,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResultBlock,
    Usage,
)
from revagent.engine.providers.policy import OfflinePolicy, rule_based_policy

OFFLINE_MODEL = "offline"

def _slash_commands() -> tuple[tuple[str, str], ...]:
    """(usage, summary) of every slash command: the table `/help` prints (
    `revagent.actions.slash_table.SPECS`), so the two never disagree."""
    from revagent.actions.slash_table import SPECS

    return tuple((spec.usage, spec.summary) for spec in SPECS.values())


SLASH_COMMANDS: tuple[tuple[str, str], ...] = _slash_commands()


def chat_explanation() -> str:
    lines = [
        "No language model is configured (or reachable), so I cannot answer free text. "
        "Set an API key (the env var named by `llm.api_key_env`, default ANTHROPIC_API_KEY) "
        "to talk to the agent.",
        "",
        "These slash commands work without a model:",
        "",
        *(f"- `{cmd}`  {what}" for cmd, what in SLASH_COMMANDS),  # a Markdown list, one command a line
        "",
        "Alerts keep running: with no model, alert threads follow the rule-based offline policy.",
    ]
    return "\n".join(lines)


class OfflineProvider:
    """See the module docstring. `chunk_chars` splits the chat text into several `TextDelta`s, like a
    model would stream it."""

    name = "offline"

    def __init__(self, policy: OfflinePolicy = rule_based_policy, chunk_chars: int = 160) -> None:
        self.policy = policy
        self.chunk_chars = chunk_chars

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        if request.thread_kind == "alert" and request.alert is not None:
            results = _trailing_tool_results(request)
            if results:
                yield TextDelta(_results_summary(results))
                yield Usage(model=OFFLINE_MODEL)
                yield Finished("end_turn")
                return
            decision = self.policy(request.alert)
            if decision.text:
                yield TextDelta(decision.text)
            prefix = offline_call_prefix(request.alert.trigger_key or request.alert.alert_id)
            for n, action in enumerate(decision.actions):
                yield ToolCall(f"{prefix}_{n}", action.tool, dict(action.arguments))
            yield Usage(model=OFFLINE_MODEL)
            yield Finished("tool_use" if decision.actions else "end_turn")
            return
        text = chat_explanation()
        for start in range(0, len(text), self.chunk_chars):
            yield TextDelta(text[start : start + self.chunk_chars])
        yield Usage(model=OFFLINE_MODEL)
        yield Finished("end_turn")


def _trailing_tool_results(request: ModelRequest) -> list[ToolResultBlock]:
    if not request.messages or request.messages[-1].role != "user":
        return []
    return [b for b in request.messages[-1].content if isinstance(b, ToolResultBlock)]


def _results_summary(results: list[ToolResultBlock]) -> str:
    parts = []
    for r in results:
        body = (
            r.content
            if isinstance(r.content, str)
            else " ".join(getattr(b, "text", "[image]") for b in r.content)
        )
        parts.append(f"- {'FAILED' if r.is_error else 'ok'}: {body.strip()[:300]}")
    failed = sum(r.is_error for r in results)
    head = (
        "Offline policy done."
        if not failed
        else f"Offline policy: {failed} of {len(results)} actions failed."
    )
    return "\n".join([head, *parts])


def offline_call_prefix(firing: str) -> str:
    """`toolu_offline_<readable part of the firing's key>_<digest of the whole key>`: ids allowed by the
    API (`[a-zA-Z0-9_-]`), distinct for distinct keys however long they are."""
    digest = hashlib.sha256(firing.encode()).hexdigest()[:12]
    return f"toolu_offline_{_safe_id(firing)}_{digest}"


def _safe_id(raw: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", raw)[:40] or "alert"
