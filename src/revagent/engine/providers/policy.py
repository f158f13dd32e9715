"""The offline provider's rule-based alert policy: a pure function, no I/O, no clock.

Protection must never depend on a model being reachable, so when no model answers an alert thread
runs this table (`rule_based_policy`):

| alert kind               | action                                                                     |
|--------------------------|----------------------------------------------------------------------------|
| `stop_loss_verification` | `ensure_stop(trade_id)`: re-place the trade's protective stop if missing   |
| `early_warning`          | `modify_stop` to the price that halves the open risk: the midpoint between |
|                          | the stop and the reference price (mark, else entry); no stop -> ensure_stop |
| `profit_target`          | `close_position(fraction 0.5)`, then `modify_stop` to break-even (entry)   |
| `liquidation_warning`    | `close_position` of the fraction that puts the liquidation price at least  |
|                          | `liquidation_warning_pct` away from the mark (see `liquidation_fraction`)  |
| `watcher`                | no trade; a text note saying it fired (logged and shown)                   |
| `time`                   | no trade; the alert's summary as text                                      |
| `system`                 | no trade; the alert's text                                                 |

Open risk is `|reference - stop| * size`, the loss from here if the stop fills; moving the stop to
the midpoint halves it. The stop only ever moves towards the price (never widens); prices are not
rounded here (the risk engine rounds to tick). The tool names and argument shapes below are the ones
the engine's tools accept (`trade_id` identifies the trade; prices and fractions are decimal
strings); the runner executes them like model tool calls, through the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

AlertKind = Literal["stop_loss_verification", "early_warning", "profit_target", "liquidation_warning", "watcher",
                    "time", "system"]
Side = Literal["long", "short"]


@dataclass(frozen=True, slots=True)
class TradeRef:
    """The trade an alert is about. `size` is in coins (positive); `stop_px` None means no stop."""

    trade_id: str
    market: str
    side: Side
    entry_px: Decimal
    size: Decimal
    stop_px: Decimal | None = None
    target_px: Decimal | None = None
    liquidation_px: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AlertDescription:
    """What fired. `reference_px` is the price the alert fired at (mid or mark); `summary` is text the
    caller prepared (the time alert's summary, the watcher's description, the system message).
    `trigger_key` names this firing (unique per occurrence: the offline provider's tool-call ids
    derive from it, so two firings in one thread never share a gateway action key);
    `liquidation_warning_pct` is the distance from liquidation a liquidation warning restores."""

    kind: AlertKind
    alert_id: str
    title: str
    trade: TradeRef | None = None
    reference_px: Decimal | None = None
    summary: str = ""
    trigger_key: str = ""
    liquidation_warning_pct: Decimal = Decimal(10)


@dataclass(frozen=True, slots=True)
class PolicyAction:
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """Tool calls to make (in order) and the text to show with them."""

    actions: tuple[PolicyAction, ...]
    text: str


OfflinePolicy = Callable[[AlertDescription], PolicyDecision]


def open_risk_usd(trade: TradeRef, reference_px: Decimal) -> Decimal:
    """`|reference - stop| * size` when the stop is on the losing side of the reference, else 0."""
    if trade.stop_px is None:
        raise ValueError("a trade without a stop has unbounded open risk")
    distance = reference_px - trade.stop_px if trade.side == "long" else trade.stop_px - reference_px
    return max(distance, Decimal(0)) * trade.size


def half_risk_stop(trade: TradeRef, reference_px: Decimal) -> Decimal | None:
    """The stop that halves the open risk measured from `reference_px`, or None when the stop is
    already at or beyond the reference (no open risk to halve)."""
    if trade.stop_px is None:
        raise ValueError("a trade without a stop has no stop to tighten")
    if open_risk_usd(trade, reference_px) == 0:
        return None
    return (trade.stop_px + reference_px) / 2


def liquidation_fraction(side: Side, mark_px: Decimal, liquidation_px: Decimal, warning_pct: Decimal) -> Decimal:
    """The fraction of a position to close so that the mark is at least `warning_pct` percent away
    from the liquidation price (the distance the liquidation warning measures: a long is safe when
    `mark >= liq * (1 + pct)`, a short when `mark <= liq * (1 - pct)`), 0 when it already is.

    The distance from the mark to liquidation is `available margin / size` (over a constant), so
    closing a fraction f at the mark stretches it by `1 / (1 - f)` at least (the margin the closed
    part kept for maintenance is freed too, which only helps). Aimed 10% beyond the target (fees and
    slippage of the close), rounded up to a hundredth, at most 1 (close all)."""
    p = warning_pct / Decimal(100)
    if side == "long":
        if liquidation_px >= mark_px:
            return Decimal(1)
        needed = mark_px * p / (1 + p)
    else:
        if liquidation_px <= mark_px:
            return Decimal(1)
        needed = mark_px * p / (1 - p) if p < 1 else mark_px
    distance = abs(mark_px - liquidation_px)
    if distance >= needed:
        return Decimal(0)
    fraction = 1 - distance / (needed * Decimal("1.1"))
    hundredths = -((-fraction * 100) // 1)  # ceil
    return min(Decimal(1), max(Decimal("0.01"), hundredths / 100))


def rule_based_policy(alert: AlertDescription) -> PolicyDecision:
    """The documented table (module docstring) as a pure function."""
    trade = alert.trade
    if alert.kind == "stop_loss_verification":
        if trade is None:
            return PolicyDecision((), f"Stop check '{alert.title}': no trade attached, nothing to do.")
        return PolicyDecision(
            (PolicyAction("ensure_stop", {"trade_id": trade.trade_id}),),
            f"Offline policy: verifying the protective stop of {trade.market} {trade.side} "
            f"({trade.trade_id}).",
        )
    if alert.kind == "early_warning":
        if trade is None:
            return PolicyDecision((), f"Early warning '{alert.title}': no trade attached, nothing to do.")
        if trade.stop_px is None:
            return PolicyDecision(
                (PolicyAction("ensure_stop", {"trade_id": trade.trade_id}),),
                f"Offline policy: {trade.market} has no stop; placing the plan's stop first.",
            )
        reference = alert.reference_px if alert.reference_px is not None else trade.entry_px
        new_stop = half_risk_stop(trade, reference)
        if new_stop is None:
            return PolicyDecision(
                (),
                f"Early warning on {trade.market}: the stop {trade.stop_px} already locks in "
                f"the price {reference}; no change.",
            )
        before = open_risk_usd(trade, reference)
        after = open_risk_usd(_with_stop(trade, new_stop), reference)
        return PolicyDecision(
            (
                PolicyAction(
                    "modify_stop",
                    {
                        "trade_id": trade.trade_id,
                        "stop_px": str(new_stop),
                        "reason": "offline policy: early warning, halve the open risk",
                    },
                ),
            ),
            f"Offline policy: early warning on {trade.market} {trade.side} at {reference}; "
            f"tightening the stop {trade.stop_px} -> {new_stop}, open risk {before} -> {after} USD.",
        )
    if alert.kind == "profit_target":
        if trade is None:
            return PolicyDecision((), f"Profit target '{alert.title}': no trade attached, nothing to do.")
        return PolicyDecision(
            (
                PolicyAction(
                    "close_position",
                    {
                        "trade_id": trade.trade_id,
                        "fraction": "0.5",
                        "reason": "offline policy: profit target, take half off",
                    },
                ),
                PolicyAction(
                    "modify_stop",
                    {
                        "trade_id": trade.trade_id,
                        "stop_px": str(trade.entry_px),
                        "reason": "offline policy: profit target, stop to break-even",
                    },
                ),
            ),
            f"Offline policy: profit target on {trade.market} {trade.side}; closing half and "
            f"moving the stop to break-even ({trade.entry_px}).",
        )
    if alert.kind == "liquidation_warning":
        if trade is None:
            return PolicyDecision((), f"Liquidation warning '{alert.title}': no trade attached, nothing to do.")
        mark = alert.reference_px
        if trade.liquidation_px is None:
            return PolicyDecision((), f"Liquidation warning on {trade.market}: the position has no liquidation "
                                      "price any more (it cannot be liquidated); no change.")
        if mark is None:
            return PolicyDecision(
                (PolicyAction("close_position", {"trade_id": trade.trade_id, "fraction": "0.5",
                                                 "reason": "offline policy: liquidation warning, mark unknown"}),),
                f"Offline policy: liquidation warning on {trade.market} {trade.side} without a known mark; "
                "closing half to be safe.",
            )
        fraction = liquidation_fraction(trade.side, mark, trade.liquidation_px, alert.liquidation_warning_pct)
        if fraction == 0:
            return PolicyDecision(
                (),
                f"Liquidation warning on {trade.market}: the mark {mark} is already "
                f"{alert.liquidation_warning_pct}% or more from the liquidation price {trade.liquidation_px}; "
                "no change.",
            )
        return PolicyDecision(
            (PolicyAction("close_position", {"trade_id": trade.trade_id, "fraction": str(fraction),
                                             "reason": "offline policy: liquidation warning, reduce the position"}),),
            f"Offline policy: liquidation warning on {trade.market} {trade.side} (mark {mark}, liquidation "
            f"{trade.liquidation_px}); closing {fraction:%} of the position to bring liquidation "
            f"{alert.liquidation_warning_pct}% away from the mark.",
        )
    if alert.kind == "watcher":
        at = f" at {alert.reference_px}" if alert.reference_px is not None else ""
        detail = f" {alert.summary}" if alert.summary else ""
        return PolicyDecision(
            (),
            f"Watcher '{alert.title}' fired{at}.{detail} Logged; the offline policy never "
            "trades on a watcher.",
        )
    if alert.kind == "time":
        return PolicyDecision((), f"Time alert '{alert.title}'. {alert.summary}".rstrip())
    return PolicyDecision((), f"System alert '{alert.title}'. {alert.summary}".rstrip())


def _with_stop(trade: TradeRef, stop_px: Decimal) -> TradeRef:
    return TradeRef(
        trade.trade_id, trade.market, trade.side, trade.entry_px, trade.size, stop_px, trade.target_px,
        trade.liquidation_px,
    )
