"""Small builders for risk-engine tests: markets, positions and accounts with readable defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from revagent.risk import AccountView, MarketRules, PositionView, RestingEntry, RiskState, TriggerOrder

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
D = Decimal


def market(
    name: str = "BTC",
    *,
    sz_decimals: int = 5,
    max_leverage: int = 40,
    mark: str = "60000",
    mid: str | None = None,
    price_time: datetime = NOW,
    **extra: Any,
) -> MarketRules:
    return MarketRules(
        name=name,
        sz_decimals=sz_decimals,
        max_leverage=max_leverage,
        mark_px=D(mark),
        mid_px=D(mid) if mid is not None else None,
        price_time=price_time,
        **extra,
    )


DEFAULT_MARKETS = {
    "BTC": market("BTC", sz_decimals=5, max_leverage=40, mark="60000"),
    "ETH": market("ETH", sz_decimals=4, max_leverage=25, mark="3000"),
    "SOL": market("SOL", sz_decimals=2, max_leverage=20, mark="150"),
    "DOGE": market("DOGE", sz_decimals=0, max_leverage=10, mark="0.2"),
}


def position(
    market: str = "BTC",
    size: str = "0.01",
    entry: str = "60000",
    *,
    mark: str | None = None,
    stop: str | None = None,
    leverage: str = "5",
    **extra: Any,
) -> PositionView:
    return PositionView(
        market=market,
        size=D(size),
        entry_px=D(entry),
        mark_px=D(mark if mark is not None else entry),
        stop_px=D(stop) if stop is not None else None,
        leverage=D(leverage),
        **extra,
    )


def stop_order(
    market: str, side: str, size: str, trigger: str, oid: int = 1, kind: str = "stop", **extra: Any
) -> TriggerOrder:
    return TriggerOrder.model_validate(
        {
            "market": market,
            "side": side,
            "size": size,
            "trigger_px": trigger,
            "oid": oid,
            "kind": kind,
            **extra,
        }
    )


def entry_order(market: str, side: str, size: str, px: str, risk: str, oid: int = 100) -> RestingEntry:
    return RestingEntry.model_validate(
        {"market": market, "side": side, "size": size, "limit_px": px, "risk_usd": risk, "oid": oid}
    )


def account(
    *,
    equity: str = "10000",
    available: str | None = None,
    positions: tuple[PositionView, ...] = (),
    entries: tuple[RestingEntry, ...] = (),
    triggers: tuple[TriggerOrder, ...] = (),
    markets: dict[str, MarketRules] | None = None,
    sync_phase: str = "consistent",
) -> AccountView:
    return AccountView.model_validate(
        {
            "equity": equity,
            "available_margin": available if available is not None else equity,
            "positions": positions,
            "entries": entries,
            "triggers": triggers,
            "markets": markets if markets is not None else DEFAULT_MARKETS,
            "sync_phase": sync_phase,
        }
    )


FRESH = RiskState()
