"""The venue's state as one JSON document, written atomically (temp file + rename) and loaded at start.

What survives a restart: accounts (cash, positions, leverage, fills, funding, ledger), agents, open and
recent orders, nonces, counters, prices and the market clock. Candles are rebuilt from the feed.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from revagent.exchange.sim.model import Account, Agent, Order
from revagent.exchange.sim.nonces import NonceBook
from revagent.exchange.sim.venue import Venue

VERSION = 1


def dump_state(venue: Venue, nonces: NonceBook, feed_state: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "now_ms": venue.now_ms,
        "next_oid": venue.next_oid,
        "next_tid": venue.next_tid,
        "last_funding_hour": venue.last_funding_hour,
        "markets": {c: {"oracle": str(m.oracle), "premium": str(m.premium), "prev_day_px": str(m.prev_day_px),
                        "liquidity": str(m.liquidity), "spread_ticks": m.spread_override_ticks}
                    for c, m in venue.markets.items()},
        "accounts": [a.to_state() for a in venue.accounts.values()],
        "agents": [a.to_state() for a in venue.agents.values()],
        "orders": [o.to_state() for o in venue.orders.values()],
        "funding_history": venue.funding_history,
        "nonces": nonces.state(),
        "feed": feed_state,
    }


def load_state(venue: Venue, nonces: NonceBook, doc: dict[str, Any]) -> dict[str, Any]:
    """Restore `venue` and `nonces` from `doc`; returns the feed's saved state."""
    if doc.get("version") != VERSION:
        raise ValueError(f"unsupported simulator state version {doc.get('version')}")
    venue.now_ms = int(doc["now_ms"])
    venue.next_oid = int(doc["next_oid"])
    venue.next_tid = int(doc["next_tid"])
    venue.last_funding_hour = int(doc["last_funding_hour"])
    for coin, m in doc["markets"].items():
        market = venue.markets.get(coin)
        if market is None:
            continue
        market.premium = Decimal(m["premium"])
        market.prev_day_px = Decimal(m["prev_day_px"])
        market.liquidity = Decimal(m["liquidity"])
        market.spread_override_ticks = m.get("spread_ticks")
        market.set_oracle(Decimal(m["oracle"]))
    venue.accounts = {a["address"]: Account.from_state(a) for a in doc["accounts"]}
    venue.agents = {a["address"]: Agent.from_state(a) for a in doc["agents"]}
    for od in doc["orders"]:
        order = Order.from_state(od)
        if order.coin not in venue.markets:
            continue
        venue.orders[order.oid] = order
        if order.cloid is not None:
            venue.cloids[(order.user, order.cloid)] = order.oid
        if order.status != "open":
            continue
        venue.open_by_user.setdefault(order.user, {})[order.oid] = order
        venue.track_reserved(order)
        market = venue.markets[order.coin]
        if order.parent is not None:
            continue  # a normalTpsl child waiting for its parent
        if order.trigger is not None and not order.triggered:
            market.triggers.append(order)
        else:
            market.rest(order)
    venue.funding_history.update(doc.get("funding_history", {}))
    nonces.restore(doc.get("nonces", {}))
    feed: dict[str, Any] = doc.get("feed", {})
    return feed


class StateFile:
    """One JSON file; `save` replaces it atomically, so a crash leaves the previous complete version."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        doc: dict[str, Any] = json.loads(self.path.read_text())
        return doc

    def save_text(self, text: str) -> None:
        """Blocking write (call it in a thread): temp file in the same directory, fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
