"""The message box: history (up/down), slash-command completion (tab), inline suggestion.

Only editing keys Textual's `Input` already owns are used for editing; `tab` completes a slash
command (and moves focus only when there is nothing to complete), `up`/`down` walk the history.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import Suggester
from textual.widgets import Input

from revagent.tui.slash import complete


class SlashSuggester(Suggester):
    """Suggests the first completion of a slash command as greyed text."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        options = complete(value)
        return options[0] if options else None


class CommandInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "previous", show=False),
        Binding("down", "history(1)", "next", show=False),
        Binding("tab", "complete", "complete", show=False),
    ]

    def __init__(self, *, id: str, history_size: int = 200) -> None:
        super().__init__(placeholder="message, or /command (tab completes, /help)", id=id,
                         suggester=SlashSuggester())
        self.history: list[str] = []
        self.history_size = history_size
        self._cursor = 0
        self._cycle: list[str] = []
        self._cycle_at = 0

    def remember(self, line: str) -> None:
        """Add a submitted line to the history (consecutive duplicates once)."""
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[: -self.history_size]
        self._cursor = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._cursor = max(0, min(len(self.history), self._cursor + step))
        self.value = self.history[self._cursor] if self._cursor < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if self._cycle and self.value in self._cycle:
            self._cycle_at = (self._cycle.index(self.value) + 1) % len(self._cycle)
        else:
            self._cycle = complete(self.value)
            self._cycle_at = 0
        if not self._cycle:
            if not self.value.startswith("/"):
                self.screen.focus_next()
            return
        self.value = self._cycle[self._cycle_at]
        self.cursor_position = len(self.value)
