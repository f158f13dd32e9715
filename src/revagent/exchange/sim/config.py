"""The simulator's settings (pydantic at the boundary: the CLI and embedding tests build one)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SimConfig(BaseModel):
    """How one simulator runs.

    - `port=0` picks a free port (the bound one is in `SimServer.base_url`).
    - `prices`: "synthetic", "replay:FILE" or "live".
    - `manual_clock=True`: market time starts at `start_ms` (or now) and moves only through controls
      (`advance`), and no background ticker runs: fully deterministic with `seed`.
    - `state_file`: the venue's JSON state, loaded at start and written atomically after changes.
    - `controls`: enable the loopback-only `POST /_sim/...` routes.
    - `history_minutes`: with synthetic prices, candles for this many minutes before the start.
    - `ip_weight_per_minute`: enforce Hyperliquid's IP rate limit (HTTP 429 over budget); off by default.
    - `ws_idle_timeout_s`: close a websocket that sent nothing for this long (Hyperliquid: 60 s); off by default.
    - `auto_fund`: an unknown signer gets a funded account (handy in unit tests); False answers Hyperliquid's
      "User or API Wallet ... does not exist." / "Must deposit before performing actions." instead: accounts
      are then funded explicitly (`deposit`, or `POST /_paper/fund` from loopback: the paper wallet's set-up).
    - the exchange's other rules, each switchable: `price_band` (0.8: prices further than 80% from the oracle
      are refused), `max_open_orders` (1,000), `asset_suffix` (" asset=N" on order errors),
      `schedule_cancel_volume` (USD traded before scheduleCancel is allowed: 1,000,000).
      Off by default here; `SimConfig.exchange_like(...)` turns them all on (`revagent sim serve` and the
      paper venue run that way).
    - `upstream`: with `prices="live"`, the base URL of a Hyperliquid-compatible API the market comes from
      (universe, mids, books, trades, candles, funding); "" is Hyperliquid mainnet. When it cannot be reached
      at start the venue runs synthetic prices and says so (`price_source`).
    """

    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    seed: int = 0
    prices: str = "synthetic"
    balance: Decimal = Decimal(10_000)
    state_file: Path | None = None
    controls: bool = False
    manual_clock: bool = False
    start_ms: int | None = None
    tick_interval_s: float = Field(default=1.0, gt=0)
    persist_interval_s: float = Field(default=0.2, gt=0)
    auto_fund: bool = True
    is_mainnet: bool = False
    ws_queue_limit: int = 10_000
    ip_weight_per_minute: int | None = Field(default=None, gt=0)  # Hyperliquid's is 1200; None: unlimited
    ws_idle_timeout_s: float | None = Field(default=None, gt=0)  # Hyperliquid drops a socket idle for 60 s
    history_minutes: int = Field(default=1440, ge=0, le=7 * 1440)  # synthetic candle history at start
    price_band: Decimal | None = Field(default=None, gt=0)
    max_open_orders: int | None = Field(default=None, gt=0)
    asset_suffix: bool = False
    schedule_cancel_volume: Decimal = Field(default=Decimal(0), ge=0)
    upstream: str = ""
    upstream_timeout_s: float = Field(default=3.0, gt=0)  # connect timeout at start: fall back fast

    @classmethod
    def exchange_like(cls, **overrides: Any) -> SimConfig:
        """A config with every exchange rule on (as `revagent sim serve` and the paper venue run)."""
        return cls(**{**EXCHANGE_RULES, **overrides})


EXCHANGE_RULES: dict[str, Any] = {
    "auto_fund": False, "price_band": Decimal("0.8"), "max_open_orders": 1000, "asset_suffix": True,
    "schedule_cancel_volume": Decimal(1_000_000),
}
