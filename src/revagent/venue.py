"""Where a wallet trades: Hyperliquid mainnet, testnet, or the local paper venue (the simulator).

Paper and live share one code path: the bridge, pointed at a different base URL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from revagent.config import Config, ResolvedWallet
from revagent.errors import ExchangeUnavailableError


async def venue_url(config: Config, wallet: ResolvedWallet) -> str:
    """The base URL of the wallet's venue; for paper, starts the shared local venue if needed."""
    if wallet.network != "paper":  # the bridge's import (signing, aiohttp) only for a real network
        from revagent.exchange.hyperliquid.bridge import MAINNET_API_URL, TESTNET_API_URL

        return MAINNET_API_URL if wallet.network == "mainnet" else TESTNET_API_URL
    if config.paper.venue_url:
        return config.paper.venue_url.rstrip("/")
    from revagent.exchange.sim import service  # the simulator's start-up code, only for paper

    try:
        url: str = await asyncio.to_thread(service.ensure_running, config.data_path / "venue",
                                           balance=str(config.paper.balance), prices=paper_prices(config),
                                           upstream=config.paper.upstream)
    except service.VenueUnavailable as exc:
        raise ExchangeUnavailableError(str(exc)) from None
    return url


def paper_prices(config: Config) -> str:
    """`[paper] prices` for the venue process: a relative `replay:FILE` is made absolute, against the config
    file's directory (the working directory when the settings come from elsewhere)."""
    prices = config.paper.prices
    if not prices.startswith("replay:"):
        return prices
    path = Path(prices.removeprefix("replay:")).expanduser()
    if not path.is_absolute():
        source = Path(config.source)
        base = source.parent if source.suffix == ".toml" else Path.cwd()
        path = base / path
    return f"replay:{path.resolve()}"


async def paper_price_doc(base_url: str) -> dict[str, object] | None:
    """The paper venue's `/info revagentPriceSource` answer (`prices`, `state`, `summary`, ...), or None when
    the venue does not say. The sync loop asks it every few seconds (`state` "disconnected": prices frozen)."""
    from revagent.exchange.sim import service

    doc: dict[str, object] | None = await asyncio.to_thread(service.price_source, base_url)
    return doc


async def paper_price_source(base_url: str) -> str | None:
    """One line saying where the paper venue's prices come from ("live prices from Hyperliquid",
    "synthetic prices: Hyperliquid unreachable", "prices frozen: ..."), or None when the venue does not say."""
    doc = await paper_price_doc(base_url)
    summary = doc.get("summary") if isinstance(doc, dict) else None
    return summary if isinstance(summary, str) else None


def running_paper_venue(config: Config) -> str | None:
    """The base URL of the paper venue if one runs (never starts one): `[paper] venue_url`, or the local
    venue revagent started for this data directory. Blocking (a local HTTP probe): call it in a thread."""
    if config.paper.venue_url:
        return config.paper.venue_url.rstrip("/")
    from revagent.exchange.sim import service

    st = service.status(config.data_path / "venue")
    return st.url if st.running else None
