"""`HyperliquidBridge`: the async Hyperliquid client of one wallet (mainnet, testnet, or the simulator).

Runs on the caller's event loop: aiohttp for `/info`, `/exchange` and the websocket; the SDK's
signing for actions (inline: ~0.2 ms of CPU). The agent-wallet model: actions are signed by the
agent key (`signer`, an eth_account LocalAccount that is never logged), every query uses the
master address (the agent's own address has an empty account). `check_agent` tells which is which.

Who may call: the gateway (actions), sync (snapshots, stream), doctor and the CLI (reads, checks).
Actions return `SendResult`s (see `revagent.exchange.protocol`), never exceptions for exchange
refusals; `ExchangeUnavailableError` means nothing reached the exchange.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import TypeAdapter

from revagent.errors import ConfigError, NotFoundError
from revagent.exchange.hyperliquid.http import Answered, HttpTransport, RetryPolicy, Unknown
from revagent.exchange.hyperliquid.nonces import NonceSource, wall_clock_ms
from revagent.exchange.hyperliquid.rate_budget import Lane, LocalRateBudget, RateBudget, action_weight, info_weight
from revagent.exchange.hyperliquid.wire import (
    JsonDict,
    cancel_action,
    modify_action,
    order_action,
    signed_payload,
    update_isolated_margin_action,
    update_leverage_action,
)
from revagent.exchange.hyperliquid.ws import HyperliquidStream, ws_url_for
from revagent.exchange.protocol import (
    ActionOk,
    ActionRejected,
    AgentCheck,
    CancelRequest,
    Filled,
    Grouping,
    ItemOutcome,
    ModifyRequest,
    OrderRequest,
    OutcomeUnknown,
    Rejected,
    Resting,
    SendResult,
    Success,
    Waiting,
)
from revagent.exchange.types import (
    ALL_MIDS,
    CANDLES,
    CLEARINGHOUSE_STATE,
    EXCHANGE_RESPONSE,
    EXTRA_AGENTS,
    FRONTEND_OPEN_ORDERS,
    FUNDING_HISTORY,
    L2_BOOK,
    LEDGER_UPDATES,
    META,
    META_AND_ASSET_CTXS,
    OPEN_ORDERS,
    ORDER_STATUS,
    USER_FILLS,
    USER_FUNDING,
    USER_RATE_LIMIT,
    USER_ROLE,
    AssetCtx,
    AssetInfo,
    Candle,
    ClearinghouseState,
    ErrorStatus,
    ExchangeErr,
    ExchangeResponseError,
    ExtraAgent,
    Fill,
    FilledStatus,
    FrontendOpenOrder,
    FundingRecord,
    L2Book,
    LedgerUpdate,
    Meta,
    OpenOrder,
    OrderStatusResponse,
    RestingStatus,
    StatusItem,
    UserFunding,
    UserRateLimit,
    UserRole,
    parse_with,
)
from revagent.models import Network

log = logging.getLogger(__name__)

MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"


def _norm_address(address: str) -> str:
    address = address.strip().lower()
    if not (address.startswith("0x") and len(address) == 42):
        raise ConfigError(f"{address!r} is not a 0x-prefixed 20-byte address")
    int(address, 16)
    return address


class HyperliquidBridge:
    """Async Hyperliquid client for one wallet. Use `async with` or call `aclose()`.

    - `network` decides the signing domain: only "mainnet" signs as mainnet (paper and testnet
      sign as testnet, which is what the simulator verifies).
    - `master` is the account queried and traded; `signer` the agent key (None: read-only bridge).
    - `budget` is shared with everything else that talks to Hyperliquid from this IP.
    - `action_ttl_s`: every signed action carries `expiresAfter` = nonce + ttl, so the exchange refuses
      to execute it later than that; after an `OutcomeUnknown`, an `orderStatus` asked after
      `expires_after_ms` is final. None sends no expiry (then an unknown outcome never becomes final).
    """

    def __init__(
        self,
        *,
        network: Network,
        base_url: str,
        master: str,
        signer: Any | None = None,
        budget: RateBudget | None = None,
        policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        nonces: NonceSource | None = None,
        vault_address: str | None = None,
        action_ttl_s: float | None = 60.0,
        agent_checks: Any | None = None,
    ) -> None:
        self._network: Network = network
        self._master = _norm_address(master)
        self._signer = signer
        self._vault = _norm_address(vault_address) if vault_address else None
        self.budget: RateBudget = budget if budget is not None else LocalRateBudget()
        self._http = HttpTransport(base_url, budget=self.budget, policy=policy, session=session)
        self._nonces = nonces or NonceSource()
        self._action_ttl_ms = round(action_ttl_s * 1000) if action_ttl_s is not None else None
        self._meta: Meta | None = None
        self._meta_lock = asyncio.Lock()
        self._asset_ids: dict[str, int] = {}
        self._streams: list[HyperliquidStream] = []
        self._agent_checks = agent_checks  # an `onboarding.AgentCheckCache` (get/put), or None: always ask

    # ------------------------------------------------------------------------------ identity

    @property
    def network(self) -> Network:
        return self._network

    @property
    def is_mainnet(self) -> bool:
        return self._network == "mainnet"

    @property
    def master(self) -> str:
        """The master account address, lowercase."""
        return self._master

    @property
    def agent_address(self) -> str | None:
        """The signing (agent) address, lowercase, or None for a read-only bridge."""
        return str(self._signer.address).lower() if self._signer is not None else None

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def __repr__(self) -> str:
        return f"HyperliquidBridge(network={self._network!r}, base_url={self.base_url!r}, master={self._master!r})"

    async def __aenter__(self) -> HyperliquidBridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every stream this bridge opened, then the HTTP session it owns."""
        for stream in self._streams:
            await stream.aclose()
        self._streams.clear()
        release = getattr(self.budget, "release", None)
        if release is not None:  # weight reserved by this process and not spent goes back to the shared budget
            try:
                await release()
            except Exception as exc:  # the store may be gone already: the reservation then just expires
                log.debug("could not return the unspent rate budget: %s", exc)
        await self._http.aclose()

    # ---------------------------------------------------------------------------------- info

    @property
    def weight_by_type(self) -> dict[str, int]:
        """Request weight this bridge has sent, by `/info` type and `/exchange` action (every attempt)."""
        return dict(self._http.weight_by_type)

    @property
    def weight_spent(self) -> int:
        return self._http.weight_spent

    async def info(self, payload: JsonDict, *, lane: Lane = "read") -> Any:
        """POST /info with `payload` (weighted by its type) and return the raw decoded JSON."""
        return await self._http.info(payload, weight=info_weight(str(payload.get("type", ""))), lane=lane)

    async def _info_as(self, adapter: TypeAdapter[Any], payload: JsonDict, lane: Lane = "read") -> Any:
        return parse_with(adapter, await self.info(payload, lane=lane), endpoint=str(payload["type"]))

    async def meta(self, *, refresh: bool = False) -> Meta:
        """The perp universe (cached after the first call; `refresh` reloads it)."""
        async with self._meta_lock:  # concurrent first calls share one request
            if self._meta is None or refresh:
                meta: Meta = await self._info_as(META, {"type": "meta"})
                self._meta = meta
                self._asset_ids = {asset.name: index for index, asset in enumerate(meta.universe)}
            return self._meta

    async def asset(self, coin: str) -> tuple[int, AssetInfo]:
        """(asset id, market info) of `coin`; NotFoundError for a market the exchange does not list."""
        meta = await self.meta()
        if coin not in self._asset_ids:
            meta = await self.meta(refresh=True)
        index = self._asset_ids.get(coin)
        if index is None:
            raise NotFoundError(f"no perp market named {coin!r} on {self._network}")
        return index, meta.universe[index]

    async def all_mids(self) -> dict[str, Decimal]:
        mids: dict[str, Decimal] = await self._info_as(ALL_MIDS, {"type": "allMids"})
        return mids

    async def meta_and_asset_ctxs(self) -> tuple[Meta, list[AssetCtx]]:
        result: tuple[Meta, list[AssetCtx]] = await self._info_as(
            META_AND_ASSET_CTXS, {"type": "metaAndAssetCtxs"}
        )
        if self._meta is None:  # the universe comes with the contexts: orders need no `meta` read of their own
            self._meta = result[0]
            self._asset_ids = {asset.name: index for index, asset in enumerate(result[0].universe)}
        return result

    async def account_state(self, user: str | None = None) -> ClearinghouseState:
        """`clearinghouseState` of the master (or `user`)."""
        state: ClearinghouseState = await self._info_as(
            CLEARINGHOUSE_STATE, {"type": "clearinghouseState", "user": user or self._master}
        )
        return state

    async def open_orders(self, user: str | None = None, *, lane: Lane = "read") -> list[FrontendOpenOrder]:
        """`frontendOpenOrders`: every open order with trigger, reduce-only and cloid details (`lane`
        "protect": a stop check's read, ahead of every other read waiting on the rate budget)."""
        orders: list[FrontendOpenOrder] = await self._info_as(
            FRONTEND_OPEN_ORDERS, {"type": "frontendOpenOrders", "user": user or self._master}, lane
        )
        return orders

    async def open_orders_basic(self, user: str | None = None) -> list[OpenOrder]:
        """`openOrders` (the lighter shape without trigger details)."""
        orders: list[OpenOrder] = await self._info_as(
            OPEN_ORDERS, {"type": "openOrders", "user": user or self._master}
        )
        return orders

    async def fills(self, user: str | None = None) -> list[Fill]:
        """`userFills`: the most recent fills (Hyperliquid returns at most 2000)."""
        fills: list[Fill] = await self._info_as(USER_FILLS, {"type": "userFills", "user": user or self._master})
        return fills

    async def fills_since(self, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        """`userFillsByTime` from `start_ms` (inclusive, epoch ms). At most 2000 per call: page by time."""
        payload: JsonDict = {"type": "userFillsByTime", "user": self._master, "startTime": start_ms}
        if end_ms is not None:
            payload["endTime"] = end_ms
        fills: list[Fill] = await self._info_as(USER_FILLS, payload)
        return fills

    async def order_status(self, oid_or_cloid: int | str) -> OrderStatusResponse:
        """`orderStatus` of an order of the master, by exchange oid or by cloid ("unknownOid" if none)."""
        status: OrderStatusResponse = await self._info_as(
            ORDER_STATUS, {"type": "orderStatus", "user": self._master, "oid": oid_or_cloid}
        )
        return status

    async def order_status_by_cloid(self, cloid: str) -> OrderStatusResponse:
        """What the exchange knows of the order with `cloid`: the first question after `OutcomeUnknown`."""
        return await self.order_status(cloid)

    async def settle(self, unknown: OutcomeUnknown, *, margin_ms: int = 2_000) -> dict[str, OrderStatusResponse]:
        """The final `orderStatus` of every cloid of an `OutcomeUnknown`.

        Asks at once; for each cloid the exchange does not know yet, waits until the original send
        has expired (`expires_after_ms` + `margin_ms` for clock skew, on the local clock) and asks
        again. After this returns, an unknown cloid ("unknownOid") can never execute any more: resend
        it (same cloid, new nonce). A known one is the answer: never resend it. Raises ValueError for
        an outcome sent without expiry (`action_ttl_s=None`), which can never be settled.
        """
        statuses = {cloid: await self.order_status_by_cloid(cloid) for cloid in unknown.cloids}
        pending = [cloid for cloid, status in statuses.items() if not status.known]
        if pending:
            if unknown.expires_after_ms is None:
                raise ValueError("an action sent without expiresAfter can never be settled: do not resend it")
            delay_ms = unknown.expires_after_ms + margin_ms - wall_clock_ms()
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
            for cloid in pending:
                statuses[cloid] = await self.order_status_by_cloid(cloid)
        return statuses

    async def clock_skew_ms(self) -> int | None:
        """Local clock minus the exchange's (`clearinghouseState.time`), in ms; None if the exchange omits it.

        Nonces are local epoch ms and must fall within (server - 2 days, server + 1 day).
        """
        sent = wall_clock_ms()
        state = await self.account_state()
        received = wall_clock_ms()
        if state.time is None:
            return None
        return (sent + received) // 2 - state.time

    async def l2_book(self, coin: str) -> L2Book:
        book: L2Book = await self._info_as(L2_BOOK, {"type": "l2Book", "coin": coin})
        return book

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        req = {"coin": coin, "interval": interval, "startTime": start_ms, "endTime": end_ms}
        candles: list[Candle] = await self._info_as(CANDLES, {"type": "candleSnapshot", "req": req})
        return candles

    async def funding_history(self, coin: str, start_ms: int, end_ms: int | None = None) -> list[FundingRecord]:
        payload: JsonDict = {"type": "fundingHistory", "coin": coin, "startTime": start_ms}
        if end_ms is not None:
            payload["endTime"] = end_ms
        records: list[FundingRecord] = await self._info_as(FUNDING_HISTORY, payload)
        return records

    async def user_funding(self, start_ms: int, end_ms: int | None = None) -> list[UserFunding]:
        payload: JsonDict = {"type": "userFunding", "user": self._master, "startTime": start_ms}
        if end_ms is not None:
            payload["endTime"] = end_ms
        records: list[UserFunding] = await self._info_as(USER_FUNDING, payload)
        return records

    async def ledger_updates(self, start_ms: int, end_ms: int | None = None) -> list[LedgerUpdate]:
        """`userNonFundingLedgerUpdates`: deposits, withdrawals, transfers, liquidations."""
        payload: JsonDict = {"type": "userNonFundingLedgerUpdates", "user": self._master, "startTime": start_ms}
        if end_ms is not None:
            payload["endTime"] = end_ms
        updates: list[LedgerUpdate] = await self._info_as(LEDGER_UPDATES, payload)
        return updates

    async def user_rate_limit(self) -> UserRateLimit:
        limit: UserRateLimit = await self._info_as(USER_RATE_LIMIT, {"type": "userRateLimit", "user": self._master})
        return limit

    async def extra_agents(self, master: str | None = None) -> list[ExtraAgent]:
        agents: list[ExtraAgent] = await self._info_as(
            EXTRA_AGENTS, {"type": "extraAgents", "user": master or self._master}
        )
        return agents

    async def user_role(self, address: str) -> UserRole:
        role: UserRole = await self._info_as(USER_ROLE, {"type": "userRole", "user": _norm_address(address)})
        return role

    async def check_agent(self, master: str | None = None, agent: str | None = None, *,
                          fresh: bool = False) -> AgentCheck:
        """Is `agent` (default: this bridge's signer) an approved, unexpired agent of `master`?

        Detects the classic trap of configuring the agent address as the account to query (its
        account is empty): then `problem` says so. Costs two `userRole` (60 each) and one
        `extraAgents` (20) of weight: for doctor and start-up, not for loops. With `agent_checks`
        a positive answer is reused until it expires (`fresh` asks the exchange regardless).
        """
        cache = self._agent_checks
        if cache is not None and not fresh:
            master_addr = _norm_address(master or self._master)
            agent_raw = agent or self.agent_address
            if agent_raw is not None:
                cached: AgentCheck | None = await cache.get(master_addr, _norm_address(agent_raw))
                if cached is not None:
                    return cached
        check = await self._check_agent(master, agent)
        if cache is not None:
            await cache.put(check)
        return check

    async def _check_agent(self, master: str | None, agent: str | None) -> AgentCheck:
        master_addr = _norm_address(master or self._master)
        agent_raw = agent or self.agent_address
        if agent_raw is None:
            raise ConfigError("check_agent needs an agent address (this bridge has no signer)")
        agent_addr = _norm_address(agent_raw)

        def result(ok: bool, problem: str | None = None, found: ExtraAgent | None = None) -> AgentCheck:
            return AgentCheck(
                master=master_addr,
                agent=agent_addr,
                ok=ok,
                problem=problem,
                agent_name=found.name if found else None,
                valid_until_ms=found.valid_until if found else None,
            )

        master_role = await self.user_role(master_addr)
        if master_role.role == "agent":
            owner = master_role.data.user if master_role.data else None
            return result(
                False,
                f"the configured master {master_addr} is itself an agent wallet (of {owner}): queries must use "
                "the master address, the agent's own account is always empty",
            )
        if agent_addr == master_addr:
            return result(True)  # signing with the master key itself: works, no agent involved
        agent_role = await self.user_role(agent_addr)
        if agent_role.role == "missing":
            return result(False, f"agent {agent_addr} is not approved by any account: approve it for {master_addr}")
        if agent_role.role != "agent":
            return result(False, f"{agent_addr} is a {agent_role.role} account, not an agent wallet")
        owner = (agent_role.data.user or "").lower() if agent_role.data else ""
        if owner != master_addr:
            return result(False, f"agent {agent_addr} is approved for {owner or 'another account'}, not {master_addr}")
        found = next((a for a in await self.extra_agents(master_addr) if a.address.lower() == agent_addr), None)
        if found is not None and found.valid_until <= wall_clock_ms():
            return result(False, f"agent {agent_addr} ({found.name}) expired at {found.valid_until} ms", found)
        return result(True, None, found)

    # ------------------------------------------------------------------------------- actions

    async def place_orders(self, orders: Sequence[OrderRequest], *, grouping: Grouping = "na") -> SendResult:
        """Place a batch (an entry and its stop as one `normalTpsl` group, for instance).

        Statuses come back in request order. Every order should carry a cloid: it is what makes
        an `OutcomeUnknown` recoverable (`order_status_by_cloid`).
        """
        if not orders:
            raise ValueError("place_orders needs at least one order")
        assets = [(await self.asset(order.coin))[0] for order in orders]
        action = order_action(orders, assets, grouping)
        lane: Lane = "protect" if all(o.reduce_only for o in orders) else "trade"
        return await self._send("order", action, len(orders), [o.cloid for o in orders], lane)

    async def cancel_orders(self, cancels: Sequence[CancelRequest]) -> SendResult:
        """Cancel by oid or by cloid (one kind per batch). A cancel of a gone order is a `Rejected` status."""
        if not cancels:
            raise ValueError("cancel_orders needs at least one cancel")
        assets = [(await self.asset(cancel.coin))[0] for cancel in cancels]
        action = cancel_action(cancels, assets)
        return await self._send(str(action["type"]), action, len(cancels), [c.cloid for c in cancels], "protect")

    async def modify_orders(self, modifies: Sequence[ModifyRequest]) -> SendResult:
        """`batchModify`: replace each target order by its new order (new oid; the cloid may stay)."""
        if not modifies:
            raise ValueError("modify_orders needs at least one modify")
        assets = [(await self.asset(m.order.coin))[0] for m in modifies]
        action = modify_action(modifies, assets)
        lane: Lane = "protect" if all(m.order.reduce_only for m in modifies) else "trade"
        return await self._send("batchModify", action, len(modifies), [m.order.cloid for m in modifies], lane)

    async def update_leverage(self, coin: str, leverage: int, *, is_cross: bool = True) -> SendResult:
        """Set the leverage (and cross/isolated) of `coin` for the master account."""
        asset, info = await self.asset(coin)
        if leverage > info.max_leverage:
            raise ValueError(f"{coin} allows at most {info.max_leverage}x leverage, asked {leverage}x")
        action = update_leverage_action(asset, leverage, is_cross=is_cross)
        return await self._send("updateLeverage", action, 0, [])

    async def update_isolated_margin(self, coin: str, usd: Decimal) -> SendResult:
        """Move `usd` of margin into (positive) or out of (negative) the isolated `coin` position."""
        asset, _ = await self.asset(coin)
        lane: Lane = "protect" if usd > 0 else "trade"  # adding margin moves the liquidation away
        return await self._send("updateIsolatedMargin", update_isolated_margin_action(asset, usd), 0, [], lane)

    async def _send(
        self, name: str, action: JsonDict, batch_len: int, cloids: Sequence[str | None], lane: Lane = "trade"
    ) -> SendResult:
        if self._signer is None:
            raise ConfigError("this bridge has no agent key: it can read but not trade")
        nonce = self._nonces.next()
        expires = nonce + self._action_ttl_ms if self._action_ttl_ms is not None else None
        payload = signed_payload(
            self._signer,
            action,
            nonce,
            is_mainnet=self.is_mainnet,
            vault_address=self._vault,
            expires_after=expires,
        )
        known_cloids = tuple(c for c in cloids if c is not None)
        posted = await self._http.exchange(payload, weight=action_weight(batch_len), endpoint=f"exchange:{name}",
                                           lane=lane)
        if isinstance(posted, Unknown):
            log.warning("%s nonce %d: outcome unknown: %s", name, nonce, posted.reason)
            return OutcomeUnknown(name, nonce, posted.reason, known_cloids, expires)
        return self._interpret(name, nonce, expires, posted, cloids, known_cloids)

    def _interpret(
        self,
        name: str,
        nonce: int,
        expires: int | None,
        posted: Answered,
        cloids: Sequence[str | None],
        known_cloids: tuple[str, ...],
    ) -> SendResult:
        def unknown(reason: str) -> OutcomeUnknown:
            log.warning("%s nonce %d: outcome unknown: %s", name, nonce, reason)
            return OutcomeUnknown(name, nonce, reason, known_cloids, expires)

        if posted.status >= 400:
            message = f"HTTP {posted.status}: {posted.text[:500]}"
            if posted.ambiguous:
                return unknown(f"refused after an ambiguous attempt ({message})")
            return ActionRejected(name, nonce, message, posted.status)
        try:
            parsed = parse_with(EXCHANGE_RESPONSE, json.loads(posted.text), endpoint=f"exchange:{name}")
        except (ValueError, ExchangeResponseError) as exc:
            return unknown(f"unreadable answer: {exc}")
        if isinstance(parsed, ExchangeErr):
            if posted.ambiguous:
                return unknown(f"refused after an ambiguous attempt ({parsed.response})")
            return ActionRejected(name, nonce, parsed.response)
        raw = parsed.response.data.statuses if parsed.response.data is not None else []
        aligned = len(raw) == len(cloids)
        statuses = tuple(
            _outcome(item, cloids[i] if aligned else None) for i, item in enumerate(raw)
        )
        if posted.ambiguous and any(isinstance(s, Rejected) and "nonce" in s.message.lower() for s in statuses):
            return unknown("a retried send was refused for its nonce: the first attempt may have gone through")
        return ActionOk(name, nonce, statuses)

    # -------------------------------------------------------------------------------- stream

    def stream(self, *, books: Sequence[str] = (), bbos: Sequence[str] = ()) -> HyperliquidStream:
        """A websocket stream of the master's orders, fills and events plus all mids (and books).

        The bridge closes it in `aclose()`; call `start()` on it, then iterate it.
        """
        stream = HyperliquidStream(
            ws_url_for(self.base_url),
            user=self._master,
            session_factory=self._http.session,
            books=books,
            bbos=bbos,
        )
        self._streams.append(stream)
        return stream


def _outcome(item: StatusItem, cloid: str | None) -> ItemOutcome:
    if isinstance(item, RestingStatus):
        return Resting(item.resting.oid, item.resting.cloid or cloid)
    if isinstance(item, FilledStatus):
        body = item.filled
        return Filled(body.oid, body.total_sz, body.avg_px, body.cloid or cloid)
    if isinstance(item, ErrorStatus):
        return Rejected(item.error, cloid)
    if item == "success":
        return Success(cloid)
    if item not in ("waitingForFill", "waitingForTrigger"):
        log.warning("unfamiliar order status %r: treating it as waiting", item)
    return Waiting(item, cloid)
