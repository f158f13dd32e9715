"""Plain state records of the venue (hot path: dataclasses with slots), and their JSON persistence forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from revagent.exchange.sim.numbers import ZERO, fmt


@dataclass(slots=True)
class Trigger:
    trigger_px: Decimal
    is_market: bool
    tpsl: str  # "tp" | "sl"


@dataclass(slots=True)
class Order:
    """One order of one user. `sz` is what remains; `status` follows Hyperliquid's order statuses."""

    oid: int
    user: str
    coin: str
    is_buy: bool
    limit_px: Decimal
    sz: Decimal
    orig_sz: Decimal
    reduce_only: bool
    tif: str | None  # "Gtc" | "Ioc" | "Alo"; None for an untriggered trigger order
    trigger: Trigger | None
    cloid: str | None
    timestamp: int
    status: str = "open"
    status_ts: int = 0
    triggered: bool = False
    is_position_tpsl: bool = False
    parent: int | None = None  # a normalTpsl child waits for this parent to fill
    children: list[int] = field(default_factory=list)
    reserved: Decimal = ZERO  # notional this order currently reserves margin for (kept by the venue)

    @property
    def side(self) -> str:
        return "B" if self.is_buy else "A"

    def to_state(self) -> dict[str, Any]:
        return {
            "oid": self.oid, "user": self.user, "coin": self.coin, "is_buy": self.is_buy,
            "limit_px": str(self.limit_px), "sz": str(self.sz), "orig_sz": str(self.orig_sz),
            "reduce_only": self.reduce_only, "tif": self.tif,
            "trigger": None if self.trigger is None else {
                "trigger_px": str(self.trigger.trigger_px), "is_market": self.trigger.is_market,
                "tpsl": self.trigger.tpsl},
            "cloid": self.cloid, "timestamp": self.timestamp, "status": self.status, "status_ts": self.status_ts,
            "triggered": self.triggered, "is_position_tpsl": self.is_position_tpsl, "parent": self.parent,
            "children": self.children,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Order:
        t = d.get("trigger")
        return cls(
            oid=int(d["oid"]), user=d["user"], coin=d["coin"], is_buy=bool(d["is_buy"]),
            limit_px=Decimal(d["limit_px"]), sz=Decimal(d["sz"]), orig_sz=Decimal(d["orig_sz"]),
            reduce_only=bool(d["reduce_only"]), tif=d.get("tif"),
            trigger=None if t is None else Trigger(Decimal(t["trigger_px"]), bool(t["is_market"]), t["tpsl"]),
            cloid=d.get("cloid"), timestamp=int(d["timestamp"]), status=d["status"], status_ts=int(d["status_ts"]),
            triggered=bool(d["triggered"]), is_position_tpsl=bool(d["is_position_tpsl"]), parent=d.get("parent"),
            children=list(d.get("children", [])),
        )

    def order_type(self) -> str:
        if self.trigger is None:
            return "Limit"
        kind = "Take Profit" if self.trigger.tpsl == "tp" else "Stop"
        return f"{kind} {'Market' if self.trigger.is_market else 'Limit'}"

    def trigger_condition(self) -> str:
        if self.trigger is None:
            return "N/A"
        # a sell take-profit and a buy stop fire when the mark rises to the trigger price
        above = (self.trigger.tpsl == "tp") != self.is_buy
        return f"Price {'above' if above else 'below'} {fmt(self.trigger.trigger_px)}"


@dataclass(slots=True)
class Position:
    """A one-way position. `entry_px` is the VWAP of the opening fills; `iso_margin` is set when isolated."""

    szi: Decimal = ZERO
    entry_px: Decimal = ZERO
    cum_all: Decimal = ZERO  # funding paid (+) or received (-), as Hyperliquid's cumFunding
    cum_open: Decimal = ZERO
    cum_change: Decimal = ZERO
    iso_margin: Decimal = ZERO

    def to_state(self) -> dict[str, str]:
        return {"szi": str(self.szi), "entry_px": str(self.entry_px), "cum_all": str(self.cum_all),
                "cum_open": str(self.cum_open), "cum_change": str(self.cum_change),
                "iso_margin": str(self.iso_margin)}

    @classmethod
    def from_state(cls, d: dict[str, str]) -> Position:
        return cls(*(Decimal(d[k]) for k in ("szi", "entry_px", "cum_all", "cum_open", "cum_change", "iso_margin")))


@dataclass(slots=True)
class Leverage:
    is_cross: bool
    value: int


@dataclass(slots=True)
class Account:
    """A user's perp account. `balance` is realized cash: deposits + closed PnL - fees + funding received.

    Hyperliquid's `totalRawUsd` is `balance - sum(szi * entryPx)`, so that
    `accountValue = totalRawUsd + sum(szi * markPx)`.
    """

    address: str
    balance: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, Leverage] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)  # wire form, oldest first
    funding: list[dict[str, Any]] = field(default_factory=list)  # userFunding wire form, oldest first
    ledger: list[dict[str, Any]] = field(default_factory=list)  # userNonFundingLedgerUpdates wire form
    n_requests: int = 0
    cum_vlm: Decimal = ZERO
    scheduled_cancel: int | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "address": self.address, "balance": str(self.balance),
            "positions": {c: p.to_state() for c, p in self.positions.items()},
            "leverage": {c: [lv.is_cross, lv.value] for c, lv in self.leverage.items()},
            "fills": self.fills, "funding": self.funding, "ledger": self.ledger,
            "n_requests": self.n_requests, "cum_vlm": str(self.cum_vlm), "scheduled_cancel": self.scheduled_cancel,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Account:
        return cls(
            address=d["address"], balance=Decimal(d["balance"]),
            positions={c: Position.from_state(p) for c, p in d["positions"].items()},
            leverage={c: Leverage(bool(v[0]), int(v[1])) for c, v in d["leverage"].items()},
            fills=list(d["fills"]), funding=list(d["funding"]), ledger=list(d["ledger"]),
            n_requests=int(d["n_requests"]), cum_vlm=Decimal(d["cum_vlm"]),
            scheduled_cancel=d.get("scheduled_cancel"),
        )


@dataclass(slots=True)
class Agent:
    """An approved API wallet: it signs for `master` and never holds funds."""

    address: str
    master: str
    name: str
    valid_until: int

    def to_state(self) -> dict[str, Any]:
        return {"address": self.address, "master": self.master, "name": self.name, "valid_until": self.valid_until}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Agent:
        return cls(d["address"], d["master"], d["name"], int(d["valid_until"]))
