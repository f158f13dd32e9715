"""The `Exchange` protocol: what the gateway, sync and doctor may ask of a venue.

One implementation exists (`revagent.exchange.hyperliquid.HyperliquidBridge`), pointed at
mainnet, testnet or the local simulator (paper). Requests and results are plain frozen
dataclasses (hot path); account and market snapshots are the pydantic models of
`revagent.exchange.types`. Prices and sizes are `Decimal`s already on the exchange's tick and lot
grid: the bridge sends them unchanged and refuses (ValueError) values the wire cannot carry.

Results of signed actions are never exceptions the caller has to guess about:
- `ActionOk`: the exchange processed the request; `statuses` has one entry per order/cancel/modify,
  in request order (an individual order may still be `Rejected`).
- `ActionRejected`: the exchange refused the whole request; nothing happened.
- `OutcomeUnknown`: the request may or may not have been processed (timeout, lost response,
  unreadable answer). Do NOT resend: `settle()` it first (final status per cloid).
Only an exchange that cannot be reached at all (after retries, with no request delivered) raises
`revagent.errors.ExchangeUnavailableError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from revagent.exchange.types import (
    ClearinghouseState,
    Fill,
    FrontendOpenOrder,
    L2Book,
    Meta,
    OrderStatusResponse,
    WsBbo,
    WsOrderUpdate,
    WsUserEvent,
)
from revagent.models import Network

Tif = Literal["Gtc", "Ioc", "Alo"]
Tpsl = Literal["tp", "sl"]
Grouping = Literal["na", "normalTpsl", "positionTpsl"]

# ------------------------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class LimitType:
    """A limit order: Gtc rests, Ioc fills what it can and cancels the rest (a "market" order), Alo posts only."""

    tif: Tif = "Gtc"


@dataclass(frozen=True, slots=True)
class TriggerType:
    """A trigger (TP/SL) order: fires when the mark price crosses `trigger_px`; `is_market` executes it as market."""

    trigger_px: Decimal
    is_market: bool
    tpsl: Tpsl


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order. `size` in coins (> 0), `limit_px` in USD; `cloid` is `0x` + 32 hex (see `cloid_for`)."""

    coin: str
    is_buy: bool
    size: Decimal
    limit_px: Decimal
    order_type: LimitType | TriggerType = LimitType()
    reduce_only: bool = False
    cloid: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel one order by exchange `oid` or by `cloid` (exactly one of them)."""

    coin: str
    oid: int | None = None
    cloid: str | None = None

    def __post_init__(self) -> None:
        if (self.oid is None) == (self.cloid is None):
            raise ValueError("a CancelRequest names exactly one of oid or cloid")


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """Replace order `target` (an oid, or a cloid string) by `order`."""

    target: int | str
    order: OrderRequest


# ------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Resting:
    oid: int
    cloid: str | None = None


@dataclass(frozen=True, slots=True)
class Filled:
    """Filled (an IOC possibly partly: `total_sz` is what filled)."""

    oid: int
    total_sz: Decimal
    avg_px: Decimal
    cloid: str | None = None


@dataclass(frozen=True, slots=True)
class Waiting:
    """A normalTpsl child parked until its parent fills ("waitingForFill") or its trigger ("waitingForTrigger")."""

    kind: str
    cloid: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """This one order/cancel/modify was refused; `message` is the exchange's text."""

    message: str
    cloid: str | None = None


@dataclass(frozen=True, slots=True)
class Success:
    """A cancel or modify that went through."""

    cloid: str | None = None


ItemOutcome = Resting | Filled | Waiting | Rejected | Success


@dataclass(frozen=True, slots=True)
class ActionOk:
    """The exchange processed the action. `statuses` is empty for actions without any (leverage)."""

    action: str
    nonce: int
    statuses: tuple[ItemOutcome, ...] = ()


@dataclass(frozen=True, slots=True)
class ActionRejected:
    """The exchange refused the whole request (nothing was placed, cancelled or changed)."""

    action: str
    nonce: int
    message: str
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class OutcomeUnknown:
    """The request may have been processed. `cloids` are those of the orders it carried.

    Never resend blindly: `settle()` it (for cancels by oid, read the open orders). A known cloid is
    the answer. An unknown one is final only once `expires_after_ms` (epoch ms, the action's
    `expiresAfter`) has passed on the exchange's clock: before that the original request may still
    land. Then resend with the same cloid (a new nonce). With `expires_after_ms` None the original
    never expires: do not resend automatically.
    """

    action: str
    nonce: int
    reason: str
    cloids: tuple[str, ...] = ()
    expires_after_ms: int | None = None


SendResult = ActionOk | ActionRejected | OutcomeUnknown


@dataclass(frozen=True, slots=True)
class AgentCheck:
    """Whether `agent` may sign for `master`. `problem` says what is wrong in one sentence when not `ok`."""

    master: str
    agent: str
    ok: bool
    problem: str | None = None
    agent_name: str | None = None
    valid_until_ms: int | None = None


# -------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class MidsEvent:
    mids: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class OrderUpdatesEvent:
    updates: tuple[WsOrderUpdate, ...]


@dataclass(frozen=True, slots=True)
class FillsEvent:
    """Fills of the user. `is_snapshot` marks the history sent right after (re)subscribing."""

    user: str
    fills: tuple[Fill, ...]
    is_snapshot: bool


@dataclass(frozen=True, slots=True)
class UserEventsEvent:
    event: WsUserEvent


@dataclass(frozen=True, slots=True)
class BookEvent:
    book: L2Book


@dataclass(frozen=True, slots=True)
class BboEvent:
    bbo: WsBbo


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The websocket dropped; events stop until `Reconnected`."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The websocket is back and resubscribed. Hyperliquid does not replay: fetch a REST snapshot now."""

    attempt: int
    down_for_s: float


StreamEvent = (
    MidsEvent
    | OrderUpdatesEvent
    | FillsEvent
    | UserEventsEvent
    | BookEvent
    | BboEvent
    | Disconnected
    | Reconnected
)


@runtime_checkable
class EventStream(Protocol):
    """A live stream of typed events. Iterate it from one consumer; `aclose()` ends the iteration."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def watch_book(self, coin: str, *, bbo: bool = False) -> None: ...

    async def unwatch_book(self, coin: str, *, bbo: bool = False) -> None: ...

    def __aiter__(self) -> AsyncIterator[StreamEvent]: ...


@runtime_checkable
class Exchange(Protocol):
    """A venue for one wallet: reads use the master address, actions are signed by the agent key."""

    @property
    def network(self) -> Network: ...

    @property
    def master(self) -> str: ...

    async def meta(self) -> Meta: ...

    async def all_mids(self) -> dict[str, Decimal]: ...

    async def l2_book(self, coin: str) -> L2Book: ...

    async def account_state(self) -> ClearinghouseState: ...

    async def open_orders(self) -> list[FrontendOpenOrder]: ...

    async def fills_since(self, start_ms: int, end_ms: int | None = None) -> list[Fill]: ...

    async def order_status(self, oid_or_cloid: int | str) -> OrderStatusResponse: ...

    async def order_status_by_cloid(self, cloid: str) -> OrderStatusResponse: ...

    async def settle(self, unknown: OutcomeUnknown, *, margin_ms: int = 2_000) -> dict[str, OrderStatusResponse]: ...

    async def place_orders(self, orders: Sequence[OrderRequest], *, grouping: Grouping = "na") -> SendResult: ...

    async def cancel_orders(self, cancels: Sequence[CancelRequest]) -> SendResult: ...

    async def modify_orders(self, modifies: Sequence[ModifyRequest]) -> SendResult: ...

    async def update_leverage(self, coin: str, leverage: int, *, is_cross: bool = True) -> SendResult: ...

    async def update_isolated_margin(self, coin: str, usd: Decimal) -> SendResult: ...

    def stream(self, *, books: Sequence[str] = (), bbos: Sequence[str] = ()) -> EventStream: ...
