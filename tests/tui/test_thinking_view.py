"""The TUI's thinking view (issue 15.1): the model's thinking shows collapsed and dimmed, with its
first words as the title; ctrl+o expands it; redacted thinking says so and shows no text."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widgets import Static
from textual.widgets._collapsible import CollapsibleTitle

from revagent.tui.widgets.thread_view import AssistantMessage, ThinkingView
from tests.tui.scenes import Scene
from tests.tui.screen import screen_text
from tests.tui.test_app_flows import settle

pytestmark = pytest.mark.timeout(60)
THOUGHT = "Funding flipped negative; the range low at 3,040 is the invalidation. Check the stop first."


async def test_thinking_is_collapsed_and_dimmed_and_ctrl_o_expands_it() -> None:
    scene = Scene(script=[("thinking", {"text": "hidden", "redacted": True}),
                          ("thinking", {"text": THOUGHT}),
                          ("text", {"text": "Stop is in place; standing aside."})])
    app = scene.build()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press(*"status?", "enter")
        await settle(pilot, app)
        redacted, thought = app.query(ThinkingView)
        assert redacted.collapsed and thought.collapsed
        text = screen_text(app)
        assert "thinking… Funding flipped negative" in text  # the title: its first words
        assert "is the invalidation. Check the stop first." not in text  # the body stays folded
        assert "Stop is in place; standing aside." in text
        answer = app.query_one(AssistantMessage)
        assert thought.styles.color != answer.styles.color  # dimmed: the muted text colour, not the answer's
        [body] = [w for w in thought.query(Static) if not isinstance(w, CollapsibleTitle)]
        assert isinstance(body.content, Text) and "dim" in str(body.content.style)  # the body's text too
        await pilot.press("ctrl+o")
        await settle(pilot, app, 2)
        assert not thought.collapsed and redacted.collapsed  # the newest one
        assert "Check the stop first." in screen_text(app)
        redacted.collapsed = False
        await settle(pilot, app, 2)
        shown = screen_text(app)
        assert "(redacted by the model's safety systems)" in shown and "hidden" not in shown
