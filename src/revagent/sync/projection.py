"""Exchange state -> the risk engine's `AccountView`: the one canonical projection every part reads.

Pure: given the clearinghouse state, the open orders (with triggers), the market metadata and
contexts, mid prices, the recorded trade plans and the order journal, it builds the view. The
sync loop calls it on every snapshot and event; the gateway calls it (through the bridge) until
the sync loop runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from revagent.exchange.types import AssetCtx, ClearinghouseState, FrontendOpenOrder, Meta
from revagent.models import OrderRecord, TradePlan
from revagent.risk import AccountView, MarketRules, PositionView, RestingEntry, SyncPhase, TriggerOrder

_ZERO = Decimal(0)


def flatten_orders(orders: Iterable[FrontendOpenOrder]) -> list[FrontendOpenOrder]:
    """Open orders with normalTpsl children listed once each (they appear both at the top level and
    under their parent's `children`, with the same oid)."""
    seen: set[int] = set()
    out: list[FrontendOpenOrder] = []
    stack = list(orders)
    while stack:
        o = stack.pop(0)
        if o.oid not in seen:
            seen.add(o.oid)
            out.append(o)
        stack.extend(o.children)
    return out


def is_stop_order(o: FrontendOpenOrder) -> bool:
    return o.is_trigger and "stop" in o.order_type.lower()


def market_rules(meta: Meta, ctxs: Sequence[AssetCtx] | None, mids: Mapping[str, Decimal],
                 leverage: Mapping[str, Decimal], price_time: datetime) -> dict[str, MarketRules]:
    rules: dict[str, MarketRules] = {}
    for i, asset in enumerate(meta.universe):
        if asset.is_delisted:
            continue
        ctx = ctxs[i] if ctxs is not None and i < len(ctxs) else None
        mid = mids.get(asset.name)
        mark = ctx.mark_px if ctx is not None else mid
        if mark is None or mark <= 0:
            continue
        rules[asset.name] = MarketRules(
            name=asset.name, sz_decimals=asset.sz_decimals, max_leverage=asset.max_leverage, mark_px=mark,
            mid_px=mid if mid is not None and mid > 0 else (ctx.mid_px if ctx is not None else None),
            price_time=price_time, leverage=leverage.get(asset.name), only_isolated=asset.only_isolated)
    return rules


def project_account(
    state: ClearinghouseState,
    orders: Sequence[FrontendOpenOrder],
    meta: Meta,
    ctxs: Sequence[AssetCtx] | None,
    mids: Mapping[str, Decimal],
    *,
    plans: Sequence[TradePlan] = (),
    journal: Sequence[OrderRecord] = (),
    price_time: datetime,
    as_of: datetime,
    phase: SyncPhase = "consistent",
    opened: Mapping[str, datetime] | None = None,
) -> AccountView:
    """Build the account view. Stops attach to positions from the live trigger orders (the worst
    stop covering the position); plans add the planned stop, target and trade id; resting entries
    carry the risk their journal record declared. `opened` (market -> time of the position's first
    fill, from the ledger) dates positions no plan covers, so they get the stop grace period too."""
    by_cloid = {r.cloid: r for r in journal}
    plan_by_market = {p.market: p for p in plans if p.status in ("opening", "open")}
    all_orders = flatten_orders(orders)

    triggers: list[TriggerOrder] = []
    entries: list[RestingEntry] = []
    for o in all_orders:
        side = "buy" if o.side == "B" else "sell"
        if o.is_trigger and o.trigger_px is not None and o.sz > 0:
            triggers.append(TriggerOrder(market=o.coin, oid=o.oid, cloid=o.cloid, side=side, size=o.sz,
                                         trigger_px=o.trigger_px,
                                         kind="stop" if is_stop_order(o) else "take_profit",
                                         reduce_only=o.reduce_only or o.is_position_tpsl))
        elif not o.is_trigger and not o.reduce_only and o.sz > 0:
            record = by_cloid.get(o.cloid or "")
            plan = plan_by_market.get(o.coin)
            risk = _declared_risk(record, plan, o.sz * o.limit_px)
            entries.append(RestingEntry(market=o.coin, oid=o.oid, cloid=o.cloid,
                                        side="long" if side == "buy" else "short", size=o.sz, limit_px=o.limit_px,
                                        stop_px=plan.stop_px if plan else None, risk_usd=risk))

    leverage = {ap.position.coin: Decimal(ap.position.leverage.value) for ap in state.asset_positions}
    rules = market_rules(meta, ctxs, mids, leverage, price_time)
    positions: list[PositionView] = []
    for ap in state.asset_positions:
        p = ap.position
        if p.szi == 0 or p.entry_px is None:
            continue
        plan = plan_by_market.get(p.coin)
        market = rules.get(p.coin)
        # The exchange's mark when known; else the one implied by the position's value, on a plain scale.
        mark = market.mark_px if market is not None else abs(p.position_value / p.szi).quantize(p.entry_px)
        closing = "sell" if p.szi > 0 else "buy"
        stops = [t.trigger_px for t in triggers if t.market == p.coin and t.kind == "stop" and t.side == closing]
        # The worst stop is the one farthest from the mark on the losing side.
        live_stop = (min(stops) if p.szi > 0 else max(stops)) if stops else None
        positions.append(PositionView(
            market=p.coin, size=p.szi, entry_px=p.entry_px, mark_px=mark if mark > 0 else p.entry_px,
            stop_px=live_stop, planned_stop_px=plan.stop_px if plan else None,
            target_px=plan.target_px if plan else None, leverage=Decimal(p.leverage.value),
            liquidation_px=p.liquidation_px if p.liquidation_px and p.liquidation_px > 0 else None,
            margin_mode=p.leverage.type,
            opened_at=plan.opened_at if plan else (opened or {}).get(p.coin),
            trade_id=plan.trade_id if plan else None))

    equity = max(_ZERO, state.margin_summary.account_value)
    available = max(_ZERO, state.withdrawable)
    return AccountView(
        equity=equity, available_margin=available, positions=tuple(positions), entries=tuple(entries),
        triggers=tuple(triggers), markets=rules,
        sync_phase=phase, as_of=as_of)


def _declared_risk(record: OrderRecord | None, plan: TradePlan | None, notional: Decimal) -> Decimal:
    """The risk an entry declared through its trade plan; an entry nobody declared (placed by hand on
    the exchange) counts its whole notional, as a position without a stop does."""
    if plan is not None and (record is None or record.trade_id in (None, plan.trade_id)):
        return plan.risk_usd
    return notional
