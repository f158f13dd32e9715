"""A naive full-scan evaluator with the trigger index's semantics: the baseline and the test oracle.

A test oracle, kept with the tests (not shipped). Every tick scans every armed level of the book
(O(n)); the property tests check that `PriceTriggerIndex` fires exactly what this fires. Kept
deliberately simple: a dict of levels, a filter, a sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from revagent.alerts.levels import EntryKey
from revagent.models import LegDirection


@dataclass(slots=True)
class ScanLevel:
    key: EntryKey
    book: str
    direction: LegDirection
    level: Decimal
    generation: int
    exclusive: bool
    expires_at: datetime | None
    seq: int


@dataclass(frozen=True, slots=True)
class ScanFired:
    key: EntryKey
    generation: int
    level: Decimal
    price: Decimal
    disarmed: tuple[EntryKey, ...]


class NaiveScan:
    """Same contract as the index's arm/disarm/on_price/expire_due, evaluated by scanning."""

    def __init__(self) -> None:
        self.levels: dict[EntryKey, ScanLevel] = {}
        self.last: dict[str, Decimal] = {}
        self.expired: list[EntryKey] = []
        self._seq = 0

    def arm(
        self,
        key: EntryKey,
        book: str,
        direction: LegDirection,
        level: Decimal,
        *,
        generation: int = 1,
        exclusive: bool = False,
        expires_at: datetime | None = None,
    ) -> None:
        self._seq += 1
        self.levels[key] = ScanLevel(key, book, direction, level, generation, exclusive, expires_at, self._seq)

    def disarm(self, key: EntryKey) -> None:
        self.levels.pop(key, None)

    def _expire(self, now: datetime) -> None:
        due = [lv for lv in self.levels.values() if lv.expires_at is not None and lv.expires_at <= now]
        for lv in sorted(due, key=lambda x: (x.expires_at, x.seq)):
            if lv.key not in self.levels:
                continue
            group = [lv] + [
                o
                for o in self.levels.values()
                if lv.exclusive and o.exclusive and o.key.alert_id == lv.key.alert_id and o.key != lv.key
            ]
            for member in group:
                del self.levels[member.key]
                self.expired.append(member.key)

    def on_price(self, book: str, price: Decimal, now: datetime) -> list[ScanFired]:
        self._expire(now)
        previous = self.last.get(book)
        self.last[book] = price
        hits = [
            lv
            for lv in self.levels.values()
            if lv.book == book and (price >= lv.level if lv.direction is LegDirection.ABOVE else price <= lv.level)
        ]
        down = previous is not None and price < previous
        hits.sort(key=lambda lv: (-lv.level if down else lv.level, lv.seq))
        out: list[ScanFired] = []
        for lv in hits:
            if lv.key not in self.levels:
                continue
            del self.levels[lv.key]
            disarmed: list[EntryKey] = []
            if lv.exclusive:
                for other in list(self.levels.values()):
                    if other.exclusive and other.key.alert_id == lv.key.alert_id:
                        del self.levels[other.key]
                        disarmed.append(other.key)
            out.append(ScanFired(lv.key, lv.generation, lv.level, price, tuple(sorted(disarmed))))
        return out
