"""Small shared vocabulary of price levels: the key of an armed level and the price book it watches.

A *book* is the name of one price stream the trigger index is fed with: the market itself for the
mid price (`"BTC"`, what watchers and trade-management levels use) and `"<market>:mark"` for the mark
price (what the liquidation warning uses, like the exchange's own stops). Market names never contain
`:` (see `models.MARKET_PATTERN`), so the two never collide.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

PriceSource = Literal["mid", "mark"]

UPPER = "upper"
LOWER = "lower"


class EntryKey(NamedTuple):
    """Identity of one armed level: the alert it belongs to and its slot in that alert.

    Watcher legs: (pair id, "upper" | "lower"). Trade-management levels: (trade id, kind value).
    """

    alert_id: str
    slot: str


def price_book(market: str, source: PriceSource = "mid") -> str:
    """The book name for a market's mid (`"BTC"`) or mark (`"BTC:mark"`) price stream."""
    if ":" in market:
        raise ValueError(f"{market!r} is not a market name")
    return market if source == "mid" else f"{market}:mark"
