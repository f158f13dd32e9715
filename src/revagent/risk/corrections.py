"""Post-trade corrections: the actions that restore the invariants after fills.

`corrections(account, settings, state, now)` returns, in this order:
1. `place_stop`: a position without a stop (or whose stop triggers cover less than its size), once
   `stop_grace` has passed since it opened: an `EnsureStop` at the plan's stop when the plan has one
   on the right side of the mark, else at the effective per-trade cap (`EnsureStop(stop_px=None)`);
2. `trim_position`: a protected position whose open risk exceeds the per-market cap, or the
   per-trade cap by more than `TRIM_TOLERANCE` (a market entry filled worse than its expected fill):
   a reduce-only `ClosePosition` of the excess fraction, back to the cap. The nominal caps are used
   (multiplier 1): the drawdown penalty limits new risk, it never forces exits;
3. `cancel_trigger`: a trigger order on a flat market, or on the wrong side of a flipped position.

Every intent has `origin="system"`; all of them pass `evaluate` in any trading state. Sync runs them
through the gateway (`ensure_stop` for stops) with deterministic client order ids.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from revagent.risk.account import AccountView
from revagent.risk.exposure import effective_caps, open_risk
from revagent.risk.intents import CancelOrder, ClosePosition, EnsureStop
from revagent.risk.settings import RiskSettings
from revagent.risk.state import RiskState

_ZERO = Decimal(0)
_ONE = Decimal(1)
_FRACTION_QUANTUM = Decimal("0.000001")
TRIM_TOLERANCE = Decimal("0.02")
"""How far over the per-trade cap a filled trade may be before it is trimmed back to the cap (2%):
a market entry is sized at its expected fill, and a fill a little worse is not worth an exit."""


class Correction(BaseModel):
    """One repair: what (`kind`), where (`market`), the intent to send, and why (for the journal/UI)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["place_stop", "trim_position", "cancel_trigger"]
    market: str
    intent: EnsureStop | ClosePosition | CancelOrder
    reason: str


def corrections(
    account: AccountView, settings: RiskSettings, state: RiskState, now: datetime
) -> list[Correction]:
    """The repairs `account` needs at `now` (empty when every invariant holds). Pure."""
    del state  # the nominal caps apply; kept for a uniform signature and future rules
    out: list[Correction] = []
    nominal = effective_caps(settings, _ONE)
    positions = account.positions_by_market
    for market, position in positions.items():
        closing = "sell" if position.direction > 0 else "buy"
        stop_orders = [
            t for t in account.triggers if t.market == market and t.kind == "stop" and t.side == closing
        ]
        covered = sum((t.size for t in stop_orders), _ZERO)
        size = abs(position.size)
        missing = position.stop_px is None or (bool(stop_orders) and covered < size)
        if missing:
            if position.opened_at is not None and now - position.opened_at < settings.stop_grace:
                continue
            mark = account.markets[market].mark_px
            planned = position.planned_stop_px
            if planned is not None and (mark - planned) * position.direction <= 0:
                planned = None
            live = position.stop_px
            if planned is not None and live is not None and (live - planned) * position.direction > 0:
                planned = live  # completing a partial cover never loosens the live stop
            what = "no stop" if position.stop_px is None else f"stops covering {covered} of {size}"
            where = f"the plan's stop {planned}" if planned is not None else "the per-trade cap"
            out.append(
                Correction(
                    kind="place_stop",
                    market=market,
                    intent=EnsureStop(market=market, stop_px=planned, origin="system"),
                    reason=f"{market} {size} has {what}; placing one at {where}",
                )
            )
            continue
        risk = open_risk(position, settings)
        over_market = risk - nominal.market_usd
        over_trade = risk - nominal.per_trade_usd if risk > nominal.per_trade_usd * (_ONE + TRIM_TOLERANCE) else _ZERO
        excess = max(over_market if risk > nominal.market_usd else _ZERO, over_trade)
        if excess > 0:
            cap = nominal.per_trade_usd if over_trade >= excess else nominal.market_usd
            fraction = min(_ONE, (excess / risk).quantize(_FRACTION_QUANTUM, ROUND_CEILING))
            out.append(
                Correction(
                    kind="trim_position",
                    market=market,
                    intent=ClosePosition(market=market, fraction=fraction, origin="system"),
                    reason=(
                        f"{market} open risk {risk.quantize(Decimal('0.01'))} USD exceeds the "
                        f"{'per-trade' if cap == nominal.per_trade_usd else 'per-market'} cap "
                        f"{cap.quantize(Decimal('0.01'))} USD; closing {fraction} of it"
                    ),
                )
            )
    for t in account.triggers:
        held = positions.get(t.market)
        why = None
        if held is None:
            why = f"{t.market} is flat"
        elif t.reduce_only and t.side == ("buy" if held.direction > 0 else "sell"):
            why = f"{t.market} flipped to {'long' if held.direction > 0 else 'short'}"
        if why is not None:
            out.append(
                Correction(
                    kind="cancel_trigger",
                    market=t.market,
                    intent=CancelOrder(market=t.market, oid=t.oid, cloid=t.cloid, origin="system"),
                    reason=f"{why}: cancelling its {t.kind} trigger {t.oid or t.cloid} at {t.trigger_px}",
                )
            )
    return out
