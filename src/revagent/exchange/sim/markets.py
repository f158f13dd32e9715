"""The simulated perp universe: names, szDecimals and max leverage as on Hyperliquid, plus feed parameters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One perpetual market. `asset` is its index in `meta.universe` (the SDK's asset id)."""

    asset: int
    name: str
    sz_decimals: int
    max_leverage: int
    start_px: Decimal
    annual_vol: float  # for the synthetic random walk
    spread_bps: float  # synthetic top-of-book spread
    level_usd: float  # synthetic depth per book level, in USD

    @property
    def default_leverage(self) -> int:
        """Hyperliquid's default for a fresh account: 20x cross, or the max when that is lower."""
        return min(20, self.max_leverage)


_TABLE: tuple[tuple[str, int, int, str, float, float, float], ...] = (
    # name, szDecimals, maxLeverage, start price, annual vol, spread bps, level USD
    ("BTC", 5, 40, "95000", 0.55, 0.1, 400_000),
    ("ETH", 4, 25, "3300", 0.70, 0.3, 250_000),
    ("SOL", 2, 20, "180", 0.90, 1.0, 100_000),
    ("XRP", 0, 20, "2.2", 0.95, 1.5, 60_000),
    ("DOGE", 0, 10, "0.32", 1.00, 2.0, 40_000),
    ("AVAX", 2, 10, "35", 1.00, 2.0, 30_000),
    ("LINK", 1, 10, "20", 0.95, 2.0, 30_000),
    ("ARB", 1, 10, "0.75", 1.05, 2.5, 20_000),
    ("SUI", 1, 10, "4.2", 1.10, 2.0, 30_000),
    ("HYPE", 2, 10, "25", 1.10, 1.5, 60_000),
    ("kPEPE", 0, 10, "0.018", 1.20, 3.0, 20_000),
)

MARKETS: tuple[MarketSpec, ...] = tuple(
    MarketSpec(i, name, szd, lev, Decimal(px), vol, spread, depth)
    for i, (name, szd, lev, px, vol, spread, depth) in enumerate(_TABLE)
)
BY_NAME: dict[str, MarketSpec] = {m.name: m for m in MARKETS}


def meta_json(markets: Iterable[MarketSpec] = MARKETS) -> dict[str, object]:
    """`/info {"type":"meta"}`: the universe plus one margin table per distinct max leverage."""
    markets = list(markets)
    universe = [
        {"szDecimals": m.sz_decimals, "name": m.name, "maxLeverage": m.max_leverage, "marginTableId": m.max_leverage}
        for m in markets
    ]
    tables = sorted({m.max_leverage for m in markets})
    margin_tables = [
        [lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}] for lev in tables
    ]
    return {"universe": universe, "marginTables": margin_tables}
