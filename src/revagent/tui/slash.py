"""Slash commands typed in the input box, parsed into typed commands (no Textual, no I/O).

`parse_slash("/long ETH --stop 2% --risk 25")` returns an `OpenTradeCmd`; any mistake raises
`UsageError` with a one-line message naming the argument, and changes nothing. `/long` and `/short`
take the arguments of `revagent trade open` (prices as a number or a distance in percent from the
mark, `2%`): the trading commands are read by the action models of `revagent.actions` (one grammar
for every door), and `action()` is that model. `complete(text)` returns the completions the input
box offers for a partial command.

Every command knows whether it is `destructive` (the UI asks before running it) and how it maps
onto a session command (`session_command()` -> name and JSON arguments), so the TUI and the CLI
reach the same handlers.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from revagent.actions import (
    MODES,
    AddAlert,
    AddNote,
    Cancel,
    ChangeLeverage,
    Close,
    Flatten,
    Halt,
    Margin,
    Mode,
    Open,
    Resume,
    SetMode,
    Stop,
    Target,
    TraderAction,
    Watch,
)
from revagent.actions import grammar as g
from revagent.actions.slash_table import SPECS as SPECS  # the table lives with the actions
from revagent.actions.slash_table import SlashSpec as _Spec
from revagent.errors import UsageError

__all__ = ["MODES", "Mode"]


@dataclass(frozen=True)
class SlashCommand:
    """Base of every parsed command. `name` is the slash word without the slash."""

    name: ClassVar[str] = ""
    destructive: ClassVar[bool] = False

    def as_action(self) -> TraderAction:
        """The trader action this command is (local-only and store commands raise)."""
        raise NotImplementedError(f"/{self.name} is not a trader action")

    def session_command(self) -> tuple[str, dict[str, Any]]:
        """The session command this maps to (name, JSON args); local-only commands raise."""
        action = self.as_action()
        return action.command, action.channel_args()

    def describe(self) -> str:
        """One line for a confirmation dialog."""
        return f"/{self.name}"


@dataclass(frozen=True)
class OpenTradeCmd(SlashCommand):
    """`/long` or `/short MARKET --stop PX --risk USD [--entry PX] [--target PX] [--take-profit PX]
    [--leverage N] [--isolated] [--conviction N] [--thesis TEXT] [--invalidation TEXT]`: the arguments of
    `revagent trade open`."""

    name: ClassVar[str] = "open"
    destructive: ClassVar[bool] = True
    side: Literal["long", "short"]
    market: str
    stop: str
    risk_usd: Decimal
    entry: str | None = None
    target: str | None = None
    take_profit: str | None = None
    leverage: Decimal | None = None
    isolated: bool = False
    conviction: int | None = None
    thesis: str = ""
    invalidation: str = ""
    expires: str | None = None

    def as_action(self) -> Open:
        return Open.parse(market=self.market, side=self.side, stop=self.stop, risk=self.risk_usd, entry=self.entry,
                          target=self.target, take_profit=self.take_profit, leverage=self.leverage,
                          isolated=self.isolated, conviction=self.conviction, thesis=self.thesis,
                          invalidation=self.invalidation, expires=self.expires)

    @staticmethod
    def of(action: Open) -> OpenTradeCmd:
        return OpenTradeCmd(side=action.side, market=action.market, stop=str(action.stop_px),
                            risk_usd=action.risk_usd, entry=g.price_text(action.entry_px),
                            target=g.price_text(action.target_px), take_profit=g.price_text(action.take_profit_px),
                            leverage=action.leverage, isolated=action.margin_mode == "isolated",
                            conviction=action.conviction, thesis=action.thesis, invalidation=action.invalidation,
                            expires=None if action.entry_expires_in is None
                            else f"{int(action.entry_expires_in.total_seconds())}s")

    def trade_args(self) -> dict[str, Any]:
        """The JSON arguments of `trade.open` / `trade.preview`."""
        return self.as_action().channel_args()

    def describe(self) -> str:
        extra = "".join(f" {k} {v}" for k, v in (("entry", self.entry), ("target", self.target)) if v)
        return f"{self.side.upper()} {self.market}  stop {self.stop}  risk ${self.risk_usd}{extra}"


@dataclass(frozen=True)
class CloseCmd(SlashCommand):
    name: ClassVar[str] = "close"
    destructive: ClassVar[bool] = True
    market: str
    fraction: Decimal = Decimal(1)

    def as_action(self) -> Close:
        return Close(market=self.market, fraction=self.fraction)

    def describe(self) -> str:
        part = "all" if self.fraction == 1 else f"{self.fraction * 100:g}%"
        return f"close {part} of the {self.market} position"


@dataclass(frozen=True)
class FlattenCmd(SlashCommand):
    name: ClassVar[str] = "flatten"
    destructive: ClassVar[bool] = True

    def as_action(self) -> Flatten:
        return Flatten()

    def describe(self) -> str:
        return "close every position and cancel every entry order"


@dataclass(frozen=True)
class StopCmd(SlashCommand):
    name: ClassVar[str] = "stop"
    destructive: ClassVar[bool] = True
    market: str
    price: str

    def as_action(self) -> Stop:
        return Stop.parse(market=self.market, price=self.price)

    def describe(self) -> str:
        return f"move the {self.market} stop to {self.price}"


@dataclass(frozen=True)
class LeverageCmd(SlashCommand):
    name: ClassVar[str] = "leverage"
    destructive: ClassVar[bool] = True
    market: str
    leverage: Decimal
    isolated: bool | None = None

    def as_action(self) -> ChangeLeverage:
        return ChangeLeverage.parse(market=self.market, leverage=self.leverage, isolated=self.isolated)

    def describe(self) -> str:
        mode = "" if self.isolated is None else " isolated" if self.isolated else " cross"
        return f"set {self.market} leverage to {self.leverage}x{mode}"


@dataclass(frozen=True)
class MarginCmd(SlashCommand):
    name: ClassVar[str] = "margin"
    destructive: ClassVar[bool] = True
    market: str
    op: Literal["add", "remove"]
    usd: Decimal

    def as_action(self) -> Margin:
        return Margin(market=self.market, op=self.op, usd=self.usd)

    def describe(self) -> str:
        return f"{self.op} ${self.usd} of margin {'to' if self.op == 'add' else 'from'} the {self.market} position"


@dataclass(frozen=True)
class TargetCmd(SlashCommand):
    name: ClassVar[str] = "target"
    destructive: ClassVar[bool] = True
    market: str
    target: str | None
    take_profit: str | None = None

    def as_action(self) -> Target:
        return Target.parse(market=self.market, price=self.target, take_profit=self.take_profit)

    def describe(self) -> str:
        parts = [f"target {self.target}" if self.target else "", f"take-profit {self.take_profit}"
                 if self.take_profit else ""]
        return f"set the {self.market} " + " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class CancelCmd(SlashCommand):
    name: ClassVar[str] = "cancel"
    destructive: ClassVar[bool] = True
    oid: int

    def as_action(self) -> Cancel:
        return Cancel(oid=self.oid)

    def describe(self) -> str:
        return f"cancel order {self.oid}"


@dataclass(frozen=True)
class WatchCmd(SlashCommand):
    """`/watch MARKET [--above L] [--below L] [--thesis TEXT] [--expires 24h]` (written to the store)."""

    name: ClassVar[str] = "watch"
    market: str
    above: Decimal | None = None
    below: Decimal | None = None
    thesis: str = ""
    expires: timedelta | None = None

    def as_action(self) -> Watch:
        """The thesis is both legs' (the shell's `watchers add` has one per leg)."""
        return Watch.parse(market=self.market, above=self.above, above_thesis=self.thesis if self.above else "",
                           below=self.below, below_thesis=self.thesis if self.below else "",
                           expires=None if self.expires is None else f"{int(self.expires.total_seconds())}s")


@dataclass(frozen=True)
class AlertCmd(SlashCommand):
    """`/alert (--at TIME | --in DURATION) [--every DURATION] PROMPT...` (written to the store)."""

    name: ClassVar[str] = "alert"
    prompt: str
    at: datetime | None = None
    after: timedelta | None = None
    every: timedelta | None = None

    def as_action(self) -> AddAlert:
        return AddAlert(prompt=self.prompt, at=self.at, after=self.after, every=self.every)


@dataclass(frozen=True)
class NoteCmd(SlashCommand):
    """`/note TEXT... [--tag T ...]` (written to the store)."""

    name: ClassVar[str] = "note"
    text: str
    tags: tuple[str, ...] = ()

    def as_action(self) -> AddNote:
        return AddNote(text=self.text, tags=self.tags)


@dataclass(frozen=True)
class RiskCmd(SlashCommand):
    """`/risk` (show), `/risk set KEY VALUE`, `/risk reset KEY`."""

    name: ClassVar[str] = "risk"
    action: Literal["show", "set", "reset"] = "show"
    key: str = ""
    value: str = ""

    @property
    def changes(self) -> bool:
        return self.action != "show"

    def session_command(self) -> tuple[str, dict[str, Any]]:
        if self.action == "show":
            return "risk.show", {}
        if self.action == "set":
            return "risk.set", {"key": self.key, "value": self.value}
        return "risk.reset", {"key": self.key}

    def describe(self) -> str:
        return {"show": "show risk", "set": f"set {self.key} = {self.value}",
                "reset": f"reset {self.key} to its configured value"}[self.action]


@dataclass(frozen=True)
class HaltCmd(SlashCommand):
    name: ClassVar[str] = "halt"
    destructive: ClassVar[bool] = True

    def as_action(self) -> Halt:
        return Halt()

    def describe(self) -> str:
        return "HALT trading (kill switch): no new risk until you /resume"


@dataclass(frozen=True)
class ResumeCmd(SlashCommand):
    name: ClassVar[str] = "resume"
    destructive: ClassVar[bool] = True

    def as_action(self) -> Resume:
        return Resume()

    def describe(self) -> str:
        return "resume trading after a halt"


@dataclass(frozen=True)
class ModeCmd(SlashCommand):
    """`/mode` (show) or `/mode autonomous|copilot|readonly [--alerts]` for chat (or alert) threads."""

    name: ClassVar[str] = "mode"
    mode: Mode | None = None
    alerts: bool = False

    def as_action(self) -> SetMode:
        if self.mode is None:
            raise NotImplementedError("/mode without a mode shows the modes (not an action)")
        return SetMode(mode=self.mode, scope="alert" if self.alerts else "chat")

    def session_command(self) -> tuple[str, dict[str, Any]]:
        if self.mode is None:
            return "mode.show", {"scope": "alert" if self.alerts else "chat"}
        return super().session_command()

    def describe(self) -> str:
        return f"switch {'alert' if self.alerts else 'chat'} threads to {self.mode}"


@dataclass(frozen=True)
class CostCmd(SlashCommand):
    """`/cost`: the model's usage and cost today and in the current thread (`thread_id`, set by the UI)."""

    name: ClassVar[str] = "cost"
    thread_id: str = ""


@dataclass(frozen=True)
class HelpCmd(SlashCommand):
    name: ClassVar[str] = "help"
    topic: str = ""


COMMAND_NAMES: tuple[str, ...] = tuple(SPECS)


def _split(spec: _Spec, name: str, words: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and len(word) > 2:
            key, eq, inline = word[2:].partition("=")
            if key not in spec.options:
                raise UsageError(f"/{name}: unknown option --{key} (usage: {spec.usage})")
            if key in options and key not in spec.repeatable:
                raise UsageError(f"/{name}: --{key} given twice")
            if spec.options[key]:
                if eq:
                    value = inline
                elif i + 1 < len(words):
                    i += 1
                    value = words[i]
                else:
                    raise UsageError(f"/{name}: --{key} needs a value")
                options.setdefault(key, []).append(value)
            else:
                if eq:
                    raise UsageError(f"/{name}: --{key} takes no value")
                options[key] = ["1"]
        else:
            positional.append(word)
        i += 1
    return positional, options


def _one(options: dict[str, list[str]], key: str) -> str | None:
    values = options.get(key)
    return values[0] if values else None


def _need(positional: list[str], count: int, name: str) -> None:
    if len(positional) != count:
        raise UsageError(f"/{name}: expected {count} argument(s), got {len(positional)} "
                         f"(usage: {SPECS[name].usage})")


def parse_slash(text: str) -> SlashCommand:
    """Parse one slash command line. Raises UsageError (one line, naming the argument)."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        raise UsageError("a slash command starts with /")
    try:
        words = shlex.split(stripped[1:])
    except ValueError as exc:
        raise UsageError(f"cannot read the command: {exc}") from None
    if not words:
        raise UsageError("type a command after / (try /help)")
    name = words[0].lower()
    spec = SPECS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, COMMAND_NAMES, n=1)
        hint = f" (did you mean /{close[0]}?)" if close else " (try /help)"
        raise UsageError(f"unknown command /{name}{hint}")
    pos, opts = _split(spec, name, words[1:])
    return _BUILDERS[name](name, pos, opts)


def _open(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 1, name)
    stop, risk = _one(opts, "stop"), _one(opts, "risk")
    if stop is None:
        raise UsageError(f"/{name}: --stop is required: every trade declares its stop")
    if risk is None:
        raise UsageError(f"/{name}: --risk USD is required")
    return OpenTradeCmd.of(Open.parse(
        market=pos[0], side="long" if name == "long" else "short", stop=stop, risk=risk, entry=_one(opts, "entry"),
        target=_one(opts, "target"), take_profit=_one(opts, "take-profit"), leverage=_one(opts, "leverage"),
        isolated="isolated" in opts, conviction=_one(opts, "conviction"), thesis=_one(opts, "thesis"),
        invalidation=_one(opts, "invalidation"), expires=_one(opts, "expires")))


def _close(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 1, name)
    action = Close.parse(market=pos[0], fraction=_one(opts, "fraction"))
    return CloseCmd(market=action.market, fraction=action.fraction)


def _flatten(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 0, name)
    return FlattenCmd()


def _stop(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 2, name)
    action = Stop.parse(market=pos[0], price=pos[1])
    return StopCmd(market=action.market, price=str(action.stop_px))


def _target(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    tp = _one(opts, "take-profit")
    if not (len(pos) == 1 and tp is not None):
        _need(pos, 2, name)
    action = Target.parse(market=pos[0], price=pos[1] if len(pos) > 1 else None, take_profit=tp)
    return TargetCmd(market=action.market, target=g.price_text(action.target_px),
                     take_profit=g.price_text(action.take_profit_px))


def _leverage(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 2, name)
    if "isolated" in opts and "cross" in opts:
        raise UsageError("/leverage: --isolated or --cross, not both")
    isolated = True if "isolated" in opts else False if "cross" in opts else None
    action = ChangeLeverage.parse(market=pos[0], leverage=pos[1], isolated=isolated)
    return LeverageCmd(market=action.market, leverage=action.leverage, isolated=isolated)


def _margin(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 1, name)
    action = Margin.parse(market=pos[0], add=_one(opts, "add"), remove=_one(opts, "remove"))
    return MarginCmd(market=action.market, op=action.op, usd=action.usd)


def _cancel(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 1, name)
    return CancelCmd(oid=Cancel.parse(oid=pos[0]).oid or 0)


def _watch(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    _need(pos, 1, name)
    above, below, thesis = _one(opts, "above"), _one(opts, "below"), _one(opts, "thesis") or ""
    action = Watch.parse(market=pos[0], above=above, above_thesis=thesis if above else "", below=below,
                         below_thesis=thesis if below else "", expires=_one(opts, "expires"))
    return WatchCmd(market=action.market, above=action.upper.level if action.upper else None,
                    below=action.lower.level if action.lower else None, thesis=thesis, expires=action.expires_in)


def _alert(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    action = AddAlert.parse(prompt=" ".join(pos), at=_one(opts, "at"), in_=_one(opts, "in"),
                            every=_one(opts, "every"))
    return AlertCmd(prompt=action.prompt, at=action.at, after=action.after, every=action.every)


def _note(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    action = AddNote.parse(text=" ".join(pos), tag=opts.get("tag", []))
    return NoteCmd(text=action.text, tags=action.tags)


def _risk(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    if not pos or pos == ["show"]:
        return RiskCmd()
    if pos[0] == "set":
        if len(pos) != 3:
            raise UsageError("/risk set KEY VALUE")
        return RiskCmd(action="set", key=pos[1], value=pos[2])
    if pos[0] == "reset":
        if len(pos) != 2:
            raise UsageError("/risk reset KEY")
        return RiskCmd(action="reset", key=pos[1])
    raise UsageError(f"/risk: unknown action {pos[0]!r} (usage: {SPECS['risk'].usage})")


def _bare(cls: type[SlashCommand]) -> Callable[[str, list[str], dict[str, list[str]]], SlashCommand]:
    def build(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
        _need(pos, 0, name)
        return cls()

    return build


def _mode(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    if not pos:
        return ModeCmd(alerts="alerts" in opts)
    if len(pos) != 1 or pos[0] not in MODES:
        raise UsageError(f"/mode: expected one of {', '.join(MODES)}")
    action = SetMode.parse(mode=pos[0], scope="alert" if "alerts" in opts else "chat")
    return ModeCmd(mode=action.mode, alerts="alerts" in opts)


def _help(name: str, pos: list[str], opts: dict[str, list[str]]) -> SlashCommand:
    return HelpCmd(topic=pos[0].lstrip("/").lower() if pos else "")


_Builder = Callable[[str, list[str], dict[str, list[str]]], SlashCommand]
_BUILDERS: dict[str, _Builder] = {
    "long": _open, "short": _open, "close": _close, "flatten": _flatten, "stop": _stop, "target": _target,
    "cancel": _cancel, "leverage": _leverage, "margin": _margin, "watch": _watch, "alert": _alert, "note": _note,
    "risk": _risk,
    "halt": _bare(HaltCmd), "resume": _bare(ResumeCmd), "mode": _mode, "cost": _bare(CostCmd), "help": _help,
}


def help_text(topic: str = "") -> str:
    """The usage of one command, or of all of them (Markdown)."""
    if topic:
        spec = SPECS.get(topic)
        if spec is None:
            raise UsageError(f"unknown command /{topic}")
        return f"`{spec.usage}`  {spec.summary}"
    return "\n".join(f"- `{s.usage}`  {s.summary}" for s in SPECS.values())


def complete(text: str) -> list[str]:
    """Completions for a partial line: command names after `/`, then that command's options.

    Returns whole lines (the input box replaces its value with the first one and cycles on).
    """
    if not text.startswith("/"):
        return []
    head, sep, rest = text[1:].partition(" ")
    if not sep:
        return [f"/{n} " for n in COMMAND_NAMES if n.startswith(head.lower())]
    spec = SPECS.get(head.lower())
    if spec is None:
        return []
    words = rest.split(" ")
    last = words[-1]
    if not last.startswith("-"):
        return []
    used = {w[2:] for w in words[:-1] if w.startswith("--")}
    prefix = text[: len(text) - len(last)]
    return [f"{prefix}--{opt} " for opt in spec.options
            if opt.startswith(last[2:]) and (opt not in used or opt in spec.repeatable)]
