"""Where a wallet trades: Hyperliquid mainnet, testnet, or the local paper venue (the simulator).

Paper and live share one code path: the bridge, pointed at a different base URL.
"""

from __future__ import annotations

import asyncio
import importlib

from revagent.config import Config, ResolvedWallet
from revagent.errors import ExchangeUnavailableError


async def venue_url(config: Config, wallet: ResolvedWallet) -> str:
    """The base URL of the wallet's venue; for paper, starts the shared local venue if needed."""
    if wallet.network != "paper":  # the bridge's import (signing, aiohttp) only for a real network
        from revagent.exchange.hyperliquid.bridge import MAINNET_API_URL, TESTNET_API_URL

        return MAINNET_API_URL if wallet.network == "mainnet" else TESTNET_API_URL
    if config.paper.venue_url:
        return config.paper.venue_url.rstrip("/")
    try:
        service = importlib.import_module("revagent.exchange.sim.service")
    except ImportError as exc:  # pragma: no cover - the simulator ships with the package
        raise ExchangeUnavailableError(f"the paper venue is not available: {exc}") from None
    try:
        url: str = await asyncio.to_thread(service.ensure_running, config.data_path / "venue",
                                           balance=str(config.paper.balance), prices=config.paper.prices,
                                           upstream=config.paper.upstream)
    except service.VenueUnavailable as exc:
        raise ExchangeUnavailableError(str(exc)) from None
    return url


async def paper_price_source(base_url: str) -> str | None:
    """One line saying where the paper venue's prices come from ("live prices from Hyperliquid",
    "synthetic prices: Hyperliquid unreachable", "prices frozen: ..."), or None when the venue does not say."""
    service = importlib.import_module("revagent.exchange.sim.service")
    doc = await asyncio.to_thread(service.price_source, base_url)
    summary = doc.get("summary") if isinstance(doc, dict) else None
    return summary if isinstance(summary, str) else None
