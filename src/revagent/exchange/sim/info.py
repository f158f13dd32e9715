"""`POST /info`: Hyperliquid's query types with its JSON shapes (numbers as decimal strings).

An unknown type gets the real exchange's answer: HTTP 422 with a plain-text body.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from revagent.exchange.sim import accounting as acc
from revagent.exchange.sim.candles import INTERVALS
from revagent.exchange.sim.model import Order
from revagent.exchange.sim.numbers import ZERO, fmt, fmt_px, fmt_usd
from revagent.exchange.sim.venue import Venue

DESERIALIZE = "Failed to deserialize the JSON body into the target type"
MAX_FILLS = 2000


class InfoError(Exception):
    """A request that Hyperliquid would refuse: answered with HTTP 422 and this text."""


def _user(body: dict[str, Any]) -> str:
    user = body.get("user")
    if not isinstance(user, str) or len(user) != 42 or not user.startswith("0x"):
        raise InfoError(f"{DESERIALIZE}: missing or invalid field `user`")
    return user.lower()


def _coin(venue: Venue, coin: Any) -> str:
    if not isinstance(coin, str) or coin not in venue.markets:
        raise InfoError(f"{DESERIALIZE}: unknown coin `{coin}`")
    return coin


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InfoError(f"{DESERIALIZE}: missing or invalid field `{key}`")
    return value


def frontend_order(order: Order, venue: Venue, *, with_children: bool = True) -> dict[str, Any]:
    children = []
    if with_children:
        for oid in order.children:
            child = venue.orders.get(oid)
            if child is not None and child.status == "open":
                children.append(frontend_order(child, venue, with_children=False))
    return {
        "coin": order.coin, "side": order.side, "limitPx": fmt(order.limit_px), "sz": fmt(order.sz),
        "oid": order.oid, "timestamp": order.timestamp, "triggerCondition": order.trigger_condition(),
        "isTrigger": order.trigger is not None and not order.triggered,
        "triggerPx": fmt(order.trigger.trigger_px) if order.trigger is not None else "0.0",
        "children": children, "isPositionTpsl": order.is_position_tpsl, "reduceOnly": order.reduce_only,
        "orderType": order.order_type(), "origSz": fmt(order.orig_sz),
        "tif": order.tif if order.trigger is None or order.triggered else None, "cloid": order.cloid,
    }


def _open_orders(venue: Venue, user: str) -> list[Order]:
    return sorted(venue.open_by_user.get(user, {}).values(), key=lambda o: -o.oid)


def asset_ctx(venue: Venue, coin: str) -> dict[str, Any]:
    m = venue.markets[coin]
    bid, ask = m.bbo()
    oi = sum((a.positions[coin].szi for a in venue.accounts.values()
              if coin in a.positions and a.positions[coin].szi > 0), ZERO)
    doc = {
        "funding": fmt(acc.hourly_funding_rate(m.premium)), "openInterest": fmt(oi), "prevDayPx": fmt(m.prev_day_px),
        "dayNtlVlm": fmt_usd(m.day_ntl_vlm), "premium": fmt(m.premium), "oraclePx": fmt_px(m.oracle),
        "markPx": fmt(m.mid), "midPx": fmt(m.mid),
        "impactPxs": [fmt(bid) if bid is not None else None, fmt(ask) if ask is not None else None],
        "dayBaseVlm": fmt(m.day_base_vlm),
    }
    if m.upstream_ctx is not None:  # the real market's funding, open interest and volumes
        for key in ("funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "dayBaseVlm"):
            value = m.upstream_ctx.get(key)
            if isinstance(value, str):
                doc[key] = value
    return doc


def all_mids(venue: Venue) -> dict[str, str]:
    return {c: fmt(m.mid) for c, m in venue.markets.items()}


def l2_book(venue: Venue, coin: str) -> dict[str, Any]:
    return {"coin": coin, "time": venue.now_ms, "levels": venue.markets[coin].l2_levels()}


def bbo(venue: Venue, coin: str) -> dict[str, Any]:
    levels = venue.markets[coin].l2_levels(depth=1)
    return {"coin": coin, "time": venue.now_ms, "bbo": [levels[0][0] if levels[0] else None,
                                                        levels[1][0] if levels[1] else None]}


def clearinghouse(venue: Venue, user: str) -> dict[str, Any]:
    acct = venue.view_account(user)
    doc = acc.clearinghouse_json(venue.summary(acct), venue.now_ms)
    for entry in doc["assetPositions"]:
        entry["position"]["maxTradeSzs"] = _max_trade_szs(venue, user, entry["position"]["coin"])
    return doc


def user_fills(venue: Venue, user: str) -> list[dict[str, Any]]:
    return list(reversed(venue.view_account(user).fills[-MAX_FILLS:]))


def order_status(venue: Venue, user: str, ref: Any) -> dict[str, Any]:
    oid: int | None = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        oid = ref
    elif isinstance(ref, str):
        oid = venue.cloids.get((user, ref))
    order = venue.orders.get(oid) if oid is not None else None
    if order is None or order.user != user:
        return {"status": "unknownOid"}
    return {"status": "order", "order": {"order": frontend_order(order, venue), "status": order.status,
                                         "statusTimestamp": order.status_ts}}


def _in_range(items: list[dict[str, Any]], start: int, end: int | None) -> list[dict[str, Any]]:
    return [x for x in items if x["time"] >= start and (end is None or x["time"] <= end)]


def _role(venue: Venue, user: str) -> dict[str, Any]:
    agent = venue.agents.get(user)
    if agent is not None:
        return {"role": "agent", "data": {"user": agent.master}}
    return {"role": "user"} if user in venue.accounts else {"role": "missing"}


def _meta(venue: Venue, body: dict[str, Any]) -> dict[str, Any]:
    """`meta` of the main perp dex (`dex` "" or absent); builder-deployed dexes are not listed here."""
    dex = body.get("dex", "")
    if dex not in ("", None):
        raise InfoError(f"{DESERIALIZE}: unknown perp dex `{dex}`")
    return venue.meta_json()


def _max_trade_szs(venue: Venue, user: str, coin: str) -> list[str]:
    """[max buy, max sell] size now: free margin at the coin's leverage, plus what closes the position."""
    acct = venue.view_account(user)
    spec, mark = venue.specs[coin], venue.markets[coin].mid
    if mark <= 0:
        return ["0.0", "0.0"]
    free = venue.summary(acct).withdrawable * acc.leverage_of(acct, spec).value / mark
    pos = acct.positions.get(coin)
    szi = pos.szi if pos is not None else ZERO
    q = Decimal(1).scaleb(-spec.sz_decimals)
    return [fmt((free + max(ZERO, -szi)).quantize(q, ROUND_DOWN)), fmt((free + max(ZERO, szi)).quantize(q, ROUND_DOWN))]


def _active_asset_data(venue: Venue, body: dict[str, Any]) -> dict[str, Any]:
    user, coin = _user(body), _coin(venue, body.get("coin"))
    acct = venue.view_account(user)
    lev = acc.leverage_of(acct, venue.specs[coin])
    sizes = _max_trade_szs(venue, user, coin)
    avail = fmt_usd(venue.summary(acct).withdrawable)
    return {"user": user, "coin": coin, "leverage": {"type": "cross" if lev.is_cross else "isolated",
                                                     "value": lev.value},
            "maxTradeSzs": sizes, "availableToTrade": [avail, avail], "markPx": fmt(venue.markets[coin].mid)}


def _portfolio(venue: Venue, body: dict[str, Any]) -> list[Any]:
    """Hyperliquid's periods with the shape it answers; the history is the current point only."""
    acct = venue.view_account(_user(body))
    value = venue.summary(acct).account_value
    deposits = sum((Decimal(str(e["delta"].get("usdc", "0"))) * (1 if e["delta"].get("type") == "deposit" else -1)
                    for e in acct.ledger if e["delta"].get("type") in ("deposit", "withdraw")), ZERO)
    point = {"accountValueHistory": [[venue.now_ms, fmt_usd(value)]],
             "pnlHistory": [[venue.now_ms, fmt_usd(value - deposits)]], "vlm": fmt_usd(acct.cum_vlm)}
    periods = ("day", "week", "month", "allTime", "perpDay", "perpWeek", "perpMonth", "perpAllTime")
    return [[p, dict(point)] for p in periods]


def _web_data2(venue: Venue, body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    agents = [a for a in venue.agents.values() if a.master == user]
    return {
        "clearinghouseState": clearinghouse(venue, user), "leadingVaults": [], "totalVaultEquity": "0.0",
        "openOrders": [frontend_order(o, venue) for o in _open_orders(venue, user)],
        "agentAddress": agents[0].address if agents else None,
        "agentValidUntil": agents[0].valid_until if agents else None,
        "cumLedger": fmt_usd(venue.view_account(user).balance), "meta": venue.meta_json(),
        "assetCtxs": [asset_ctx(venue, c) for c in venue.markets], "serverTime": venue.now_ms, "isVault": False,
        "user": user, "twapStates": [], "spotState": {"balances": []}, "spotAssetCtxs": [],
    }


def _handlers() -> dict[str, Callable[[Venue, dict[str, Any]], Any]]:
    return {
        "meta": _meta,
        "spotMeta": lambda v, b: v.upstream_spot_meta or {"tokens": [], "universe": []},
        "metaAndAssetCtxs": lambda v, b: [_meta(v, b), [asset_ctx(v, c) for c in v.markets]],
        "activeAssetData": _active_asset_data,
        "portfolio": _portfolio,
        "webData2": _web_data2,
        "spotMetaAndAssetCtxs": lambda v, b: [{"tokens": [], "universe": []}, []],
        "perpDexs": lambda v, b: [None],
        "allMids": lambda v, b: all_mids(v),
        "clearinghouseState": lambda v, b: clearinghouse(v, _user(b)),
        "spotClearinghouseState": lambda v, b: {"balances": []},
        "openOrders": lambda v, b: [
            {"coin": o.coin, "side": o.side, "limitPx": fmt(o.limit_px), "sz": fmt(o.sz), "oid": o.oid,
             "timestamp": o.timestamp, "origSz": fmt(o.orig_sz), **({"cloid": o.cloid} if o.cloid else {})}
            for o in _open_orders(v, _user(b))],
        "frontendOpenOrders": lambda v, b: [frontend_order(o, v) for o in _open_orders(v, _user(b))],
        "historicalOrders": lambda v, b: [
            {"order": frontend_order(o, v), "status": o.status, "statusTimestamp": o.status_ts}
            for o in sorted(v.orders.values(), key=lambda o: -o.oid) if o.user == _user(b)][:2000],
        "userFills": lambda v, b: user_fills(v, _user(b)),
        "userFillsByTime": lambda v, b: list(reversed(_in_range(
            v.view_account(_user(b)).fills, _int(b, "startTime"), b.get("endTime"))))[:MAX_FILLS],
        "orderStatus": lambda v, b: order_status(v, _user(b), b.get("oid")),
        "l2Book": lambda v, b: l2_book(v, _coin(v, b.get("coin"))),
        "candleSnapshot": _candles,
        "fundingHistory": lambda v, b: _in_range(
            v.funding_history[_coin(v, b.get("coin"))], _int(b, "startTime"), b.get("endTime"))[:500],
        "userFunding": lambda v, b: _in_range(
            v.view_account(_user(b)).funding, _int(b, "startTime"), b.get("endTime"))[:500],
        "userNonFundingLedgerUpdates": lambda v, b: _in_range(
            v.view_account(_user(b)).ledger, _int(b, "startTime", 0), b.get("endTime")),
        "userRateLimit": lambda v, b: _rate_limit(v, _user(b)),
        "userFees": lambda v, b: {"userCrossRate": fmt(acc.TAKER_FEE), "userAddRate": fmt(acc.MAKER_FEE),
                                  "activeReferralDiscount": "0.0", "dailyUserVlm": []},
        "extraAgents": lambda v, b: [
            {"name": a.name, "address": a.address, "validUntil": a.valid_until}
            for a in v.agents.values() if a.master == _user(b)],
        "userRole": lambda v, b: _role(v, _user(b)),
        "subAccounts": lambda v, b: [],
        "activeAssetCtx": lambda v, b: {"coin": b.get("coin"), "ctx": asset_ctx(v, _coin(v, b.get("coin")))},
    }


def _rate_limit(venue: Venue, user: str) -> dict[str, Any]:
    acct = venue.view_account(user)
    return {"cumVlm": fmt(acct.cum_vlm), "nRequestsUsed": acct.n_requests,
            "nRequestsCap": 10_000 + int(acct.cum_vlm)}


def _candles(venue: Venue, body: dict[str, Any]) -> list[dict[str, Any]]:
    req = body.get("req")
    if not isinstance(req, dict) or req.get("interval") not in INTERVALS:
        raise InfoError(f"{DESERIALIZE}: missing or invalid field `req`")
    coin = _coin(venue, req.get("coin"))
    return venue.markets[coin].candles.snapshot(req["interval"], _int(req, "startTime"),
                                                _int(req, "endTime", venue.now_ms))


HANDLERS = _handlers()


def handle_info(venue: Venue, body: Any) -> tuple[int, Any]:
    """(HTTP status, JSON document) or (422, plain text) for one `/info` body."""
    if not isinstance(body, dict):
        return 422, f"{DESERIALIZE}: expected an object"
    handler = HANDLERS.get(str(body.get("type")))
    if handler is None:
        return 422, f"{DESERIALIZE}: unknown variant `{body.get('type')}`"
    try:
        return 200, handler(venue, body)
    except InfoError as exc:
        return 422, str(exc)
