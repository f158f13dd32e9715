"""One thread's transcript: user lines, streamed assistant Markdown, tool-call blocks, proposals.

`ThreadView.apply(event)` renders one `TurnEvent` (the app routes events by thread id). Assistant
text streams through `Markdown.get_stream` (it batches fast fragments); the view is anchored to the
bottom until the trader scrolls up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from revagent.events import TurnEvent
from revagent.tui import format as fmt
from revagent.tui.port import HistoryEntry


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def preview_lines(data: dict[str, Any]) -> list[str]:
    """The preview of an order (a risk Verdict's fields, or a proposal's `preview`) as short lines."""
    v: dict[str, Any] = data.get("preview") or data.get("verdict") or data
    if "error" in v and len(v) == 1:
        return [str(data.get("summary") or ""), f"no preview: {v['error']}"]
    raw_input = data.get("input")
    tool_input: dict[str, Any] = raw_input if isinstance(raw_input, dict) else {}
    side = str(v.get("side") or tool_input.get("side") or "").upper()
    market = v.get("market") or tool_input.get("market") or "?"
    size, notional = _dec(v.get("size")), _dec(v.get("notional"))
    lines = [f"{side} {market}  size {size if size is not None else '?'}  "
             f"notional {fmt.money(notional)}"]
    expected, worst = _dec(v.get("expected_entry_px")), _dec(v.get("worst_entry_px"))
    if expected is not None and worst is not None and expected != worst:  # a market entry
        lines.append(f"entry ~{fmt.price(expected)}  worst {fmt.price(worst)}  "
                     f"risk at worst {fmt.money(_dec(v.get('risk_at_worst_usd')))}")
    elif expected is not None or worst is not None:  # a limit entry: the price sent
        lines.append(f"entry {fmt.price(expected if expected is not None else worst)} (limit)")
    rr = _dec(v.get("reward_risk"))
    lines.append(f"risk {fmt.money(_dec(v.get('risk_usd')))}  R:R {f'{rr:.2f}' if rr is not None else fmt.DASH}  "
                 f"fees {fmt.money(_dec(v.get('est_fees_usd')))}")
    lines.append(f"stop {fmt.price(_dec(v.get('stop_px')))}  target {fmt.price(_dec(v.get('target_px')))}  "
                 f"liq {fmt.price(_dec(v.get('est_liquidation_px')))}")
    for r in v.get("reasons") or ():
        lines.append(f"✗ {r.get('message', r) if isinstance(r, dict) else r}")
    return lines


class UserMessage(Static):
    DEFAULT_CSS = "UserMessage { margin: 1 0 0 0; }"

    def __init__(self, text: str) -> None:
        super().__init__(Text.assemble(("you  ", "bold cyan"), text))


class Notice(Static):
    DEFAULT_CSS = "Notice { color: $text-muted; } Notice.error { color: $error; }"


class AssistantMessage(Markdown):
    DEFAULT_CSS = "AssistantMessage { margin: 1 0 0 0; padding: 0; }"


class ThinkingView(Collapsible):
    """The model's thinking: collapsed and dimmed (ctrl+o expands the newest one)."""

    DEFAULT_CSS = ("ThinkingView { border: none; padding: 0; margin: 0; color: $text-muted; } "
                   "ThinkingView Contents { padding: 0 0 0 3; }")

    def __init__(self, text: str, redacted: bool = False) -> None:
        body = "(redacted by the model's safety systems)" if redacted else text
        first = " ".join(text.split())[:60] if text and not redacted else ""
        super().__init__(Static(Text(body[:8000], style="dim italic")),
                         title=f"thinking… {first}".rstrip(), collapsed=True)


def python_call_text(args: dict[str, Any], content: str = "") -> str:
    """A `run_python` call as a person reads it: the code as written, the inputs on one line, then
    stdout, the value, the error and whether a figure came back (the content is the tool's JSON)."""
    lines = [str(args.get("code", ""))[:2000].rstrip()]
    if args.get("inputs"):
        lines.append("inputs " + json.dumps(args["inputs"], default=str)[:300])
    if not content:
        return "\n".join(lines)
    try:
        doc = json.loads(content)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return "\n".join([*lines, f"→ {content[:2000]}"])
    if doc.get("stdout"):
        lines += ["── stdout", str(doc["stdout"])[:1500].rstrip()]
    if doc.get("value") is not None:
        lines.append(f"= {str(doc['value'])[:1000]}")
    if doc.get("error"):
        lines.append(f"error: {doc['error']}")
    if doc.get("figure"):
        lines.append(f"figure: {doc['figure']} (sent to the model)")
    return "\n".join(lines)


def python_figure_text(body: Text, data: dict[str, Any]) -> Text:
    """A `run_python` result's figure: its saved PNG as a terminal link (OSC 8: a click opens it where
    the terminal supports it; the path is on screen either way) and the chart's first line as text-art."""
    path = data.get("figure_path")
    if isinstance(path, str) and path:
        body.append("figure ", "dim")
        body.append(path, Style(color="cyan", underline=True, link=f"file://{path}"))
        body.append("\n")
    spark = data.get("figure_sparkline")
    if isinstance(spark, str) and spark:
        body.append(spark[:48] + "\n", "green")
    return body


class ToolCallBlock(Collapsible):
    """One tool call: a one-line title that expands to its arguments, result and risk reasons."""

    DEFAULT_CSS = "ToolCallBlock { border: none; padding: 0; margin: 0; } ToolCallBlock Contents { padding: 0 0 0 3; }"

    def __init__(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        self.call_id = call_id
        self.tool_name = name
        self.args = args
        self.body = Static(Text(self._args_text(), style="dim"))
        super().__init__(self.body, title=self._title_for("…"), collapsed=True)

    _BRIEF = (("market", "{}"), ("side", "{}"), ("risk_usd", "risk ${}"), ("stop_px", "stop {}"), ("stop", "stop {}"),
              ("price", "{}"), ("fraction", "x{}"), ("oid", "#{}"))

    def _args_text(self) -> str:
        if self.tool_name == "run_python":
            return python_call_text(self.args)
        return json.dumps(self.args, indent=1, default=str)[:2000]

    def _title_for(self, status: str) -> str:
        brief = " ".join(fmt_.format(self.args[k]) for k, fmt_ in self._BRIEF if self.args.get(k) is not None)
        if self.tool_name == "run_python":  # its first line of code
            first = next((ln.strip() for ln in str(self.args.get("code", "")).splitlines() if ln.strip()), "")
            brief = first if len(first) <= 48 else first[:47] + "…"
        return f"{self.tool_name} {brief}  {status}".strip()

    def set_result(self, data: dict[str, Any]) -> None:
        """Show the outcome: the runner's `is_error` / `content`, or a gateway-style `ok` / `message`.
        A refusal expands by itself, so its reasons are read without a key press."""
        if "is_error" in data:
            ok = not data["is_error"]
        else:
            ok = bool(data.get("ok", data.get("status") in ("done", "duplicate", None)))
        content = str(data.get("content") or data.get("message") or data.get("result") or "")
        reasons = [str(r.get("message", r)) if isinstance(r, dict) else str(r) for r in data.get("reasons") or ()]
        first = content.splitlines()[0] if content else (reasons[0] if reasons else "")
        self.title = self._title_for("✓" if ok else f"✗ {first}")
        if self.tool_name == "run_python":
            body = Text(python_call_text(self.args, content) + "\n", style="dim" if ok else "red")
            self.body.update(python_figure_text(body, data))
            self.title = self._title_for("✓" if ok else "✗")
            if not ok:
                self.collapsed = False
            return
        body = Text(json.dumps(self.args, indent=1, default=str)[:2000] + "\n", style="dim")
        if content:
            body.append(f"→ {content[:2000]}\n", "green" if ok else "red")
        for r in reasons:
            body.append(f"  ✗ {r}\n", "red")
        self.body.update(body)
        if not ok:
            self.collapsed = False


class ProposalCard(Static):
    """A copilot proposal with its preview; F2 approves, F3 rejects (the app owns the keys)."""

    DEFAULT_CSS = """
    ProposalCard { border: heavy $warning; padding: 0 1; margin: 1 0 0 0; height: auto; }
    ProposalCard.approved { border: heavy $success; }
    ProposalCard.rejected { border: heavy $error; }
    """

    def __init__(self, proposal_id: str, data: dict[str, Any]) -> None:
        self.proposal_id = proposal_id
        self.data = data
        self.answer: str | None = None
        super().__init__(self._render_card())
        self.border_title = "proposal"

    def _render_card(self) -> Text:
        out = Text("\n".join(preview_lines(self.data)))
        if self.answer is None:
            out.append("\nF2 approve   F3 reject", "bold")
        else:
            out.append(f"\n{self.answer}", "bold")
        return out

    def set_answer(self, answer: str) -> None:
        self.answer = answer
        self.add_class("approved" if answer.startswith("approved") else "rejected")
        self.update(self._render_card())


class ThreadView(VerticalScroll):
    """The transcript of one thread (chat or alert)."""

    DEFAULT_CSS = "ThreadView { padding: 0 1; }"
    can_focus = False

    def __init__(self, thread_id: str, *, id: str) -> None:
        super().__init__(id=id)
        self.thread_id = thread_id
        self._stream: MarkdownStream | None = None
        self._tools: dict[str, ToolCallBlock] = {}
        self._folds: list[Collapsible] = []  # tool calls and thinking, newest last (ctrl+o toggles it)
        self.proposals: dict[str, ProposalCard] = {}

    def on_mount(self) -> None:
        self.anchor()

    def pending_proposal(self) -> ProposalCard | None:
        """The newest unanswered proposal of this thread."""
        for card in reversed(list(self.proposals.values())):
            if card.answer is None:
                return card
        return None

    async def add_history(self, entries: Sequence[HistoryEntry]) -> None:
        """A thread's stored transcript, mounted above whatever the view already shows."""
        widgets: list[Widget] = [
            UserMessage(e.text) if e.role == "user" else AssistantMessage(e.text) if e.role == "assistant"
            else Notice(e.text) for e in entries]
        if not widgets:
            return
        if self.children:
            await self.mount_all(widgets, before=0)
        else:
            await self.mount_all(widgets)

    async def add_user(self, text: str) -> None:
        await self._end_stream()
        await self.mount(UserMessage(text))

    async def add_notice(self, text: str, *, error: bool = False) -> None:
        await self._end_stream()
        await self.mount(Notice(text, classes="error" if error else ""))

    async def add_markdown(self, text: str) -> None:
        await self._end_stream()
        await self.mount(AssistantMessage(text))

    async def _end_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()

    async def apply(self, event: TurnEvent) -> None:
        """Render one turn event of this thread."""
        data = event.data
        kind = event.kind
        if kind == "text":
            if self._stream is None:
                md = AssistantMessage()
                await self.mount(md)
                self._stream = Markdown.get_stream(md)
            await self._stream.write(str(data.get("text", "")))
        elif kind == "tool_call":
            await self._end_stream()
            call_id = str(data.get("id") or data.get("call_id") or len(self._tools))
            args = data.get("input") or data.get("args") or {}
            block = ToolCallBlock(call_id, str(data.get("name", "tool")), args if isinstance(args, dict) else {})
            self._tools[call_id] = block
            self._folds.append(block)
            await self.mount(block)
        elif kind == "thinking":
            await self._end_stream()
            thought = ThinkingView(str(data.get("text", "")), bool(data.get("redacted")))
            self._folds.append(thought)
            await self.mount(thought)
        elif kind == "tool_result":
            done = self._tools.get(str(data.get("id") or data.get("call_id") or ""))
            if done is not None:
                done.set_result(data)
        elif kind == "proposal":
            await self._end_stream()
            pid = str(data.get("proposal_id") or data.get("id") or "")
            card = ProposalCard(pid, data)
            self.proposals[pid] = card
            await self.mount(card)
        elif kind == "started" and data.get("resumed"):
            await self.add_notice("(resumed after a restart)")
        elif kind in ("notice", "error"):
            await self.add_notice(str(data.get("message") or data.get("text") or kind), error=kind == "error")
        elif kind == "done":
            await self._end_stream()
            if data.get("interrupted") or data.get("status") == "interrupted":
                await self.add_notice("(interrupted)")

    def toggle_last_tool(self) -> bool:
        """Expand or collapse the newest tool-call or thinking block; False when there is none."""
        if not self._folds:
            return False
        block = self._folds[-1]
        block.collapsed = not block.collapsed
        return True
