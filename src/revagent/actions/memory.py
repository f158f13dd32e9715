"""The trader's memory actions: watch a market (a watcher pair), modify a watcher, a time alert, a
note. Like the order actions, one model each, built by every door; `resolve(account)` is a change to
the store whose `build(now)` (or `apply(pair, now)`) is the record written (the clock is the
writer's, so the same action resolves to the same change at every door).

Watcher legs carry the setup the agent would trade when the leg fires: side, entry, stop, target,
conviction and risk (`models.ProposedSetup`); a leg with an entry and a stop has its side from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from revagent.actions import grammar as g
from revagent.actions.grammar import Conviction, Market, Price, Side, Text, Usd
from revagent.actions.models import RecordChange, TraderAction, _traded
from revagent.errors import UsageError
from revagent.models import (
    LegDirection,
    Note,
    ProposedSetup,
    TimeAlert,
    WatcherLeg,
    WatcherPair,
)
from revagent.models import Side as SetupSide
from revagent.risk import AccountView

MAX_PROMPT = 4000
"""The longest note or time-alert prompt."""
Duration = Annotated[timedelta, Field(gt=timedelta(0))]


def _usage(exc: ValidationError) -> UsageError:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    return UsageError((f"{where}: " if where else "") + str(err["msg"]).removeprefix("Value error, "))


class _Memory(TraderAction):
    """Base of the memory actions: the command channel carries the model's own JSON."""

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Self:
        try:
            return cls.model_validate(dict(args))
        except ValidationError as exc:
            raise _usage(exc) from None

    def channel_args(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


# ------------------------------------------------------------------------------ watchers
class WatchLeg(BaseModel):
    """One leg of a watcher pair: the level, why it matters, and the setup to trade if it fires."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Price
    thesis: Text = ""
    side: Side | None = None
    entry: Price | None = None
    stop: Price | None = None
    target: Price | None = None
    conviction: Conviction | None = None
    risk_usd: Usd | None = None

    @model_validator(mode="after")
    def _setup(self) -> WatchLeg:
        if self.entry is not None and self.stop is not None:
            if self.entry == self.stop:
                raise ValueError(f"the stop cannot equal the entry ({self.entry})")
            side: Side = "long" if self.stop < self.entry else "short"
            if self.side is not None and self.side != side:
                raise ValueError(f"a stop {'under' if side == 'long' else 'over'} the entry is a {side}, "
                                 f"not a {self.side}")
            if self.target is not None and (self.target > self.entry) != (side == "long"):
                raise ValueError(f"the target {self.target} is on the wrong side of the entry {self.entry} "
                                 f"for a {side}")
            if self.side is None:
                object.__setattr__(self, "side", side)
        return self

    @classmethod
    def parse(cls, prefix: str, *, level: Any, thesis: Any = "", entry: Any = None, stop: Any = None,
              target: Any = None, conviction: Any = None, risk: Any = None) -> WatchLeg | None:
        """The shell's `--above ... --above-stop ...` (None when the leg's level is not given)."""
        opt = f"--{prefix}"
        lvl = g.positive_decimal(level, opt)
        if lvl is None:
            if any(x is not None for x in (entry, stop, target, risk, conviction)) or thesis:
                raise UsageError(f"{opt}-* options need {opt} LEVEL")
            return None
        try:
            return cls(level=lvl, thesis=g.text(thesis, f"{opt}-thesis"),
                       entry=g.positive_decimal(entry, f"{opt}-entry"), stop=g.positive_decimal(stop, f"{opt}-stop"),
                       target=g.positive_decimal(target, f"{opt}-target"),
                       conviction=g.conviction(conviction, f"{opt}-conviction"),
                       risk_usd=g.usd(risk, f"{opt}-risk"))
        except ValidationError as exc:
            raise UsageError(f"{opt}: " + str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None

    def leg(self, direction: LegDirection, generation: int = 1) -> WatcherLeg:
        setup = ProposedSetup(side=None if self.side is None else SetupSide(self.side), entry=self.entry,
                              stop=self.stop, target=self.target, conviction=self.conviction,
                              risk_usd=self.risk_usd)
        return WatcherLeg(level=self.level, direction=direction, thesis=self.thesis, setup=setup,
                          generation=generation)


def _ordered(upper: WatchLeg | None, lower: WatchLeg | None) -> None:
    if upper is not None and lower is not None and lower.level >= upper.level:
        raise ValueError(f"the lower level ({lower.level}) must be under the upper level ({upper.level})")


class Watch(_Memory):
    """Watch a market: an upper and/or a lower level, each with its thesis and setup."""

    command: ClassVar[str] = "watch.add"
    market: Market
    upper: WatchLeg | None = None
    lower: WatchLeg | None = None
    expires_in: Duration | None = None
    created_by: str = "human"

    @model_validator(mode="after")
    def _legs(self) -> Watch:
        if self.upper is None and self.lower is None:
            raise ValueError("give an upper leg (--above), a lower leg (--below), or both")
        _ordered(self.upper, self.lower)
        return self

    @classmethod
    def parse(cls, *, market: Any, above: Any = None, above_thesis: Any = "", above_entry: Any = None,
              above_stop: Any = None, above_target: Any = None, above_conviction: Any = None, above_risk: Any = None,
              below: Any = None, below_thesis: Any = "", below_entry: Any = None, below_stop: Any = None,
              below_target: Any = None, below_conviction: Any = None, below_risk: Any = None, expires: Any = None,
              created_by: str = "human") -> Watch:
        """The shell's options (`--above L --above-stop S ... --expires 24h`)."""
        mkt = g.market(market)
        upper = WatchLeg.parse("above", level=above, thesis=above_thesis, entry=above_entry, stop=above_stop,
                               target=above_target, conviction=above_conviction, risk=above_risk)
        lower = WatchLeg.parse("below", level=below, thesis=below_thesis, entry=below_entry, stop=below_stop,
                               target=below_target, conviction=below_conviction, risk=below_risk)
        if upper is None and lower is None:
            raise UsageError("give --above LEVEL, --below LEVEL, or both")
        try:
            return cls(market=mkt, upper=upper, lower=lower, created_by=created_by,
                       expires_in=None if expires in (None, "") else g.duration(str(expires), "--expires"))
        except ValidationError as exc:
            raise _usage(exc) from None

    def resolve(self, account: AccountView | None) -> NewWatcher:
        _traded(self.market, account)
        return NewWatcher(watch=self)


class NewWatcher(RecordChange):
    """A watcher pair to write: `build(now)` is the record."""

    watch: Watch

    def build(self, now: datetime) -> WatcherPair:
        w = self.watch
        return WatcherPair(market=w.market, upper=w.upper.leg(LegDirection.ABOVE) if w.upper else None,
                           lower=w.lower.leg(LegDirection.BELOW) if w.lower else None,
                           expires_at=now + w.expires_in if w.expires_in else None, created_at=now,
                           created_by=w.created_by)


class ModifyWatch(_Memory):
    """Change a watcher pair in place: a leg given replaces that leg (re-armed, its next generation),
    a leg not given stays as it is; `expires_in` moves the expiry. The pair keeps its id."""

    command: ClassVar[str] = "watch.modify"
    id: Annotated[str, Field(min_length=1, max_length=64)]
    upper: WatchLeg | None = None
    lower: WatchLeg | None = None
    expires_in: Duration | None = None

    @model_validator(mode="after")
    def _some(self) -> ModifyWatch:
        if self.upper is None and self.lower is None and self.expires_in is None:
            raise ValueError("give a new upper leg, a new lower leg, or a new expires_in")
        _ordered(self.upper, self.lower)
        return self

    def resolve(self, account: AccountView | None) -> WatcherEdit:
        return WatcherEdit(edit=self)


class WatcherEdit(RecordChange):
    """A change to a stored watcher pair: `apply(pair, now)` is the pair to write (UsageError when the
    pair is no longer active or the change leaves it invalid; nothing is written then)."""

    edit: ModifyWatch

    def apply(self, pair: WatcherPair, now: datetime) -> WatcherPair:
        e = self.edit
        if not pair.active:
            raise UsageError(f"watcher {pair.id} is no longer active (fired, cancelled or expired): set a new pair")
        update: dict[str, Any] = {}
        for name, new, direction in (("upper", e.upper, LegDirection.ABOVE), ("lower", e.lower, LegDirection.BELOW)):
            if new is not None:
                old: WatcherLeg | None = getattr(pair, name)
                update[name] = new.leg(direction, generation=old.generation + 1 if old is not None else 1)
        if e.expires_in is not None:
            update["expires_at"] = now + e.expires_in
        try:
            return WatcherPair.model_validate({**pair.model_dump(), **{k: v.model_dump() if isinstance(v, BaseModel)
                                                                       else v for k, v in update.items()}})
        except ValidationError as exc:
            raise _usage(exc) from None


# ------------------------------------------------------------------------------ time alerts, notes
class AddAlert(_Memory):
    """A time alert: at a time or after a duration, optionally repeating, with a prompt for the agent."""

    command: ClassVar[str] = "alert.add"
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT)]
    at: datetime | None = None
    after: Duration | None = None
    every: Annotated[timedelta, Field(ge=timedelta(minutes=1))] | None = None

    @model_validator(mode="after")
    def _when(self) -> AddAlert:
        if (self.at is None) == (self.after is None):
            raise ValueError("give exactly one of --at TIME or --in DURATION")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("the time must carry a timezone (use Z for UTC)")
        return self

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the prompt cannot be empty (what should the agent do then?)")
        return v.strip()

    @classmethod
    def parse(cls, *, prompt: Any, at: Any = None, in_: Any = None, every: Any = None) -> AddAlert:
        """The shell's and the slash command's `PROMPT --at TIME | --in 30m [--every 1h]`."""
        if (at in (None, "")) == (in_ in (None, "")):
            raise UsageError("give exactly one of --at TIME or --in DURATION")
        repeat = None if every in (None, "") else g.duration(str(every), "--every")
        if repeat is not None and repeat < timedelta(minutes=1):
            raise UsageError(f"--every: a repeating alert fires at most once a minute (got {every})")
        if not str(prompt or "").strip():
            raise UsageError("PROMPT cannot be empty (what should the agent do then?)")
        try:
            return cls(prompt=str(prompt), at=None if at in (None, "") else g.utc_time(str(at), "--at"),
                       after=None if in_ in (None, "") else g.duration(str(in_), "--in"), every=repeat)
        except ValidationError as exc:
            raise _usage(exc) from None

    def resolve(self, account: AccountView | None) -> NewTimeAlert:
        return NewTimeAlert(alert=self)


class NewTimeAlert(RecordChange):
    alert: AddAlert

    def build(self, now: datetime) -> TimeAlert:
        a = self.alert
        fire_at = a.at if a.at is not None else now + (a.after or timedelta(0))
        if fire_at <= now:
            raise UsageError(f"--at: {fire_at.isoformat(timespec='minutes')} is in the past "
                             f"(now {now.isoformat(timespec='minutes')})")
        return TimeAlert(fire_at=fire_at, every=a.every, prompt=a.prompt, created_at=now)


Tag = Annotated[str, Field(min_length=1, max_length=33)]


class AddNote(_Memory):
    """A persistent note (in every prompt), with tags."""

    command: ClassVar[str] = "note.add"
    text: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT)]
    tags: tuple[Tag, ...] = Field(default=(), max_length=10)

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the note cannot be empty")
        return v.strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(dict.fromkeys(t.strip().lstrip("#").lower() for t in v if t.strip()))
        for t in out:
            if not t or len(t) > 32 or not all(c.isalnum() or c in "-_" for c in t):
                raise ValueError(f"tag {t!r}: 1-32 letters, digits, '-' or '_'")
        return out

    @classmethod
    def parse(cls, *, text: Any, tag: Any = None) -> AddNote:
        """The shell's and the slash command's `TEXT [--tag T ...]`."""
        body = str(text or "").strip()
        if not body:
            raise UsageError("TEXT cannot be empty: a note needs text")
        if len(body) > MAX_PROMPT:
            raise UsageError(f"TEXT: a note is at most {MAX_PROMPT} characters (got {len(body)})")
        try:
            return cls(text=body, tags=tuple(tag or ()))
        except ValidationError as exc:
            raise _usage(exc) from None

    def resolve(self, account: AccountView | None) -> NewNote:
        return NewNote(note=self)


class NewNote(RecordChange):
    note: AddNote

    def build(self, now: datetime) -> Note:
        return Note(text=self.note.text, tags=list(self.note.tags), created_at=now, updated_at=now)


MemoryChange = NewWatcher | WatcherEdit | NewTimeAlert | NewNote
MEMORY_ACTIONS: dict[str, type[_Memory]] = {a.command: a for a in (Watch, ModifyWatch, AddAlert, AddNote)}
