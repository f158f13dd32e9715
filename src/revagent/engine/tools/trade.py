"""Trade tools: every order goes through the gateway (risk verdict, journal, idempotent ids).

Each call acts as `Action.tool(thread_id, tool_call_id)`: a retried or resumed call reuses its
client order ids and never places twice. Size is never chosen by the model: `open_trade` declares
`risk_usd` and a stop, and the risk engine derives the size. A refusal returns every reason to the
model (`code: message`, one per line) so it can correct the call.

A trade is named by `market` or by `trade_id` (the offline policy uses trade ids); either works.

The argument models are generated from the trader actions of `revagent.actions` (the models every
door builds: `engine.tools.derive.action_args`): each field that is an action field takes its type,
bounds and default from it, the door adding only its words, what the agent owes (a target,
conviction, thesis and invalidation on every trade), absolute prices and its own fields (a trade by
`trade_id`, a `reason`, the plan's `rationale`). Every call builds the action back (`derive.build`)
and resolves it: the model's prices are absolute (no distance from the mark), so they resolve
without an account. `ensure_stop` (the gateway's protection) and the `reason`-only tools
(`flatten_all`, `halt_trading`) have no action field to derive.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from revagent import actions
from revagent.actions.grammar import MAX_ENTRY_TTL, Market, Price
from revagent.engine.tools.base import Args, Tool, ToolContext, ToolResult
from revagent.engine.tools.derive import ActionArgs, From, action_args, build
from revagent.gateway import Action, GatewayResult
from revagent.models import parse_duration
from revagent.risk import OpenTrade, OrderIntent, Verdict


class TradeRefArgs(Args):
    """A trade by market or by trade id (at least one)."""

    market: Market | None = Field(default=None, description="market name, e.g. BTC")
    trade_id: str | None = Field(default=None, description="trade id (tr_...), instead of market")

    @model_validator(mode="after")
    def _one(self) -> TradeRefArgs:
        if self.market is None and self.trade_id is None:
            raise ValueError("give market or trade_id")
        return self


class _OpenTradeChecks(ActionArgs):
    """The entry's consistency checks (the fields come from `actions.Open`, see `OpenTradeArgs`)."""

    @model_validator(mode="after")
    def _entry(self) -> _OpenTradeChecks:
        entry_type, entry_px, expires_in = (self.arg(n) for n in ("entry_type", "entry_px", "expires_in"))
        if entry_type == "limit" and entry_px is None:
            raise ValueError("entry_type limit needs entry_px")
        if entry_type == "market" and entry_px is not None:
            raise ValueError("entry_px is only for entry_type limit")
        if expires_in is not None:
            if entry_type != "limit":
                raise ValueError("expires_in is only for entry_type limit")
            try:
                ttl = parse_duration(expires_in)
            except ValueError as exc:
                raise ValueError(f"expires_in: {exc}") from None
            if not timedelta(0) < ttl <= MAX_ENTRY_TTL:
                raise ValueError(f"expires_in: more than 0 and at most 30d (got {expires_in})")
        return self


class _TradeRefAction(TradeRefArgs, ActionArgs):
    """A trade tool on a trade named by market or trade id, its other fields from the action."""


MARKET = From(description="market name, e.g. BTC")
REASON = (str, Field(default="", max_length=1000))
WholeLeverage = Annotated[int, Field(ge=1, le=100)]
"""The exchange takes whole leverage (the action's `Leverage` is a decimal up to 1,000 for the risk
engine's intents), at most 100 for the model."""

OpenTradeArgs = action_args("OpenTradeArgs", actions.Open, {
    "market": MARKET,
    "side": From(),
    "entry_type": (Literal["market", "limit"], Field(default="market")),
    "entry_px": From(description="limit price (required for entry_type limit)"),
    "stop_px": From(description="protective stop price; the size is derived from risk_usd and this stop"),
    "target_px": From(required=True, description="the plan's target (drives the profit-target alert, not an order)"),
    "take_profit_px": From(description="optional real take-profit order price"),
    "leverage": From(type=WholeLeverage, description="leverage (default: the market's current)"),
    "margin_mode": From(description="default: the risk settings' margin mode"),
    "conviction": From(required=True, description="conviction 0-100"),
    "risk_usd": From(description="USD lost if the stop fills (the risk engine caps it)"),
    "thesis": From(required=True, description="why the trade should work; kept in the plan, shown in every alert "
                   "on it"),
    "invalidation": From(required=True, description="what would prove the thesis wrong (a level, a close, an "
                         "event)"),
    "rationale": (str, Field(default="", max_length=2000, description="anything else about the plan")),
    "expires_in": (str | None, Field(default=None, description="limit entries: cancel the entry if it still rests "
                                     "after this long, such as 4h (at most 30d); default: it rests until cancelled")),
}, base=_OpenTradeChecks)

ClosePositionArgs = action_args("ClosePositionArgs", actions.Close, {
    "fraction": From(), "reason": REASON}, base=_TradeRefAction)

ModifyStopArgs = action_args("ModifyStopArgs", actions.Stop, {
    "stop_px": From(), "reason": REASON}, base=_TradeRefAction)


class EnsureStopArgs(TradeRefArgs):
    stop_px: Price | None = Field(default=None, description="default: the plan's stop")


class _TargetChecks(_TradeRefAction):
    @model_validator(mode="after")
    def _some(self) -> _TargetChecks:
        if self.arg("target_px") is None and self.arg("take_profit_px") is None:
            raise ValueError("give target_px and/or take_profit_px")
        return self


SetTargetArgs = action_args("SetTargetArgs", actions.Target, {
    "target_px": From(),
    "take_profit_px": From(description="also place/move a real take-profit order"),
    "reason": REASON}, base=_TargetChecks)


class _CancelChecks(ActionArgs):
    @model_validator(mode="after")
    def _one(self) -> _CancelChecks:
        if self.arg("oid") is None and self.arg("cloid") is None:
            raise ValueError("give oid or cloid")
        return self


CancelOrderArgs = action_args("CancelOrderArgs", actions.Cancel, {
    "market": From(required=True),  # the tool names the market: no account lookup of the oid
    "oid": From(description="exchange order id"),
    "cloid": From(description="client order id")}, base=_CancelChecks)

SetLeverageArgs = action_args("SetLeverageArgs", actions.ChangeLeverage, {
    "market": MARKET,
    "leverage": From(type=WholeLeverage, description="leverage, a whole number (the risk settings cap it)"),
    "margin_mode": From(description="default: the open position's mode, else the risk settings' margin mode"),
}, base=ActionArgs)


class _MarginChecks(ActionArgs):
    @model_validator(mode="after")
    def _one(self) -> _MarginChecks:
        if (self.arg("add_usd") is None) == (self.arg("remove_usd") is None):
            raise ValueError("give exactly one of add_usd or remove_usd")
        return self


AdjustMarginArgs = action_args("AdjustMarginArgs", actions.Margin, {  # the action's (op, usd) as two fields
    "market": From(description="market name of an isolated position"),
    "add_usd": From("usd", required=False, description="USD of margin to add (moves liquidation away)"),
    "remove_usd": From("usd", required=False, description="USD of margin to remove (moves liquidation closer)"),
}, base=_MarginChecks)


class ReasonArgs(Args):
    reason: str = Field(min_length=1, max_length=1000)


# ------------------------------------------------------------------------------------ helpers


async def resolve_market(args: TradeRefArgs, ctx: ToolContext) -> tuple[str, str | None] | ToolResult:
    """(market, trade id) of the trade the arguments name, or an error result."""
    plans = ctx.services.plans
    if args.trade_id is not None:
        plan = await plans.get(args.trade_id)
        if plan is None:
            return ToolResult.error(f"unknown trade_id {args.trade_id!r}")
        if args.market is not None and args.market != plan.market:
            return ToolResult.error(f"trade {args.trade_id} is on {plan.market}, not {args.market}")
        return plan.market, plan.trade_id
    assert args.market is not None
    plan = await plans.open_for(args.market)
    return args.market, plan.trade_id if plan is not None else None


def action_of(ctx: ToolContext) -> Action:
    return Action.tool(ctx.thread_id, ctx.tool_call_id)


def verdict_summary(v: Verdict | None) -> dict[str, Any]:
    if v is None:
        return {}
    fields = ("side", "size", "price", "expected_entry_px", "worst_entry_px", "stop_px", "take_profit_px",
              "target_px", "leverage", "notional", "risk_usd", "risk_at_worst_usd", "est_fees_usd",
              "est_liquidation_px", "reward_risk", "margin_usd")
    doc: dict[str, Any] = {k: getattr(v, k) for k in fields if getattr(v, k) is not None}
    if v.warnings:
        doc["warnings"] = [str(w) for w in v.warnings]
    return doc


def gateway_result(result: GatewayResult, *, retry: bool = True) -> ToolResult:
    """A gateway result as a tool result: refusals list every reason; orders and trade id are linked.

    `duplicate` (the action's key already has orders) is a success only for a `retry` of the very
    call that sent them (`ToolContext.rerun`: its earlier run was cut short); otherwise another
    intent sent those orders under the same key, and this one did nothing: an error."""
    orders = tuple(o.cloid for o in result.orders)
    data = {"status": result.status, "kind": result.kind, "market": result.market, "trade_id": result.trade_id,
            "orders": [{"cloid": o.cloid, "role": o.role, "status": o.status, "oid": o.oid, "size": o.size,
                        "price": o.price, "trigger_px": o.trigger_px, "filled": o.filled_size, "avg_px": o.avg_px,
                        "error": o.error} for o in result.orders],
            "verdict": verdict_summary(result.verdict), "message": result.message}
    if result.status == "refused":
        lines = [f"REFUSED by the risk engine ({len(result.reasons)} reason(s)); nothing was sent:"]
        lines += [f"- {r.code.value}: {r.message}" for r in result.reasons]
        return ToolResult.error("\n".join(lines), data=data, trade_id=result.trade_id)
    if result.status == "rejected":
        return ToolResult.error(f"REJECTED by the exchange: {result.message}", data=data, orders=orders,
                                trade_id=result.trade_id)
    if result.status == "unknown":
        return ToolResult.error(f"OUTCOME UNKNOWN: {result.message}. Do not place it again; check the snapshot.",
                                data=data, orders=orders, trade_id=result.trade_id)
    if result.status == "duplicate":
        sent = ", ".join(f"{o.role} {o.cloid} ({o.status})" for o in result.orders)
        if not retry:
            return ToolResult.error(f"NOT EXECUTED: this call's action key already has orders of another intent "
                                    f"({sent}); nothing was sent for this {result.kind}. Check the snapshot before "
                                    "calling again.", data=data, trade_id=result.trade_id)
        rejected = [o for o in result.orders if o.status == "rejected"]
        if rejected:
            return ToolResult.error("REJECTED by the exchange (before a restart): "
                                    + "; ".join(f"{o.role}: {o.error}" for o in rejected),
                                    data=data, orders=orders, trade_id=result.trade_id)
        data["message"] = f"already sent by this call before a restart: {sent}"
    return ToolResult.ok({"ok": True, **data}, data=data, orders=orders, trade_id=result.trade_id)


async def submit(intent: OrderIntent, ctx: ToolContext, rationale: str = "") -> ToolResult:
    return gateway_result(await ctx.services.gateway.submit(intent, action_of(ctx), rationale=rationale),
                          retry=ctx.rerun)


# -------------------------------------------------------------------------------------- tools


def open_action(a: ActionArgs) -> actions.Open:
    expires_in = a.arg("expires_in")
    return build(a, actions.Open, origin="agent",
                 entry_expires_in=None if expires_in is None else parse_duration(expires_in))


def leverage_action(a: ActionArgs) -> actions.ChangeLeverage:
    return build(a, actions.ChangeLeverage, origin="agent")


def margin_action(a: ActionArgs) -> actions.Margin:
    return build(a, actions.Margin, origin="agent", op="add" if a.arg("add_usd") is not None else "remove")


def close_action(a: _TradeRefAction, market: str | None = None) -> actions.Close:
    return build(a, actions.Close, origin="agent", market=market or a.market)


def stop_action(a: _TradeRefAction, market: str | None = None) -> actions.Stop:
    return build(a, actions.Stop, origin="agent", market=market or a.market)


def target_action(a: _TradeRefAction, market: str | None = None) -> actions.Target:
    return build(a, actions.Target, origin="agent", market=market or a.market)


def cancel_action(a: ActionArgs) -> actions.Cancel:
    return build(a, actions.Cancel, origin="agent")


def halt_action(a: ReasonArgs) -> actions.Halt:
    return actions.Halt(by=f"agent ({a.reason[:200]})")


def flatten_action(a: ReasonArgs) -> actions.Flatten:
    return actions.Flatten()


ACTION_OF: dict[str, Callable[[Any], actions.TraderAction]] = {
    "open_trade": open_action, "close_position": close_action, "modify_stop": stop_action,
    "set_target": target_action, "cancel_order": cancel_action, "flatten_all": flatten_action,
    "halt_trading": halt_action, "set_leverage": leverage_action, "adjust_margin": margin_action,
}
"""The trader action each trade tool's arguments describe (the tool door of `revagent.actions`;
`ensure_stop` is the gateway's own idempotent protection, not a trader action)."""


def _open_intent(a: ActionArgs) -> OpenTrade:
    return open_action(a).resolve(None)


async def open_trade(a: ActionArgs, ctx: ToolContext) -> ToolResult:
    return await submit(_open_intent(a), ctx, rationale=str(a.arg("rationale")))


async def preview_open(a: ActionArgs, ctx: ToolContext) -> dict[str, Any]:
    v = await ctx.services.gateway.preview(_open_intent(a))
    return {"approved": v.approved, "reasons": [str(r) for r in v.reasons], **verdict_summary(v)}


async def close_position(a: _TradeRefAction, ctx: ToolContext) -> ToolResult:
    ref = await resolve_market(a, ctx)
    if isinstance(ref, ToolResult):
        return ref
    return await submit(close_action(a, ref[0]).resolve(None), ctx)


async def modify_stop(a: _TradeRefAction, ctx: ToolContext) -> ToolResult:
    ref = await resolve_market(a, ctx)
    if isinstance(ref, ToolResult):
        return ref
    return await submit(stop_action(a, ref[0]).resolve(None), ctx)


async def stop_tightens(a: _TradeRefAction, ctx: ToolContext) -> bool:
    """True when the new stop is closer to the price than the plan's stop (risk-reducing)."""
    ref = await resolve_market(a, ctx)
    if isinstance(ref, ToolResult):
        return False
    plan = await ctx.services.plans.open_for(ref[0])
    if plan is None or plan.stop_px is None:
        return False
    stop_px: Decimal = a.arg("stop_px")
    return stop_px > plan.stop_px if plan.side.value == "long" else stop_px < plan.stop_px


async def ensure_stop(a: EnsureStopArgs, ctx: ToolContext) -> ToolResult:
    ref = await resolve_market(a, ctx)
    if isinstance(ref, ToolResult):
        return ref
    return gateway_result(await ctx.services.gateway.ensure_stop(ref[0], stop_px=a.stop_px))


async def set_target(a: _TradeRefAction, ctx: ToolContext) -> ToolResult:
    ref = await resolve_market(a, ctx)
    if isinstance(ref, ToolResult):
        return ref
    return await submit(target_action(a, ref[0]).resolve(None), ctx)


async def cancel_order(a: ActionArgs, ctx: ToolContext) -> ToolResult:
    return await submit(cancel_action(a).resolve(None), ctx)


async def flatten_all(a: ReasonArgs, ctx: ToolContext) -> ToolResult:
    results = await ctx.services.gateway.flatten(action_of(ctx))
    parts = [gateway_result(r, retry=ctx.rerun) for r in results]
    failed = [p for p in parts if p.is_error]
    doc = {"ok": not failed, "actions": [dict(p.data) for p in parts], "reason": a.reason}
    orders = tuple(c for p in parts for c in p.orders)
    if not results:
        return ToolResult.ok({"ok": True, "message": "nothing to flatten"})
    if failed:
        return ToolResult.error("flatten_all: some actions failed:\n" + "\n".join(p.content for p in failed),
                                data=doc, orders=orders)
    return ToolResult.ok(doc, data=doc, orders=orders)


async def set_leverage(a: ActionArgs, ctx: ToolContext) -> ToolResult:
    return await submit(leverage_action(a).resolve(None), ctx)


async def adjust_margin(a: ActionArgs, ctx: ToolContext) -> ToolResult:
    if ctx.rerun:  # no client id makes a margin transfer idempotent: an interrupted run may have moved it
        return ToolResult.error("OUTCOME UNKNOWN: an earlier run of this very call was interrupted and may have "
                                "moved the margin; nothing was sent now. Check the snapshot (margin, liquidation) "
                                "before calling adjust_margin again with a new call.")
    return await submit(margin_action(a).resolve(None), ctx)


async def margin_added(a: ActionArgs, ctx: ToolContext) -> bool:
    """Adding margin moves the liquidation away: protective (allowed in every mode)."""
    return a.arg("add_usd") is not None


async def halt_trading(a: ReasonArgs, ctx: ToolContext) -> ToolResult:
    risk = ctx.services.risk
    now, change = ctx.services.clock(), halt_action(a).resolve(None)
    await risk.update(lambda state: change.apply(state, now))
    return ToolResult.ok({"ok": True, "halted": True, "message": "trading halted; only a human can resume"})


TRADE_TOOLS: tuple[Tool, ...] = (
    Tool("open_trade", "Open (or add to) a position through the risk engine. You never choose the size: declare "
         "risk_usd (USD lost at the stop) and stop_px, and the risk engine sizes it, or refuses with every reason. "
         "A protective stop is placed with the entry.", OpenTradeArgs, open_trade, "trade", preview=preview_open),
    Tool("close_position", "Close a fraction of a position at market (reduce-only).", ClosePositionArgs,
         close_position, "trade"),
    Tool("modify_stop", "Move a position's protective stop. Tightening is always allowed; loosening is new risk.",
         ModifyStopArgs, modify_stop, "trade", protective_when=stop_tightens),
    Tool("ensure_stop", "Re-place a missing protective stop (idempotent; a no-op when the stop is in place).",
         EnsureStopArgs, ensure_stop, "protective"),
    Tool("set_target", "Move a trade's planned target and/or its real take-profit order.", SetTargetArgs,
         set_target, "trade"),
    Tool("cancel_order", "Cancel a resting order by oid or cloid (protective stops cannot be cancelled).",
         CancelOrderArgs, cancel_order, "trade"),
    Tool("flatten_all", "Close every position at market and cancel every entry order.", ReasonArgs, flatten_all,
         "trade"),
    Tool("halt_trading", "Engage the kill switch: no new risk until a human resumes. Use it when something is wrong.",
         ReasonArgs, halt_trading, "protective"),
    Tool("set_leverage", "Set a market's leverage (and margin mode: cross or isolated) through the risk engine, "
         "which caps it; raising it is new risk. Sizes never change: the leverage decides the margin a position "
         "ties up and where it would be liquidated.", SetLeverageArgs, set_leverage, "trade"),
    Tool("adjust_margin", "Add USD of margin to an isolated position (moves its liquidation price away; allowed in "
         "every state) or remove some (moves it closer: new risk). Cross positions share the account's margin.",
         AdjustMarginArgs, adjust_margin, "trade", protective_when=margin_added),
)
