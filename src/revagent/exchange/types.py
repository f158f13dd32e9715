"""Typed Hyperliquid responses: `/info` answers, `/exchange` answers and websocket payloads.

Every model parses the wire JSON as Hyperliquid sends it (camelCase keys, numbers as decimal
strings) into snake_case fields with `Decimal` numbers. Unknown keys are ignored, so a newer API
that adds fields still parses; fields that older records lack (`cumFunding`, `tid`, `maxLeverage`
on positions, `time` on clearinghouseState...) are optional.

Parse through `parse_with(ADAPTER, data, endpoint=...)`: a response that does not fit raises one
`ExchangeResponseError` that names the endpoint and the first offending field, never a bare
KeyError or a pydantic traceback. The module does no I/O and any part may import it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from revagent.errors import ExitCode, RevagentError
from revagent.models import Fill as Fill  # the ledger facts live in models (the store records them)
from revagent.models import LedgerDelta as LedgerDelta
from revagent.models import LedgerUpdate as LedgerUpdate
from revagent.models import UserFunding as UserFunding
from revagent.models import UserFundingDelta as UserFundingDelta
from revagent.models import WireModel as _Wire

T = TypeVar("T")


class ExchangeResponseError(RevagentError):
    """The exchange answered something we cannot read (not JSON, a missing or mistyped field).

    `endpoint` is the request type (`clearinghouseState`, `exchange:order`, `ws:orderUpdates`...);
    `field` is the dotted path of the first bad field (wire names), or None when the whole body is bad.
    """

    exit_code = ExitCode.EXCHANGE_UNREACHABLE
    code = "exchange_bad_response"

    def __init__(self, endpoint: str, detail: str, *, field: str | None = None) -> None:
        where = f" field '{field}'" if field else ""
        super().__init__(f"malformed {endpoint} response:{where} {detail}".replace(":  ", ": "))
        self.endpoint = endpoint
        self.field = field
        self.detail = detail


# --------------------------------------------------------------------------------------- /info


class AssetInfo(_Wire):
    """One perp market of `meta.universe`; its index in the universe is its asset id."""

    name: str
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False
    is_delisted: bool = False


class Meta(_Wire):
    universe: list[AssetInfo]


class AssetCtx(_Wire):
    """Live context of one market (second element of `metaAndAssetCtxs`, same order as the universe)."""

    funding: Decimal
    mark_px: Decimal
    mid_px: Decimal | None = None
    oracle_px: Decimal
    open_interest: Decimal
    premium: Decimal | None = None
    impact_pxs: list[Decimal] | None = None
    day_ntl_vlm: Decimal
    prev_day_px: Decimal


class Leverage(_Wire):
    type: Literal["cross", "isolated"]
    value: int
    raw_usd: Decimal | None = None


class CumFunding(_Wire):
    all_time: Decimal
    since_open: Decimal
    since_change: Decimal


class Position(_Wire):
    """A perp position; `szi` is signed (negative = short). `liquidation_px` is None when none applies."""

    coin: str
    szi: Decimal
    entry_px: Decimal | None = None
    position_value: Decimal
    unrealized_pnl: Decimal
    return_on_equity: Decimal
    liquidation_px: Decimal | None
    margin_used: Decimal
    max_leverage: int | None = None
    leverage: Leverage
    cum_funding: CumFunding | None = None


class AssetPosition(_Wire):
    type: str = "oneWay"
    position: Position


class MarginSummary(_Wire):
    account_value: Decimal
    total_ntl_pos: Decimal
    total_raw_usd: Decimal
    total_margin_used: Decimal


class ClearinghouseState(_Wire):
    """The perp account of one user (`clearinghouseState`): positions, margin and withdrawable USDC."""

    asset_positions: list[AssetPosition]
    margin_summary: MarginSummary
    cross_margin_summary: MarginSummary
    cross_maintenance_margin_used: Decimal | None = None
    withdrawable: Decimal
    time: int | None = None

    @property
    def positions(self) -> list[Position]:
        return [ap.position for ap in self.asset_positions]


class OpenOrder(_Wire):
    """An entry of `openOrders`; `side` is "B" (bid, buy) or "A" (ask, sell)."""

    coin: str
    limit_px: Decimal
    oid: int
    side: Literal["A", "B"]
    sz: Decimal
    timestamp: int
    orig_sz: Decimal | None = None
    cloid: str | None = None


class FrontendOpenOrder(OpenOrder):
    """An entry of `frontendOpenOrders` (also the `order` inside `orderStatus` and `historicalOrders`)."""

    is_trigger: bool = False
    is_position_tpsl: bool = False
    order_type: str = "Limit"
    reduce_only: bool = False
    tif: str | None = None
    trigger_condition: str = "N/A"
    trigger_px: Decimal | None = None
    children: list[FrontendOpenOrder] = Field(default_factory=list)


class OrderStatusEntry(_Wire):
    order: FrontendOpenOrder
    status: str
    status_timestamp: int


class OrderStatusResponse(_Wire):
    """`orderStatus`: `status` is "order" with `order` set, or "unknownOid" when the exchange has no such order."""

    status: str
    order: OrderStatusEntry | None = None

    @property
    def known(self) -> bool:
        return self.status == "order" and self.order is not None


class L2Level(_Wire):
    px: Decimal
    sz: Decimal
    n: int


class L2Book(_Wire):
    """`l2Book` (and websocket `l2Book`): `levels` is (bids best first, asks best first)."""

    coin: str
    time: int
    levels: tuple[list[L2Level], list[L2Level]]


class Candle(_Wire):
    open_time: int = Field(alias="t")
    close_time: int = Field(alias="T")
    coin: str = Field(alias="s")
    interval: str = Field(alias="i")
    open: Decimal = Field(alias="o")
    close: Decimal = Field(alias="c")
    high: Decimal = Field(alias="h")
    low: Decimal = Field(alias="l")
    volume: Decimal = Field(alias="v")
    trades: int = Field(alias="n")


class FundingRecord(_Wire):
    """One entry of `fundingHistory` (the market's funding rate at `time`)."""

    coin: str
    funding_rate: Decimal
    premium: Decimal | None = None
    time: int


class UserRateLimit(_Wire):
    cum_vlm: Decimal
    n_requests_used: int
    n_requests_cap: int


class ExtraAgent(_Wire):
    """An approved agent (API) wallet of a master account (`extraAgents`); `valid_until` in epoch ms."""

    name: str
    address: str
    valid_until: int


class UserRoleData(_Wire):
    user: str | None = None
    master: str | None = None


class UserRole(_Wire):
    """`userRole`: role is "missing", "user", "agent" (data.user = its master), "vault" or "subAccount"."""

    role: str
    data: UserRoleData | None = None


# ----------------------------------------------------------------------------------- /exchange


class RestingBody(_Wire):
    oid: int
    cloid: str | None = None


class FilledBody(_Wire):
    total_sz: Decimal
    avg_px: Decimal
    oid: int
    cloid: str | None = None


class RestingStatus(_Wire):
    resting: RestingBody


class FilledStatus(_Wire):
    filled: FilledBody


class ErrorStatus(_Wire):
    error: str


# "success" (cancel, modify), "waitingForFill" / "waitingForTrigger" (normalTpsl children).
StatusItem = RestingStatus | FilledStatus | ErrorStatus | str


class StatusData(_Wire):
    statuses: list[StatusItem]


class OkBody(_Wire):
    """`response` of an accepted action: type "order", "cancel", "batchModify" or "default"."""

    type: str
    data: StatusData | None = None


class ExchangeOk(_Wire):
    status: Literal["ok"]
    response: OkBody


class ExchangeErr(_Wire):
    """The whole request was refused (`{"status":"err","response":"text"}`): nothing happened."""

    status: Literal["err"]
    response: str


ExchangeResponse = Annotated[ExchangeOk | ExchangeErr, Field(discriminator="status")]


# ---------------------------------------------------------------------------------- websocket


class WsAllMids(_Wire):
    mids: dict[str, Decimal]


class WsBasicOrder(_Wire):
    coin: str
    side: Literal["A", "B"]
    limit_px: Decimal
    sz: Decimal
    oid: int
    timestamp: int
    orig_sz: Decimal
    cloid: str | None = None
    reduce_only: bool | None = None


class WsOrderUpdate(_Wire):
    """One element of the `orderUpdates` channel; `status` is open, filled, canceled, triggered, rejected..."""

    order: WsBasicOrder
    status: str
    status_timestamp: int


class WsUserFills(_Wire):
    """`userFills` channel: the first message after subscribing has `is_snapshot` true (history)."""

    is_snapshot: bool = False
    user: str
    fills: list[Fill]


class WsUserFunding(_Wire):
    time: int
    coin: str
    usdc: Decimal
    szi: Decimal
    funding_rate: Decimal


class WsLiquidation(_Wire):
    lid: int | None = None
    liquidator: str | None = None
    liquidated_user: str | None = None
    liquidated_ntl_pos: Decimal | None = None
    liquidated_account_value: Decimal | None = None


class WsNonUserCancel(_Wire):
    coin: str
    oid: int


class WsUserEvent(_Wire):
    """`user` channel (subscription `userEvents`): exactly one of the fields is set per message."""

    fills: list[Fill] | None = None
    funding: WsUserFunding | None = None
    liquidation: WsLiquidation | None = None
    non_user_cancel: list[WsNonUserCancel] | None = None


class WsBbo(_Wire):
    """`bbo` channel: best bid and best ask, each None when that side is empty."""

    coin: str
    time: int
    bbo: tuple[L2Level | None, L2Level | None]


# ------------------------------------------------------------------------------------ parsing

META = TypeAdapter(Meta)
ALL_MIDS = TypeAdapter(dict[str, Decimal])
META_AND_ASSET_CTXS = TypeAdapter(tuple[Meta, list[AssetCtx]])
CLEARINGHOUSE_STATE = TypeAdapter(ClearinghouseState)
OPEN_ORDERS = TypeAdapter(list[OpenOrder])
FRONTEND_OPEN_ORDERS = TypeAdapter(list[FrontendOpenOrder])
USER_FILLS = TypeAdapter(list[Fill])
ORDER_STATUS = TypeAdapter(OrderStatusResponse)
L2_BOOK = TypeAdapter(L2Book)
CANDLES = TypeAdapter(list[Candle])
FUNDING_HISTORY = TypeAdapter(list[FundingRecord])
USER_FUNDING = TypeAdapter(list[UserFunding])
LEDGER_UPDATES = TypeAdapter(list[LedgerUpdate])
USER_RATE_LIMIT = TypeAdapter(UserRateLimit)
EXTRA_AGENTS = TypeAdapter(list[ExtraAgent])
USER_ROLE = TypeAdapter(UserRole)
HISTORICAL_ORDERS = TypeAdapter(list[OrderStatusEntry])
EXCHANGE_RESPONSE: TypeAdapter[ExchangeOk | ExchangeErr] = TypeAdapter(ExchangeResponse)
WS_ALL_MIDS = TypeAdapter(WsAllMids)
WS_ORDER_UPDATES = TypeAdapter(list[WsOrderUpdate])
WS_USER_FILLS = TypeAdapter(WsUserFills)
WS_USER_EVENT = TypeAdapter(WsUserEvent)
WS_BBO = TypeAdapter(WsBbo)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_with(adapter: TypeAdapter[T], data: Any, *, endpoint: str) -> T:
    """Validate `data` (decoded JSON) with `adapter`; raise `ExchangeResponseError` naming the field."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        detail = f"{first['msg']}{more}; got {_short(first.get('input'))}"
        raise ExchangeResponseError(endpoint, detail, field=_field_path(first["loc"]) or None) from None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
