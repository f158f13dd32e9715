"""Read-only one-shots on a paper wallet with no owner: the account view read straight from the
paper venue (four `/info` requests in parallel) and the risk state from the store, without starting
a session (no lease, no exchange bridge: its signing chain and aiohttp cost most of a second to
import) and without spending a rate budget (the paper venue has none unless one is configured).

Anything else (an owner runs, a real network, a paper budget set) returns None: the caller then
goes through `remote.call`, exactly as before. The document has the shape of the owner's
`account.view` answer.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revagent.config import Config, ResolvedWallet
    from revagent.risk import AccountView

INFO_TIMEOUT_S = 10.0


def _post_info(base_url: str, payload: dict[str, Any]) -> Any:
    import urllib.error
    import urllib.request

    from revagent.errors import ExchangeUnavailableError

    req = urllib.request.Request(base_url + "/info", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=INFO_TIMEOUT_S) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ExchangeUnavailableError(f"the paper venue did not answer {payload['type']}: {exc}") from None


async def account_view(config: Config, wallet: ResolvedWallet) -> dict[str, Any] | None:
    """`account.view` for a paper wallet nobody owns, or None (then ask `remote.call`)."""
    return await _unowned(config, wallet, "account.view")


async def risk_show(config: Config, wallet: ResolvedWallet) -> dict[str, Any] | None:
    """`risk.show` for a paper wallet nobody owns, or None (then ask `remote.call`)."""
    return await _unowned(config, wallet, "risk.show")


async def _unowned(config: Config, wallet: ResolvedWallet, what: str) -> dict[str, Any] | None:
    if wallet.network != "paper" or config.rate.paper_weight_per_minute:
        return None
    from revagent.models import utc_now
    from revagent.runtime.session import open_redis, resolve_session_id
    from revagent.store.keys import Keyspace
    from revagent.store.lease import current_holder

    redis = await open_redis(config)
    try:
        keys = Keyspace(await resolve_session_id(config, wallet))
        if await current_holder(redis, keys) is not None:
            return None  # the owner's live view is the one to show
        from revagent.risk import risk_usage, status
        from revagent.store.risk import RiskStore

        risk = RiskStore(redis, keys, wallet.risk)
        settings, risk_state = await risk.settings(), await risk.get()
        now = utc_now()
        doc: dict[str, Any] = {"status": status(risk_state, now, settings).model_dump(mode="json")}
        if what == "risk.show":
            sources = await risk.sources()
            doc = {"settings": {k: {"value": v, "source": sources[k]}
                                for k, v in settings.model_dump(mode="json").items()}, **doc}
        try:
            account = await _read_account(config, wallet, redis, keys)
        except Exception as exc:
            if what == "account.view":
                raise
            doc["usage_error"] = str(exc)  # the settings and state are still worth showing
            return doc
        if what == "account.view":
            doc = {"account": account.model_dump(mode="json"), "risk": doc["status"]}
        doc["usage"] = risk_usage(account, settings, risk_state, now).model_dump(mode="json")
        return doc
    finally:
        await redis.aclose()


async def _read_account(config: Config, wallet: ResolvedWallet, redis: Any, keys: Any) -> AccountView:
    """The account as the exchange has it now, with the wallet's open trade plans."""
    from revagent.exchange.types import (
        ALL_MIDS,
        CLEARINGHOUSE_STATE,
        FRONTEND_OPEN_ORDERS,
        META_AND_ASSET_CTXS,
        parse_with,
    )
    from revagent.models import utc_now
    from revagent.store.orders import TradePlans
    from revagent.sync.projection import project_account
    from revagent.venue import venue_url

    base_url = await venue_url(config, wallet)
    user = keys.sid.address
    raw_state, raw_orders, raw_ctxs, raw_mids = await asyncio.gather(*(
        asyncio.to_thread(_post_info, base_url, payload) for payload in (
            {"type": "clearinghouseState", "user": user}, {"type": "frontendOpenOrders", "user": user},
            {"type": "metaAndAssetCtxs"}, {"type": "allMids"})))
    state = parse_with(CLEARINGHOUSE_STATE, raw_state, endpoint="clearinghouseState")
    orders = parse_with(FRONTEND_OPEN_ORDERS, raw_orders, endpoint="frontendOpenOrders")
    meta, ctxs = parse_with(META_AND_ASSET_CTXS, raw_ctxs, endpoint="metaAndAssetCtxs")
    mids = parse_with(ALL_MIDS, raw_mids, endpoint="allMids")
    plans = await TradePlans(redis, keys).open_trades()
    now = utc_now()
    return project_account(state, orders, meta, ctxs, mids, plans=plans, price_time=now, as_of=now)
