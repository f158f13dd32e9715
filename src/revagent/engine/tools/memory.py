"""Alert and memory tools: watcher pairs, time alerts, notes. Written through the store (which
publishes an invalidation, so the alert index and the TUI pick them up), each write in one
transaction with the call's recorded result (`ToolContext.commit`): a call re-run after a crash
returns that result and writes nothing again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from revagent import actions
from revagent.actions.grammar import Conviction
from revagent.engine.tools.base import Args, Price, Tool, ToolContext, ToolResult, Usd
from revagent.errors import UsageError
from revagent.models import (
    MARKET_PATTERN,
    LegStatus,
    Side,
    TimeAlertStatus,
    parse_duration,
)


class LegArgs(Args):
    level: Price
    thesis: str = Field(default="", max_length=1000, description="what it means if the price gets there")
    side: Side | None = Field(default=None, description="the trade you would take if it fires")
    entry_px: Price | None = Field(default=None, description="the entry you would take (default: at market)")
    stop_px: Price | None = None
    target_px: Price | None = None
    conviction: Conviction | None = Field(default=None, description="conviction 0-100 in that setup")
    risk_usd: Usd | None = None

    def action(self) -> actions.WatchLeg:
        return actions.WatchLeg(level=self.level, thesis=self.thesis, side=None if self.side is None else
                                self.side.value, entry=self.entry_px, stop=self.stop_px, target=self.target_px,
                                conviction=self.conviction, risk_usd=self.risk_usd)

    @model_validator(mode="after")
    def _setup(self) -> LegArgs:
        try:  # the action's rules: the stop on the entry's losing side, the target beyond it
            self.action()
        except ValidationError as exc:
            raise ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
        return self


def _duration(text: str | None) -> timedelta | None:
    return None if text is None else parse_duration(text)


class WatcherArgs(Args):
    market: str = Field(pattern=MARKET_PATTERN)
    upper: LegArgs | None = Field(default=None, description="fires when the mid rises to the level")
    lower: LegArgs | None = Field(default=None, description="fires when the mid falls to the level")
    expires_in: str | None = Field(default=None, description="duration such as 24h; default: never")

    @model_validator(mode="after")
    def _legs(self) -> WatcherArgs:
        if self.upper is None and self.lower is None:
            raise ValueError("give an upper leg, a lower leg, or both")
        if self.upper is not None and self.lower is not None and self.lower.level >= self.upper.level:
            raise ValueError(f"lower.level ({self.lower.level}) must be under upper.level ({self.upper.level})")
        if self.expires_in is not None:
            parse_duration(self.expires_in)
        return self


class ModifyWatcherArgs(Args):
    id: str = Field(min_length=1, max_length=64, description="the watcher pair's id (w_...)")
    upper: LegArgs | None = Field(default=None, description="the new upper leg (replaces it; re-armed)")
    lower: LegArgs | None = Field(default=None, description="the new lower leg (replaces it; re-armed)")
    expires_in: str | None = Field(default=None, description="new expiry from now, such as 24h")

    @model_validator(mode="after")
    def _some(self) -> ModifyWatcherArgs:
        if self.upper is None and self.lower is None and self.expires_in is None:
            raise ValueError("give upper, lower and/or expires_in")
        if self.expires_in is not None:
            parse_duration(self.expires_in)
        return self


class IdArgs(Args):
    id: str = Field(min_length=1, max_length=64)


class TimeAlertArgs(Args):
    prompt: str = Field(min_length=1, max_length=4000, description="what to do when it fires")
    at: datetime | None = Field(default=None, description="ISO 8601 UTC time")
    in_: str | None = Field(default=None, alias="in", description="duration from now, such as 30m or 4h")
    every: str | None = Field(default=None, description="repeat interval (at least 1m)")

    @model_validator(mode="after")
    def _when(self) -> TimeAlertArgs:
        if (self.at is None) == (self.in_ is None):
            raise ValueError("give exactly one of at or in")
        if self.in_ is not None:
            parse_duration(self.in_)
        if self.every is not None and parse_duration(self.every) < timedelta(minutes=1):
            raise ValueError("every is at least 1m")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("at must carry a timezone (use Z for UTC)")
        return self


class NoteArgs(Args):
    text: str = Field(min_length=1, max_length=4000)
    tags: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        out = [t.strip().lstrip("#") for t in v]
        for t in out:
            if not t or len(t) > 32 or not all(c.isalnum() or c in "-_" for c in t):
                raise ValueError(f"tag {t!r}: 1-32 letters, digits, '-' or '_'")
        return out


def watch_action(a: WatcherArgs) -> actions.Watch:
    return actions.Watch(market=a.market, upper=a.upper.action() if a.upper else None,
                         lower=a.lower.action() if a.lower else None, expires_in=_duration(a.expires_in),
                         created_by="agent")


def modify_watch_action(a: ModifyWatcherArgs) -> actions.ModifyWatch:
    return actions.ModifyWatch(id=a.id, upper=a.upper.action() if a.upper else None,
                               lower=a.lower.action() if a.lower else None, expires_in=_duration(a.expires_in))


def alert_action(a: TimeAlertArgs) -> actions.AddAlert:
    return actions.AddAlert(prompt=a.prompt, at=a.at, after=_duration(a.in_), every=_duration(a.every))


def note_action(a: NoteArgs) -> actions.AddNote:
    return actions.AddNote(text=a.text, tags=tuple(a.tags))


ACTION_OF: dict[str, Callable[[Any], actions.TraderAction]] = {
    "set_watcher_pair": watch_action, "modify_watcher": modify_watch_action, "set_time_alert": alert_action,
    "add_note": note_action,
}
"""The memory action each tool's arguments describe (the tool door of `revagent.actions`)."""


async def _level_problems(ctx: ToolContext, market: str, upper: LegArgs | None,
                          lower: LegArgs | None) -> list[str] | ToolResult:
    """A new leg must lie beyond the current mid (else it would fire at once)."""
    if ctx.services.market is None:
        return []
    mids = await ctx.services.market.all_mids()
    mid = mids.get(market)
    if mid is None:
        return ToolResult.error(f"unknown market {market!r}")
    problems = []
    if upper is not None and upper.level <= mid:
        problems.append(f"upper.level {upper.level} must be above the current mid {mid}")
    if lower is not None and lower.level >= mid:
        problems.append(f"lower.level {lower.level} must be below the current mid {mid}")
    return problems


async def set_watcher_pair(a: WatcherArgs, ctx: ToolContext) -> ToolResult:
    svc = ctx.services
    problems = await _level_problems(ctx, a.market, a.upper, a.lower)
    if isinstance(problems, ToolResult):
        return problems
    if problems:
        return ToolResult.error("invalid watcher:\n" + "\n".join(f"- {p}" for p in problems))
    action = watch_action(a).model_copy(update={"created_by": f"agent:{ctx.thread_id}"})
    pair = action.resolve(None).build(svc.clock())
    return await ctx.commit(ToolResult.ok({"ok": True, "watcher_id": pair.id, "market": pair.market}),
                            lambda pipe: svc.store.watchers.queue_put(pipe, [pair]))


async def modify_watcher(a: ModifyWatcherArgs, ctx: ToolContext) -> ToolResult:
    repo = ctx.services.store.watchers
    pair = await repo.get(a.id)
    if pair is None:
        return ToolResult.error(f"no watcher {a.id!r}")
    problems = await _level_problems(ctx, pair.market, a.upper, a.lower)
    if isinstance(problems, ToolResult):
        return problems
    if problems:
        return ToolResult.error("invalid watcher change; nothing changed:\n" + "\n".join(f"- {p}" for p in problems))
    try:
        changed = modify_watch_action(a).resolve(None).apply(pair, ctx.services.clock())
    except UsageError as exc:
        return ToolResult.error(f"{exc.message}; nothing changed")
    legs = {name: leg.model_dump(mode="json", exclude_none=True) for name in ("upper", "lower")
            if (leg := getattr(changed, name)) is not None}
    return await ctx.commit(ToolResult.ok({"ok": True, "watcher_id": changed.id, "market": changed.market, **legs,
                                           "expires_at": changed.expires_at}),
                            lambda pipe: repo.queue_put(pipe, [changed]))


async def cancel_watcher(a: IdArgs, ctx: ToolContext) -> ToolResult:
    repo = ctx.services.store.watchers
    pair = await repo.get(a.id)
    if pair is None:
        return ToolResult.error(f"no watcher {a.id!r}")
    legs = {}
    for name in ("upper", "lower"):
        leg = getattr(pair, name)
        if leg is not None and leg.status is LegStatus.ARMED:
            legs[name] = leg.model_copy(update={"status": LegStatus.CANCELLED})
    cancelled = pair.model_copy(update=legs)
    return await ctx.commit(ToolResult.ok({"ok": True, "cancelled": a.id}),
                            lambda pipe: repo.queue_put(pipe, [cancelled]))


async def set_time_alert(a: TimeAlertArgs, ctx: ToolContext) -> ToolResult:
    now = ctx.services.clock()
    try:
        alert = alert_action(a).resolve(None).build(now)
    except UsageError:
        fire_at = a.at if a.at is not None else now
        return ToolResult.error(f"the time {fire_at.isoformat()} is in the past (now {now.isoformat()})")
    return await ctx.commit(ToolResult.ok({"ok": True, "time_alert_id": alert.id, "fire_at": alert.fire_at}),
                            lambda pipe: ctx.services.store.time_alerts.queue_put(pipe, [alert]))


async def cancel_time_alert(a: IdArgs, ctx: ToolContext) -> ToolResult:
    repo = ctx.services.store.time_alerts
    alert = await repo.get(a.id)
    if alert is None:
        return ToolResult.error(f"no time alert {a.id!r}")
    cancelled = alert.model_copy(update={"status": TimeAlertStatus.CANCELLED})
    return await ctx.commit(ToolResult.ok({"ok": True, "cancelled": a.id}),
                            lambda pipe: repo.queue_put(pipe, [cancelled]))


async def add_note(a: NoteArgs, ctx: ToolContext) -> ToolResult:
    note = note_action(a).resolve(None).build(ctx.services.clock())
    return await ctx.commit(ToolResult.ok({"ok": True, "note_id": note.id}),
                            lambda pipe: ctx.services.store.notes.queue_put(pipe, [note]))


async def remove_note(a: IdArgs, ctx: ToolContext) -> ToolResult:
    notes = ctx.services.store.notes
    if await notes.get(a.id) is None:
        return ToolResult.error(f"no note {a.id!r}")
    return await ctx.commit(ToolResult.ok({"ok": True, "removed": a.id}), lambda pipe: notes.queue_delete(pipe, a.id))


MEMORY_TOOLS: tuple[Tool, ...] = (
    Tool("set_watcher_pair", "Watch a market: an upper and/or a lower price level (mid price), each with the thesis "
         "and the setup you would trade; when one fires, an alert thread starts.", WatcherArgs, set_watcher_pair,
         "memory"),
    Tool("modify_watcher", "Change a watcher pair in place (same id): a leg given replaces that leg (its level, "
         "thesis and setup; re-armed), a leg not given stays; expires_in moves the expiry.", ModifyWatcherArgs,
         modify_watcher, "memory"),
    Tool("cancel_watcher", "Cancel a watcher pair by id.", IdArgs, cancel_watcher, "memory"),
    Tool("set_time_alert", "Schedule a time alert (at a time, or in a duration; optionally repeating) with a prompt "
         "for your future self.", TimeAlertArgs, set_time_alert, "memory"),
    Tool("cancel_time_alert", "Cancel a time alert by id.", IdArgs, cancel_time_alert, "memory"),
    Tool("add_note", "Add a persistent note (it is in every prompt).", NoteArgs, add_note, "memory"),
    Tool("remove_note", "Remove a persistent note by id.", IdArgs, remove_note, "memory"),
)
