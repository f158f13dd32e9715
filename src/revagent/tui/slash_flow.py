"""Running a typed slash command: preview and confirm what trades, show an optimistic line, act
through the port, show the outcome in the thread. Runs in the app's `commands` worker.
"""

from __future__ import annotations

import dataclasses

from revagent.errors import RevagentError
from revagent.models import new_id
from revagent.risk import AccountView
from revagent.risk.intents import ModifyStop, SetTarget
from revagent.risk.rounding import round_price
from revagent.tui import format as fmt
from revagent.tui.port import CommandOutcome
from revagent.tui.risk_report import risk_report
from revagent.tui.screens.confirm import ConfirmScreen
from revagent.tui.slash import (
    CancelCmd,
    CloseCmd,
    CostCmd,
    FlattenCmd,
    HelpCmd,
    ModeCmd,
    OpenTradeCmd,
    RiskCmd,
    SlashCommand,
    StopCmd,
    TargetCmd,
    help_text,
)
from revagent.tui.surface import AppSurface
from revagent.tui.widgets.thread_view import ThreadView, preview_lines

OPTIMISTIC = ("close", "flatten", "stop", "target", "cancel")
# what a read-only thread refuses: orders (a stop and the kill switch are protection: they pass)
ORDER_COMMANDS = (OpenTradeCmd, CloseCmd, FlattenCmd, TargetCmd, CancelCmd)


def readonly_refusal(cmd: SlashCommand, kind: str, mode: str) -> str | None:
    """The line a read-only thread answers an order command with; None when the command may run."""
    if mode != "readonly" or not isinstance(cmd, ORDER_COMMANDS):
        return None
    word = f"/{cmd.side}" if isinstance(cmd, OpenTradeCmd) else f"/{cmd.name}"
    return (f"{word} refused: {kind} threads are read-only (no orders). Switch with /mode copilot or "
            f"/mode autonomous{' --alerts' if kind == 'alert' else ''}; /stop and /halt still work.")


def resolved_prices(cmd: SlashCommand, account: AccountView | None) -> str:
    """What a /stop or /target will send, resolved against the account and on the tick grid (the
    gateway rounds a sell trigger up, a buy trigger down); '' when it cannot be told here."""
    if account is None or not isinstance(cmd, StopCmd | TargetCmd):
        return ""
    position = account.position(cmd.market)
    rules = account.markets.get(cmd.market)
    if position is None or rules is None:
        return ""
    is_buy = position.size < 0  # the protective order closes the position
    try:
        intent = cmd.as_action().resolve(account)
    except RevagentError as exc:
        return f"cannot resolve here: {exc.message}"
    parts: list[str] = []
    if isinstance(intent, ModifyStop):
        parts.append(f"stop at {fmt.price(round_price(intent.stop_px, rules.sz_decimals, is_buy=is_buy))}")
    elif isinstance(intent, SetTarget):
        if intent.target_px is not None:
            parts.append(f"planned target {fmt.price(intent.target_px)}")
        if intent.take_profit_px is not None:
            tp = round_price(intent.take_profit_px, rules.sz_decimals, is_buy=is_buy)
            parts.append(f"take-profit order at {fmt.price(tp)}")
    mark = rules.mark_px
    return ", ".join(parts) + (f"  (mark {fmt.price(mark)})" if mark is not None and parts else "")


def present(cmd: SlashCommand, outcome: CommandOutcome) -> CommandOutcome:
    """The outcome of a read-out command in the trader's words (a report, not the raw document)."""
    if not outcome.ok:
        return outcome
    if isinstance(cmd, RiskCmd) and not cmd.changes and "settings" in outcome.data:
        return dataclasses.replace(outcome, message="risk\n" + risk_report(outcome.data))
    if isinstance(cmd, ModeCmd):
        modes = {k: str(v) for k, v in outcome.data.items() if k in ("chat", "alert")}
        if cmd.mode is None:
            return dataclasses.replace(outcome, message=f"mode: chat threads {modes.get('chat', '?')}, "
                                                        f"alert threads {modes.get('alert', '?')}")
        scope = "alert" if cmd.alerts else "chat"
        what = {"readonly": "orders are refused; protective stops and /halt still pass",
                "copilot": "the agent's orders become proposals (F2 approves, F3 rejects)",
                "autonomous": "the agent's orders run through the risk engine"}[cmd.mode]
        return dataclasses.replace(outcome, message=f"{scope} threads are now {cmd.mode}: {what}")
    return outcome


async def run_slash_command(app: AppSurface, cmd: SlashCommand, line: str) -> None:
    """Every destructive command asks first; an open shows the risk engine's preview in the question."""
    view = app.view()
    if view is None:  # only before the first thread exists (the app is still starting)
        app.notify(f"not run: no thread is open yet ({line})", severity="warning")
        return
    await view.add_user(line)
    tab = app.tabs.get(view.thread_id)
    kind = tab.kind if tab is not None else "chat"
    refusal = readonly_refusal(cmd, kind, app.model.snapshot.modes.get(kind, ""))
    if refusal is not None:
        await view.add_notice("✗ " + refusal, error=True)
        return
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
        sent = resolved_prices(cmd, app.model.snapshot.account)
        body = cmd.describe() + (f"\nsends: {sent}" if sent else "")
        if not await app.push_screen_wait(ConfirmScreen("Are you sure?", body)):
            await view.add_notice("cancelled")
            return
        if cmd.name in OPTIMISTIC:
            app.model.pending[action_id] = f"{cmd.describe()}…"  # dimmed until the outcome and a snapshot
            app.account_panel.show_prices(app.model)
    outcome = present(cmd, await app.port.run_slash(cmd, action_id))
    if isinstance(cmd, ModeCmd) and outcome.ok:
        app.set_modes({k: str(v) for k, v in outcome.data.items() if k in ("chat", "alert")})
    if not outcome.ok:
        app.model.pending.pop(action_id, None)
    app.settle(action_id)  # the next snapshot shows the truth and drops the dimmed line
    await show_outcome(view, outcome)
    app.request_snapshot(fresh=isinstance(cmd, ORDER_COMMANDS))  # a fill or a flatten: the exchange's figures


async def show_outcome(view: ThreadView, outcome: CommandOutcome) -> None:
    text = ("✓ " if outcome.ok else "✗ ") + outcome.message
    if outcome.reasons:
        text += "\n" + "\n".join(f"  - {r}" for r in outcome.reasons)
    await view.add_notice(text, error=not outcome.ok)
