"""Trade-management levels for an open trade, and the stop-loss verification check.

Pure: no I/O, no clock. The scheduler calls `trade_levels` when a trade opens and again whenever its
stop or target moves (with the trade's new plan generation, so a moved level gets a new trigger key),
arms the result in the trigger index from the side the price is on now (`wait_if_passed`: a level the
price has already passed waits for the price to come back, it does not fire for a crossing already
reported), and disarms the trade's levels when it closes. The profit target's generation is the
plan's *target* generation: a stop move does not re-arm it, and once it fired it is armed again only
at a new target. `stop_check` compares the recorded stop with the exchange's open trigger orders.

Levels, for a long (a short mirrors them):
- early warning: `early_warning_fraction` of the way from entry down to the stop, fires BELOW, on mid.
  Not produced when the stop is at or beyond the entry (the trade can no longer lose: nothing to warn).
- profit target: at the target, fires ABOVE, on mid. Not produced without a target.
- liquidation warning: fires BELOW `liq * (1 + liquidation_warning_pct / 100)` on the **mark** price,
  i.e. when the mark is within that percentage of the liquidation price. Not produced without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from revagent.alerts.levels import EntryKey, PriceSource, price_book
from revagent.exchange.types import FrontendOpenOrder
from revagent.models import LegDirection, Side
from revagent.store.alert_events import AlertKind, first_action_of, level_trigger_key

DEFAULT_EARLY_WARNING_FRACTION = Decimal("0.5")
DEFAULT_LIQUIDATION_WARNING_PCT = Decimal("10")


@dataclass(frozen=True, slots=True)
class ManagedTrade:
    """What trade management needs of one open trade. Prices in quote currency (USD); size in coins.

    `generation` is the trade plan's generation: bump it whenever the stop or the target moves.
    `target_generation` (default: `generation`) is the generation of the target alone: the profit
    target's trigger key follows it, so moving the stop never re-arms a target that already fired.
    """

    trade_id: str
    market: str
    side: Side
    entry: Decimal
    stop: Decimal
    size: Decimal
    target: Decimal | None = None
    liquidation_px: Decimal | None = None
    generation: int = 1
    target_generation: int | None = None

    def __post_init__(self) -> None:
        for name in ("entry", "stop", "size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trade {self.trade_id}: {name} must be positive")
        if self.generation < 1:
            raise ValueError(f"trade {self.trade_id}: the plan generation starts at 1")
        long = self.side is Side.LONG
        if self.target is not None and (self.target <= self.entry if long else self.target >= self.entry):
            where = "above" if long else "below"
            raise ValueError(
                f"trade {self.trade_id}: the target {self.target} of a {self.side} must be {where} "
                f"the entry {self.entry}"
            )


@dataclass(frozen=True, slots=True)
class TradeLevel:
    """One trade-management price level to arm in the trigger index."""

    trade_id: str
    market: str
    kind: AlertKind
    direction: LegDirection
    level: Decimal
    generation: int
    source: PriceSource
    first_action: str
    description: str

    @property
    def key(self) -> EntryKey:
        return EntryKey(self.trade_id, self.kind.value)

    @property
    def book(self) -> str:
        return price_book(self.market, self.source)

    @property
    def trigger_key(self) -> str:
        return level_trigger_key(self.trade_id, self.kind.value, self.generation)


def _action(kind: AlertKind) -> str:
    text = first_action_of(kind)
    assert text is not None, kind
    return text


def trade_levels(
    trade: ManagedTrade,
    *,
    early_warning_fraction: Decimal = DEFAULT_EARLY_WARNING_FRACTION,
    liquidation_warning_pct: Decimal = DEFAULT_LIQUIDATION_WARNING_PCT,
) -> list[TradeLevel]:
    """The price levels of one trade at its current plan generation (see the module docstring)."""
    if not Decimal(0) < early_warning_fraction < Decimal(1):
        raise ValueError(f"early_warning_fraction must be between 0 and 1, got {early_warning_fraction}")
    if not Decimal(0) < liquidation_warning_pct < Decimal(100):
        raise ValueError(f"liquidation_warning_pct must be between 0 and 100, got {liquidation_warning_pct}")
    long = trade.side is Side.LONG
    adverse = LegDirection.BELOW if long else LegDirection.ABOVE
    favourable = LegDirection.ABOVE if long else LegDirection.BELOW
    out: list[TradeLevel] = []

    stop_is_protective = trade.stop < trade.entry if long else trade.stop > trade.entry
    if stop_is_protective:
        level = trade.entry + early_warning_fraction * (trade.stop - trade.entry)
        out.append(
            TradeLevel(
                trade.trade_id,
                trade.market,
                AlertKind.EARLY_WARNING,
                adverse,
                level,
                trade.generation,
                "mid",
                _action(AlertKind.EARLY_WARNING),
                f"{trade.market} {trade.side} reached {early_warning_fraction:%} of the way from entry "
                f"{trade.entry} to stop {trade.stop}",
            )
        )
    if trade.target is not None:
        out.append(
            TradeLevel(
                trade.trade_id,
                trade.market,
                AlertKind.PROFIT_TARGET,
                favourable,
                trade.target,
                trade.target_generation or trade.generation,
                "mid",
                _action(AlertKind.PROFIT_TARGET),
                f"{trade.market} {trade.side} reached its target {trade.target}",
            )
        )
    if trade.liquidation_px is not None and trade.liquidation_px > 0:
        factor = liquidation_warning_pct / Decimal(100)
        liq = trade.liquidation_px
        level = liq * (1 + factor) if long else liq * (1 - factor)
        out.append(
            TradeLevel(
                trade.trade_id,
                trade.market,
                AlertKind.LIQUIDATION_WARNING,
                adverse,
                level,
                trade.generation,
                "mark",
                _action(AlertKind.LIQUIDATION_WARNING),
                f"{trade.market} {trade.side}: mark within {liquidation_warning_pct}% of the liquidation price {liq}",
            )
        )
    return out


# --- stop-loss verification --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerOrder:
    """An open trigger order on the exchange, as far as stop verification needs it."""

    oid: int
    market: str
    is_buy: bool
    trigger_px: Decimal
    size: Decimal
    reduce_only: bool
    is_stop: bool
    """A stop-loss (fires against the position), as opposed to a take-profit."""
    whole_position: bool = False
    """A position TP/SL (`isPositionTpsl`): it closes the whole position whatever its size says."""


def trigger_orders_from_frontend(orders: Iterable[Mapping[str, Any]]) -> list[TriggerOrder]:
    """Trigger orders from a Hyperliquid `frontendOpenOrders` response (decimal strings on the wire).

    Non-trigger orders are skipped. TP/SL children of a parent order are also listed at the top level
    with the same oid; each oid is kept once.
    """
    out: dict[int, TriggerOrder] = {}
    for raw in orders:
        if not raw.get("isTrigger"):
            continue
        oid = int(raw["oid"])
        if oid in out:
            continue
        order_type = str(raw.get("orderType", ""))
        out[oid] = TriggerOrder(
            oid=oid,
            market=str(raw["coin"]),
            is_buy=raw.get("side") == "B",
            trigger_px=Decimal(str(raw["triggerPx"])),
            size=Decimal(str(raw.get("sz", "0"))),
            reduce_only=bool(raw.get("reduceOnly", False)),
            is_stop=order_type.lower().startswith("stop"),
            whole_position=bool(raw.get("isPositionTpsl", False)),
        )
    return list(out.values())


def trigger_orders_from_open_orders(orders: Iterable[FrontendOpenOrder]) -> list[TriggerOrder]:
    """Trigger orders from the bridge's typed `frontendOpenOrders` entries (same rules as above)."""
    out: dict[int, TriggerOrder] = {}
    for o in orders:
        if not o.is_trigger or o.trigger_px is None or o.oid in out:
            continue
        out[o.oid] = TriggerOrder(
            oid=o.oid,
            market=o.coin,
            is_buy=o.side == "B",
            trigger_px=o.trigger_px,
            size=o.sz,
            reduce_only=o.reduce_only,
            is_stop=o.order_type.lower().startswith("stop"),
            whole_position=o.is_position_tpsl,
        )
    return list(out.values())


class StopStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG_LEVEL = "wrong_level"
    WRONG_SIZE = "wrong_size"


@dataclass(frozen=True, slots=True)
class StopCheck:
    """The verdict of stop-loss verification; `ok` is True only for StopStatus.OK."""

    status: StopStatus
    expected_px: Decimal
    expected_size: Decimal
    found_px: Decimal | None = None
    found_size: Decimal | None = None
    oids: tuple[int, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is StopStatus.OK


def stop_check(
    trade_stop_px: Decimal,
    exchange_trigger_orders: Iterable[TriggerOrder],
    *,
    market: str,
    side: Side,
    size: Decimal,
    px_tolerance: Decimal = Decimal(0),
) -> StopCheck:
    """Check that the exchange holds a reduce-only stop for this position at the recorded level.

    Candidate orders: trigger stop orders on `market`, reduce-only, on the closing side (a sell for
    a long). OK when the candidates whose trigger price is within `px_tolerance` of `trade_stop_px`
    cover `size` (their sizes summed; a position TP/SL covers everything). Otherwise WRONG_SIZE
    when some sit at the level, WRONG_LEVEL when stops exist elsewhere (the nearest is reported),
    MISSING when there is no stop at all.
    """
    closing_is_buy = side is Side.SHORT
    stops = [
        o
        for o in exchange_trigger_orders
        if o.market == market and o.is_stop and o.reduce_only and o.is_buy == closing_is_buy
    ]
    if not stops:
        return StopCheck(StopStatus.MISSING, trade_stop_px, size, detail=f"no reduce-only stop on {market}")
    at_level = [o for o in stops if abs(o.trigger_px - trade_stop_px) <= px_tolerance]
    if at_level:
        oids = tuple(o.oid for o in at_level)
        if any(o.whole_position for o in at_level):
            return StopCheck(StopStatus.OK, trade_stop_px, size, at_level[0].trigger_px, size, oids)
        covered = sum((o.size for o in at_level), Decimal(0))
        if covered >= size:
            return StopCheck(StopStatus.OK, trade_stop_px, size, at_level[0].trigger_px, covered, oids)
        return StopCheck(
            StopStatus.WRONG_SIZE,
            trade_stop_px,
            size,
            at_level[0].trigger_px,
            covered,
            oids,
            detail=f"the stop at {trade_stop_px} covers {covered} of {size}",
        )
    nearest = min(stops, key=lambda o: abs(o.trigger_px - trade_stop_px))
    return StopCheck(
        StopStatus.WRONG_LEVEL,
        trade_stop_px,
        size,
        nearest.trigger_px,
        nearest.size,
        (nearest.oid,),
        detail=f"the exchange stop is at {nearest.trigger_px}, the recorded stop at {trade_stop_px}",
    )


def check_trade_stop(trade: ManagedTrade, orders: Iterable[TriggerOrder], **kw: Decimal) -> StopCheck:
    """`stop_check` for a `ManagedTrade` (its stop, market, side and size)."""
    return stop_check(trade.stop, orders, market=trade.market, side=trade.side, size=trade.size, **kw)
