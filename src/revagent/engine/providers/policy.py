"""The offline provider's rule-based alert policy: a pure function, no I/O, no clock.

Protection must never depend on a model being reachable, so when no model answers an alert thread
runs this table (`rule_based_policy`):

| alert kind               | action                                                                     |
|--------------------------|----------------------------------------------------------------------------|
| `stop_loss_verification` | `ensure_stop(trade_id)`: re-place the trade's protective stop if missing   |
| `early_warning`          | `modify_stop` to the price that halves the open risk: the midpoint between |
|                          | the stop and the reference price (mark, else entry); no stop -> ensure_stop |
| `profit_target`          | `close_position(fraction 0.5)`, then `modify_stop` to break-even (entry)   |
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

AlertKind = Literal["stop_loss_verification", "early_warning", "profit_target", "watcher", "time", "system"]
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


@dataclass(frozen=True, slots=True)
class AlertDescription:
    """What fired. `reference_px` is the price the alert fired at (mid or mark); `summary` is text the
    caller prepared (the time alert's summary, the watcher's description, the system message)."""

    kind: AlertKind
    alert_id: str
    title: str
    trade: TradeRef | None = None
    reference_px: Decimal | None = None
    summary: str = ""


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
        trade.trade_id, trade.market, trade.side, trade.entry_px, trade.size, stop_px, trade.target_px
    )
