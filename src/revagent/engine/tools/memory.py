"""Alert and memory tools: watcher pairs, time alerts, notes. Written through the store (which
publishes an invalidation, so the alert index and the TUI pick them up), each write in one
transaction with the call's recorded result (`ToolContext.commit`): a call re-run after a crash
returns that result and writes nothing again."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, field_validator, model_validator

from revagent.engine.tools.base import Args, Price, Tool, ToolContext, ToolResult, Usd
from revagent.models import (
    MARKET_PATTERN,
    LegDirection,
    LegStatus,
    Note,
    ProposedSetup,
    Side,
    TimeAlert,
    TimeAlertStatus,
    WatcherLeg,
    WatcherPair,
    parse_duration,
)


class LegArgs(Args):
    level: Price
    thesis: str = Field(default="", max_length=1000, description="what it means if the price gets there")
    side: Side | None = Field(default=None, description="the trade you would take if it fires")
    stop_px: Price | None = None
    target_px: Price | None = None
    risk_usd: Usd | None = None


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


def _leg(a: LegArgs, direction: LegDirection) -> WatcherLeg:
    setup = ProposedSetup(side=a.side, stop=a.stop_px, target=a.target_px, risk_usd=a.risk_usd)
    return WatcherLeg(level=a.level, direction=direction, thesis=a.thesis, setup=setup)


async def set_watcher_pair(a: WatcherArgs, ctx: ToolContext) -> ToolResult:
    svc = ctx.services
    now = svc.clock()
    if svc.market is not None:
        mids = await svc.market.all_mids()
        mid = mids.get(a.market)
        if mid is None:
            return ToolResult.error(f"unknown market {a.market!r}")
        problems = []
        if a.upper is not None and a.upper.level <= mid:
            problems.append(f"upper.level {a.upper.level} must be above the current mid {mid}")
        if a.lower is not None and a.lower.level >= mid:
            problems.append(f"lower.level {a.lower.level} must be below the current mid {mid}")
        if problems:
            return ToolResult.error("invalid watcher:\n" + "\n".join(f"- {p}" for p in problems))
    pair = WatcherPair(market=a.market, upper=_leg(a.upper, LegDirection.ABOVE) if a.upper else None,
                       lower=_leg(a.lower, LegDirection.BELOW) if a.lower else None,
                       expires_at=now + parse_duration(a.expires_in) if a.expires_in else None,
                       created_at=now, created_by=f"agent:{ctx.thread_id}")
    return await ctx.commit(ToolResult.ok({"ok": True, "watcher_id": pair.id, "market": pair.market}),
                            lambda pipe: svc.store.watchers.queue_put(pipe, [pair]))


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
    fire_at = a.at if a.at is not None else now + parse_duration(a.in_ or "0s")
    if fire_at <= now:
        return ToolResult.error(f"the time {fire_at.isoformat()} is in the past (now {now.isoformat()})")
    alert = TimeAlert(fire_at=fire_at, every=parse_duration(a.every) if a.every else None, prompt=a.prompt,
                      created_at=now)
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
    now = ctx.services.clock()
    note = Note(text=a.text.strip(), tags=a.tags, created_at=now, updated_at=now)
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
    Tool("cancel_watcher", "Cancel a watcher pair by id.", IdArgs, cancel_watcher, "memory"),
    Tool("set_time_alert", "Schedule a time alert (at a time, or in a duration; optionally repeating) with a prompt "
         "for your future self.", TimeAlertArgs, set_time_alert, "memory"),
    Tool("cancel_time_alert", "Cancel a time alert by id.", IdArgs, cancel_time_alert, "memory"),
    Tool("add_note", "Add a persistent note (it is in every prompt).", NoteArgs, add_note, "memory"),
    Tool("remove_note", "Remove a persistent note by id.", IdArgs, remove_note, "memory"),
)
