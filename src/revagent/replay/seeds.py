"""What a replay starts with: notes, watcher pairs and time alerts from a file (JSON or TOML), so two
runs start alike.

    {"notes": [{"text": "BTC ranges 94k-96k this week", "tags": ["btc"]}],
     "watchers": [{"id": "btc-break", "market": "BTC", "upper": "+0.5%", "lower": "94000",
                   "thesis": "breakout", "setup": {"side": "long", "conviction": 60}}],
     "time_alerts": [{"after": "2h", "every": "4h", "prompt": "Review the open trades."}]}

A level is a price, or `+X%` / `-X%` of the market's mid when the replay starts. Ids are the file's
(a watcher's `id`, default `w1`, `w2`, ... in file order): the alert threads of two runs match.
Bad input: a `SeedError` naming the entry, and nothing is written.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from revagent.errors import UsageError
from revagent.models import (
    LegDirection,
    Note,
    ProposedSetup,
    TimeAlert,
    WatcherLeg,
    WatcherPair,
    parse_duration,
)
from revagent.store.repos import SessionStore


class SeedError(UsageError):
    pass


class Seeds:
    """The parsed seed file; `resolve(mids, now)` builds the records at the replay's start."""

    def __init__(self, doc: Mapping[str, Any], source: str = "seeds") -> None:
        unknown = set(doc) - {"notes", "watchers", "time_alerts"}
        if unknown:
            raise SeedError(f"{source}: unknown section(s) {sorted(unknown)} (notes, watchers, time_alerts)")
        self.source = source
        self.doc = doc

    @classmethod
    def load(cls, path: Path) -> Seeds:
        try:
            text = path.read_text(encoding="utf-8")
            doc = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise SeedError(f"{path}: cannot read the seed file: {exc}") from None
        if not isinstance(doc, dict):
            raise SeedError(f"{path}: the seed file must hold an object with notes, watchers, time_alerts")
        return cls(doc, str(path))

    def markets(self) -> list[str]:
        return sorted({str(w.get("market", "")) for w in self._list("watchers")})

    def _list(self, name: str) -> list[dict[str, Any]]:
        items = self.doc.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SeedError(f"{self.source}: {name} must be a list of objects")
        return items

    def resolve(self, mids: Mapping[str, Decimal], now: datetime) -> tuple[list[Note], list[WatcherPair],
                                                                               list[TimeAlert]]:
        notes: list[Note] = []
        watchers: list[WatcherPair] = []
        alerts: list[TimeAlert] = []
        try:
            for i, n in enumerate(self._list("notes"), 1):
                notes.append(Note(id=str(n.get("id", f"n{i}")), text=n.get("text", ""), tags=n.get("tags", []),
                                  created_at=now, updated_at=now))
            for i, w in enumerate(self._list("watchers"), 1):
                where = f"{self.source}: watchers[{i - 1}]"
                market = str(w.get("market", ""))
                if market not in mids:
                    raise SeedError(f"{where}: unknown market {market!r}")
                setup = ProposedSetup.model_validate(w.get("setup", {}))
                legs = {}
                for side, direction in (("upper", LegDirection.ABOVE), ("lower", LegDirection.BELOW)):
                    if w.get(side) is not None:
                        legs[side] = WatcherLeg(level=_level(w[side], mids[market], where), direction=direction,
                                                thesis=str(w.get("thesis", "")), setup=setup)
                watchers.append(WatcherPair(id=str(w.get("id", f"w{i}")), market=market, created_at=now,
                                            created_by="replay", **legs))
            for i, t in enumerate(self._list("time_alerts"), 1):
                every = parse_duration(t["every"]) if t.get("every") else None
                fire_at = now + parse_duration(t.get("after", "1h"))
                alerts.append(TimeAlert(id=str(t.get("id", f"t{i}")), fire_at=fire_at, every=every,
                                        prompt=t.get("prompt", ""), created_at=now))
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, SeedError):
                raise
            raise SeedError(f"{self.source}: {exc}") from None
        return notes, watchers, alerts


def _level(raw: Any, mid: Decimal, where: str) -> Decimal:
    text = str(raw).strip()
    try:
        if text.endswith("%"):
            pct = Decimal(text[:-1])
            return (mid * (1 + pct / 100)).quantize(_tick(mid))
        return Decimal(text)
    except InvalidOperation:
        raise SeedError(f"{where}: a level is a price or +X% / -X% of the start mid, not {raw!r}") from None


def _tick(mid: Decimal) -> Decimal:
    """A price quantum of about 5 significant figures for `mid` (what the exchange accepts)."""
    exp = mid.adjusted() - 4
    return Decimal(1).scaleb(exp)


async def write_seeds(store: SessionStore, notes: list[Note], watchers: list[WatcherPair],
                      alerts: list[TimeAlert]) -> None:
    for note in notes:
        await store.notes.put(note)
    for pair in watchers:
        await store.watchers.put(pair)
    for alert in alerts:
        await store.time_alerts.put(alert)
