"""One model per trader action, each with its text grammar and `resolve(account)`.

`Model.parse(...)` reads the text forms (the shell's argv, a slash line, the command channel's JSON
values) through `actions.grammar`; a model built directly (the LLM tools) is validated by its
annotated fields. `channel_args()` is the JSON the command channel carries (`from_channel` reads it
back), and `resolve(account)` turns the action into what runs: an order intent for the gateway, or
a change to the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from revagent.actions import grammar as g
from revagent.actions.grammar import Conviction, Fraction, Leverage, Market, PriceSpec, Side, Text, Usd
from revagent.errors import NotFoundError, UsageError
from revagent.risk import (
    AccountView,
    AdjustMargin,
    CancelOrder,
    ClosePosition,
    ModifyStop,
    OpenTrade,
    OrderIntent,
    Origin,
    RiskState,
    SetLeverage,
    SetTarget,
    halt,
    resume,
)
from revagent.risk.account import MarginMode

Mode = Literal["autonomous", "copilot", "readonly"]
MODES: tuple[Mode, ...] = ("autonomous", "copilot", "readonly")
Scope = Literal["chat", "alert"]


class TraderAction(BaseModel):
    """Base of every action. `command` is the command channel's name for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: ClassVar[str] = ""

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Self:
        """The action the command channel's JSON arguments describe (UsageError when they are wrong)."""
        raise NotImplementedError

    def channel_args(self) -> dict[str, Any]:
        """The command channel's JSON arguments for this action (no empty values)."""
        raise NotImplementedError

    def resolve(self, account: AccountView | None) -> OrderIntent | StoreChange | Flatten:
        """What runs: an order intent for the gateway, or a change to the store (`Flatten`: the
        gateway's sweep). Against `account` a distance from the mark is resolved, the market must be
        traded there and a stop or target needs an open position; without one (the LLM tools, whose
        prices are absolute) only absolute prices resolve."""
        raise NotImplementedError


class OrderAction(TraderAction):
    """An action the gateway runs as one order intent."""

    def resolve(self, account: AccountView | None) -> OrderIntent:
        raise NotImplementedError


def _traded(market: str, account: AccountView | None) -> Decimal | None:
    """The market's mark price, after checking the venue trades it (None without an account)."""
    if account is None:
        return None
    rules = account.markets.get(market)
    if rules is None:
        raise UsageError(f"MARKET: {market!r} is not traded on this venue "
                         f"(known: {', '.join(sorted(account.markets)[:12])}...)")
    return rules.mark_px


def _position_side(market: str, account: AccountView) -> Side:
    position = account.position(market)
    if position is None:
        raise NotFoundError(f"no open {market} position")
    return "long" if position.size > 0 else "short"


def _set(doc: dict[str, Any], **values: Any) -> dict[str, Any]:
    doc.update({k: v for k, v in values.items() if v is not None})
    return doc


# ------------------------------------------------------------------------------ order actions
class Open(OrderAction):
    """Open (or add to) a position: the size is derived from `risk_usd` and the stop."""

    command: ClassVar[str] = "trade.open"
    market: Market
    side: Side
    stop_px: PriceSpec
    risk_usd: Usd
    entry_px: PriceSpec | None = None
    target_px: PriceSpec | None = None
    take_profit_px: PriceSpec | None = None
    leverage: Leverage | None = None
    margin_mode: MarginMode | None = None
    conviction: Conviction | None = None
    thesis: Text = ""
    invalidation: Text = ""
    entry_expires_in: g.EntryTtl | None = None
    origin: Origin = "human"

    @model_validator(mode="after")
    def _expiry(self) -> Open:
        if self.entry_expires_in is not None and self.entry_px is None:
            raise ValueError("--expires is only for a limit entry (--entry)")
        return self

    @classmethod
    def parse(cls, *, market: Any, side: Any, stop: Any, risk: Any, entry: Any = None, target: Any = None,
              take_profit: Any = None, leverage: Any = None, isolated: Any = False, conviction: Any = None,
              thesis: Any = None, invalidation: Any = None, expires: Any = None, origin: Origin = "human") -> Open:
        g.required(stop, "--stop", ": every trade declares its stop")
        if expires not in (None, "") and entry in (None, ""):
            raise UsageError("--expires is only for a limit entry (--entry)")
        return cls(market=g.market(market), side=g.side(side), stop_px=g.price(stop, "--stop"),
                   risk_usd=g.usd(g.required(risk, "--risk"), "--risk"), entry_px=g.price(entry, "--entry"),
                   target_px=g.price(target, "--target"), take_profit_px=g.price(take_profit, "--take-profit"),
                   leverage=g.leverage(leverage), margin_mode="isolated" if isolated else None,
                   conviction=g.conviction(conviction), thesis=g.text(thesis, "--thesis"),
                   invalidation=g.text(invalidation, "--invalidation"),
                   entry_expires_in=None if expires in (None, "") else g.entry_ttl(expires), origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Open:
        origin = str(args.get("origin") or "human")
        if origin not in ("agent", "human", "system"):
            raise UsageError(f"origin: agent, human or system (got {origin[:40]!r})")
        return cls.parse(market=args.get("market"), side=args.get("side"), stop=args.get("stop"),
                         risk=args.get("risk"), entry=args.get("entry"), target=args.get("target"),
                         take_profit=args.get("take_profit"), leverage=args.get("leverage"),
                         isolated=bool(args.get("isolated")), conviction=args.get("conviction"),
                         thesis=args.get("thesis"), invalidation=args.get("invalidation"),
                         expires=args.get("expires"), origin=origin)  # type: ignore[arg-type]

    def channel_args(self) -> dict[str, Any]:
        doc = _set({"market": self.market, "side": self.side, "stop": g.price_text(self.stop_px),
                    "risk": str(self.risk_usd), "origin": self.origin},
                   entry=g.price_text(self.entry_px), target=g.price_text(self.target_px),
                   take_profit=g.price_text(self.take_profit_px),
                   leverage=None if self.leverage is None else str(self.leverage), conviction=self.conviction,
                   thesis=self.thesis or None, invalidation=self.invalidation or None,
                   expires=None if self.entry_expires_in is None else f"{int(self.entry_expires_in.total_seconds())}s")
        if self.margin_mode == "isolated":
            doc["isolated"] = True
        return doc

    def resolve(self, account: AccountView | None) -> OpenTrade:
        mark = _traded(self.market, account)

        def px(spec: PriceSpec | None, arg: str, role: g.Role) -> Decimal | None:
            return g.resolve_price(spec, arg, mark=mark, side=self.side, role=role)

        stop = px(self.stop_px, "--stop", "stop")
        assert stop is not None
        return OpenTrade(market=self.market, side=self.side, origin=self.origin, stop_px=stop,
                         risk_usd=self.risk_usd, entry_px=px(self.entry_px, "--entry", "entry"),
                         target_px=px(self.target_px, "--target", "target"),
                         take_profit_px=px(self.take_profit_px, "--take-profit", "target"),
                         leverage=self.leverage, margin_mode=self.margin_mode, conviction=self.conviction,
                         thesis=self.thesis, invalidation=self.invalidation, entry_ttl=self.entry_expires_in)


class Close(OrderAction):
    """Close `fraction` of a position (1 = all), reduce-only, at market."""

    command: ClassVar[str] = "trade.close"
    market: Market
    fraction: Fraction = Decimal(1)
    origin: Origin = "human"

    @classmethod
    def parse(cls, *, market: Any, fraction: Any = None, origin: Origin = "human") -> Close:
        return cls(market=g.market(market), fraction=g.fraction(fraction), origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Close:
        return cls.parse(market=args.get("market"), fraction=args.get("fraction"))

    def channel_args(self) -> dict[str, Any]:
        return {"market": self.market, "fraction": str(self.fraction)}

    def resolve(self, account: AccountView | None) -> ClosePosition:
        _traded(self.market, account)
        return ClosePosition(market=self.market, origin=self.origin, fraction=self.fraction)


class Stop(OrderAction):
    """Move a position's protective stop (to a price, or a distance from the mark)."""

    command: ClassVar[str] = "trade.stop"
    market: Market
    stop_px: PriceSpec
    origin: Origin = "human"

    @classmethod
    def parse(cls, *, market: Any, price: Any, origin: Origin = "human") -> Stop:
        return cls(market=g.market(market), stop_px=g.price(g.required(price, "PX"), "PX"), origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Stop:
        return cls.parse(market=args.get("market"), price=args.get("price"))

    def channel_args(self) -> dict[str, Any]:
        return {"market": self.market, "price": g.price_text(self.stop_px)}

    def resolve(self, account: AccountView | None) -> ModifyStop:
        mark = _traded(self.market, account)
        if account is None:
            stop = g.resolve_price(self.stop_px, "PX", mark=None, side="long", role="stop")
        else:
            stop = g.resolve_price(self.stop_px, "PX", mark=mark, side=_position_side(self.market, account),
                                   role="stop")
        assert stop is not None
        return ModifyStop(market=self.market, origin=self.origin, stop_px=stop)


class Target(OrderAction):
    """Set a position's planned target and/or its take-profit order (at least one)."""

    command: ClassVar[str] = "trade.target"
    market: Market
    target_px: PriceSpec | None = None
    take_profit_px: PriceSpec | None = None
    origin: Origin = "human"

    @model_validator(mode="after")
    def _some(self) -> Target:
        if self.target_px is None and self.take_profit_px is None:
            raise ValueError("give a target, a take-profit, or both")
        return self

    @classmethod
    def parse(cls, *, market: Any, price: Any = None, take_profit: Any = None, origin: Origin = "human") -> Target:
        target, tp = g.price(price, "PX"), g.price(take_profit, "--take-profit")
        if target is None and tp is None:
            raise UsageError("give a target, a take-profit, or both")
        return cls(market=g.market(market), target_px=target, take_profit_px=tp, origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Target:
        return cls.parse(market=args.get("market"), price=args.get("target"), take_profit=args.get("take_profit"))

    def channel_args(self) -> dict[str, Any]:
        return _set({"market": self.market}, target=g.price_text(self.target_px),
                    take_profit=g.price_text(self.take_profit_px))

    def resolve(self, account: AccountView | None) -> SetTarget:
        mark = _traded(self.market, account)
        side: Side = "long" if account is None else _position_side(self.market, account)
        return SetTarget(market=self.market, origin=self.origin,
                         target_px=g.resolve_price(self.target_px, "PX", mark=mark, side=side, role="target"),
                         take_profit_px=g.resolve_price(self.take_profit_px, "--take-profit", mark=mark, side=side,
                                                        role="target"))


class Cancel(OrderAction):
    """Cancel a resting order by exchange id (its market found in the account) or client id."""

    command: ClassVar[str] = "trade.cancel"
    oid: int | None = None
    cloid: str | None = None
    market: Market | None = None
    origin: Origin = "human"

    @model_validator(mode="after")
    def _one(self) -> Cancel:
        if self.oid is None and self.cloid is None:
            raise ValueError("give oid or cloid")
        return self

    @classmethod
    def parse(cls, *, oid: Any, origin: Origin = "human") -> Cancel:
        return cls(oid=g.order_id(oid), origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Cancel:
        return cls.parse(oid=args.get("oid"))

    def channel_args(self) -> dict[str, Any]:
        return _set({}, oid=self.oid, cloid=self.cloid, market=self.market)

    def resolve(self, account: AccountView | None) -> CancelOrder:
        market = self.market
        if market is None:
            if account is None:
                raise UsageError("MARKET: needed to cancel without the account")
            found = [e.market for e in account.entries if e.oid == self.oid] + [
                t.market for t in account.triggers if t.oid == self.oid]
            if not found:
                raise NotFoundError(f"no open order with oid {self.oid}")
            market = found[0]
        return CancelOrder(market=market, origin=self.origin, oid=self.oid, cloid=self.cloid)


class ChangeLeverage(OrderAction):
    """Change the account's leverage (and optionally its margin mode) on a market."""

    command: ClassVar[str] = "trade.leverage"
    market: Market
    leverage: Leverage
    margin_mode: MarginMode | None = None
    origin: Origin = "human"

    @classmethod
    def parse(cls, *, market: Any, leverage: Any, isolated: Any = None, origin: Origin = "human") -> ChangeLeverage:
        """`isolated`: True for isolated, False for cross, None to keep the market's margin mode."""
        return cls(market=g.market(market), leverage=g.leverage(g.required(leverage, "LEVERAGE"), "LEVERAGE"),
                   margin_mode=None if isolated is None else "isolated" if isolated else "cross", origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> ChangeLeverage:
        mode = args.get("margin_mode")
        if mode not in (None, "cross", "isolated"):
            raise UsageError(f"margin_mode: cross or isolated (got {str(mode)[:40]!r})")
        return cls.parse(market=args.get("market"), leverage=args.get("leverage"),
                         isolated=None if mode is None else mode == "isolated")

    def channel_args(self) -> dict[str, Any]:
        return _set({"market": self.market, "leverage": str(self.leverage)}, margin_mode=self.margin_mode)

    def resolve(self, account: AccountView | None) -> SetLeverage:
        _traded(self.market, account)
        return SetLeverage(market=self.market, origin=self.origin, leverage=self.leverage,
                           margin_mode=self.margin_mode)


class Margin(OrderAction):
    """Move USD of margin into (`add`) or out of (`remove`) an isolated position."""

    command: ClassVar[str] = "trade.margin"
    market: Market
    op: Literal["add", "remove"]
    usd: Usd
    origin: Origin = "human"

    @classmethod
    def parse(cls, *, market: Any, add: Any = None, remove: Any = None, origin: Origin = "human") -> Margin:
        given = [(op, v) for op, v in (("add", add), ("remove", remove)) if v is not None and v != ""]
        if len(given) != 1:
            raise UsageError("give exactly one of --add USD or --remove USD")
        op, value = given[0]
        return cls(market=g.market(market), op=op, usd=g.usd(value, f"--{op}"), origin=origin)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Margin:
        return cls.parse(market=args.get("market"), add=args.get("add"), remove=args.get("remove"))

    def channel_args(self) -> dict[str, Any]:
        return {"market": self.market, self.op: str(self.usd)}

    def resolve(self, account: AccountView | None) -> AdjustMargin:
        _traded(self.market, account)
        return AdjustMargin(market=self.market, origin=self.origin, op=self.op, usd=self.usd)


class Flatten(TraderAction):
    """Close every position and cancel every entry order (the gateway's sweep: many intents)."""

    command: ClassVar[str] = "trade.flatten"

    @classmethod
    def parse(cls) -> Flatten:
        return cls()

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Flatten:
        return cls()

    def channel_args(self) -> dict[str, Any]:
        return {}

    def resolve(self, account: AccountView | None) -> Flatten:
        return self


# ------------------------------------------------------------------------------ store changes
class RiskStateChange(BaseModel):
    """A change of the risk state (the kill switch): `apply(state, now)` is the new state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["halt", "resume"]
    by: str

    def apply(self, state: RiskState, now: datetime) -> RiskState:
        return halt(state, now, self.by) if self.op == "halt" else resume(state, now)


class ModeChange(BaseModel):
    """A runtime approval mode for one thread type (the `mode.chat` / `mode.alert` override)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: Scope
    mode: Mode

    @property
    def key(self) -> str:
        return f"mode.{self.scope}"


class RecordChange(BaseModel):
    """A record to write to the store (a watcher pair, a time alert, a note: `actions.memory`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


StoreChange = RiskStateChange | ModeChange | RecordChange


class Halt(TraderAction):
    """Engage the kill switch: only risk-reducing and protective actions pass until a human resumes."""

    command: ClassVar[str] = "risk.halt"
    by: str = "human"

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Halt:
        return cls(by=str(args.get("by") or "human")[:300])

    def channel_args(self) -> dict[str, Any]:
        return {"by": self.by}

    def resolve(self, account: AccountView | None) -> RiskStateChange:
        return RiskStateChange(op="halt", by=self.by)


class Resume(TraderAction):
    """Release the kill switch: a human's decision only."""

    command: ClassVar[str] = "risk.resume"
    by: Literal["human"] = "human"

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> Resume:
        if args.get("by") != "human":
            raise UsageError("only a human can resume trading after a halt")
        return cls()

    def channel_args(self) -> dict[str, Any]:
        return {"by": self.by}

    def resolve(self, account: AccountView | None) -> RiskStateChange:
        return RiskStateChange(op="resume", by=self.by)


class SetMode(TraderAction):
    """Switch chat (or alert) threads to an approval mode."""

    command: ClassVar[str] = "mode.set"
    mode: Mode
    scope: Scope = "chat"

    @classmethod
    def parse(cls, *, mode: Any, scope: Any = "chat") -> SetMode:
        scope_text = str(scope or "chat")
        if scope_text not in ("chat", "alert"):
            raise UsageError(f"scope: chat or alert (got {scope_text[:40]!r})")
        mode_text = str(mode or "")
        if mode_text not in MODES:
            raise UsageError(f"MODE: one of {', '.join(MODES)} (got {mode_text[:40]!r})")
        return cls(mode=mode_text, scope=scope_text)

    @classmethod
    def from_channel(cls, args: Mapping[str, Any]) -> SetMode:
        return cls.parse(mode=args.get("mode"), scope=args.get("scope"))

    def channel_args(self) -> dict[str, Any]:
        return {"scope": self.scope, "mode": self.mode}

    def resolve(self, account: AccountView | None) -> ModeChange:
        return ModeChange(scope=self.scope, mode=self.mode)


ORDER_ACTIONS: dict[str, type[OrderAction]] = {a.command: a for a in (Open, Close, Stop, Target, Cancel,
                                                                      ChangeLeverage, Margin)}
"""The actions that resolve to one order intent, by their command channel name."""
BY_COMMAND: dict[str, type[TraderAction]] = {**ORDER_ACTIONS, **{a.command: a for a in (Flatten, Halt, Resume,
                                                                                        SetMode)}}
"""Every action by its command channel name."""
