"""A `run_python` call in the transcript: one folded line; expanded, the code as written (not JSON),
its stdout, the final value and the figure's mention; a failed run opens by itself."""

from __future__ import annotations

import json
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult

from revagent.events import TurnEvent
from revagent.tui.widgets.thread_view import ThreadView, ToolCallBlock
from tests.tui.screen import screen_text

CODE = "atr = df['high'].sub(df['low']).mean()\nprint('mean range', round(atr, 1))\natr / df['close'].iloc[-1]"


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield ThreadView("th", id="view")


def ev(kind: Any, **data: Any) -> TurnEvent:
    return TurnEvent(thread_id="th", turn_id="t1", kind=kind, data=data)


async def test_a_python_call_folds_and_shows_its_code_and_output() -> None:
    app = One()
    async with app.run_test(size=(120, 30)) as pilot:
        view = app.query_one(ThreadView)
        await view.apply(ev("tool_call", id="toolu_1", name="run_python",
                            input={"code": CODE, "inputs": {"candles": [{"market": "BTC"}]}}))
        result = {"ok": True, "stdout": "mean range 212.4\n", "value": "0.00354", "figure": "PNG, 9,120 bytes"}
        await view.apply(ev("tool_result", id="toolu_1", name="run_python", is_error=False,
                            content=json.dumps(result)))
        await pilot.pause()
        text = screen_text(app)
        assert "run_python atr = df['high'].sub(df['low']).mean()  ✓" in text  # its first line of code
        assert "print('mean range'" not in text  # folded: one line
        app.query_one(ToolCallBlock).collapsed = False
        await pilot.pause()
        text = screen_text(app)
        assert "print('mean range', round(atr, 1))" in text  # the code as written, not a JSON string
        assert "mean range 212.4" in text and "= 0.00354" in text and "figure: PNG, 9,120 bytes" in text
        assert "\\n" not in text


async def test_a_failed_python_call_opens_with_its_error() -> None:
    app = One()
    async with app.run_test(size=(120, 30)) as pilot:
        view = app.query_one(ThreadView)
        await view.apply(ev("tool_call", id="toolu_2", name="run_python", input={"code": "1/0"}))
        await view.apply(ev("tool_result", id="toolu_2", name="run_python", is_error=True,
                            content=json.dumps({"ok": False, "error": "ZeroDivisionError (line 1): division by zero"})))
        await pilot.pause()
        assert app.query_one(ToolCallBlock).collapsed is False
        assert "error: ZeroDivisionError (line 1): division by zero" in screen_text(app)


async def test_a_python_figure_shows_as_a_link_to_its_png_with_a_sparkline() -> None:
    app = One()
    path = "/home/trader/.local/share/revagent/figures/paper/20261204T224000-toolu_3.png"
    async with app.run_test(size=(140, 30)) as pilot:
        view = app.query_one(ThreadView)
        await view.apply(ev("tool_call", id="toolu_3", name="run_python", input={"code": "df['close'].plot()"}))
        await view.apply(ev("tool_result", id="toolu_3", name="run_python", is_error=False, image=True,
                            content=json.dumps({"ok": True, "figure": "PNG, 9,120 bytes (attached)"}),
                            figure_path=path, figure_sparkline="▁▂▃▅▇█▆▄"))
        block = app.query_one(ToolCallBlock)
        block.collapsed = False
        await pilot.pause()
        text = screen_text(app)
        assert f"figure {path}" in text  # the saved PNG's path, on screen
        assert "▁▂▃▅▇█▆▄" in text  # the chart's first line as text-art
        rendered = block.body.content
        assert isinstance(rendered, Text)
        links = [span.style.link for span in rendered.spans if isinstance(span.style, Style) and span.style.link]
        assert links == [f"file://{path}"]  # a terminal link (OSC 8) to the file
