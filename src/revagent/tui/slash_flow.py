"""Running a typed slash command: preview and confirm what trades, show an optimistic line, act
through the port, show the outcome in the thread. Runs in the app's `commands` worker.
"""

from __future__ import annotations

import dataclasses

from revagent.models import new_id
from revagent.tui.port import CommandOutcome
from revagent.tui.screens.confirm import ConfirmScreen
from revagent.tui.slash import CostCmd, HelpCmd, OpenTradeCmd, RiskCmd, SlashCommand, help_text
from revagent.tui.surface import AppSurface
from revagent.tui.widgets.thread_view import ThreadView, preview_lines

OPTIMISTIC = ("close", "flatten", "stop", "target", "cancel")


async def run_slash_command(app: AppSurface, cmd: SlashCommand, line: str) -> None:
    """Every destructive command asks first; an open shows the risk engine's preview in the question."""
    view = app.view()
    if view is None:  # only before the first thread exists (the app is still starting)
        app.notify(f"not run: no thread is open yet ({line})", severity="warning")
        return
    await view.add_user(line)
    if isinstance(cmd, HelpCmd):
        await view.add_markdown(help_text(cmd.topic))
        return
    if isinstance(cmd, CostCmd):
        cmd = dataclasses.replace(cmd, thread_id=view.thread_id)
    action_id = new_id("cmd")  # minted once per typed command: a retry reuses it
    if isinstance(cmd, OpenTradeCmd):
        phase = app.model.sync_phase
        if phase not in (None, "consistent"):  # the gateway holds new entries until it is (sync.entry_wait)
            await view.add_notice(f"waiting for the account to be in sync with the exchange (phase {phase})…")
        preview = await app.port.preview(cmd)
        body = "\n".join(preview_lines(preview.data)) if preview.data else preview.message
        if not preview.ok:
            await show_outcome(view, preview)
            return
        if not await app.push_screen_wait(ConfirmScreen(f"Open {cmd.describe()}?", body)):
            await view.add_notice("cancelled")
            return
        app.model.pending[action_id] = f"{cmd.market:<5}{cmd.side} opening… risk ${cmd.risk_usd}"
        app.account_panel.show_prices(app.model)
    elif cmd.destructive or (isinstance(cmd, RiskCmd) and cmd.changes):
        if not await app.push_screen_wait(ConfirmScreen("Are you sure?", cmd.describe())):
            await view.add_notice("cancelled")
            return
        if cmd.name in OPTIMISTIC:
            app.model.pending[action_id] = f"{cmd.describe()}…"  # dimmed until the outcome and a snapshot
            app.account_panel.show_prices(app.model)
    outcome = await app.port.run_slash(cmd, action_id)
    if not outcome.ok:
        app.model.pending.pop(action_id, None)
    app.settle(action_id)  # the next snapshot shows the truth and drops the dimmed line
    await show_outcome(view, outcome)
    app.request_snapshot()


async def show_outcome(view: ThreadView, outcome: CommandOutcome) -> None:
    text = ("✓ " if outcome.ok else "✗ ") + outcome.message
    if outcome.reasons:
        text += "\n" + "\n".join(f"  - {r}" for r in outcome.reasons)
    await view.add_notice(text, error=not outcome.ok)
