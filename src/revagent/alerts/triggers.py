"""The price trigger index: armed levels per price book, evaluated in O(log n + fired) per tick.

Pure and synchronous: no I/O, no clock (every call that needs time takes `now`). The alert scheduler
owns one index, feeds it every price tick (`on_price`), and turns what fires into `AlertEvent`s.

Semantics
- An ABOVE level fires when the price rises to or through it (`price >= level`); a BELOW level when
  the price falls to or through it (`price <= level`). An exact touch fires.
- Arming a level the book's current price has already reached or passed is refused with
  `LevelAlreadyPassed` (the message carries the current price), unless `check_passed=False` (a restart:
  the level fires at the next tick or `recheck`). With no known price for the book the level is
  accepted and the first tick decides.
- **Armed from the side the price is on** (`wait_if_passed=True`, trade-management levels at run time):
  a level fires only when the price crosses it from the side it was armed on. Armed while the price
  has already reached or passed it, the entry *waits*: it fires nothing until a tick is strictly back
  on the other side, and from then on it fires on the next crossing. So a level re-armed after a plan
  change, that the price has already passed, does not fire again for a crossing it already reported.
- A fired level is removed: a double tick never fires the same generation twice, and the index
  refuses to arm a key again at a generation that already fired (`StaleGeneration`).
- Entries armed with `exclusive=True` (watcher legs) form one group per alert id: when one fires, the
  alert's other exclusive entries are disarmed and reported in `Fired.disarmed` (the pair is consumed).
- **Gap rule.** Within one tick, fired levels are ordered by the order the price crossed them on its
  way from the previous tick's price: an up move lists the lowest level first, a down move the highest
  first (ties: the earlier armed first; with no previous price, or no move, lowest level first). When
  two exclusive entries of one alert would fire in the same tick, the first in that order fires and
  the other is disarmed. For a watcher pair (lower level < upper level, one price per tick) the two
  legs' conditions are mutually exclusive, so a gap from between the legs to beyond one of them fires
  that leg and consumes the pair; the other leg never fires later, however far the price travels.
- Expiry: an entry with `expires_at` is removed once `now >= expires_at` (with its whole exclusive
  group) and reported by `expire_due(now)`; an expired entry never fires, even if a tick arrives
  before the scheduler asked for expiries. `next_expiry()` gives the single timer's deadline.

Structure: per book two sorted lists of `(sort level, seq, key)` tuples. ABOVE levels are stored
under `-level`, BELOW levels under `level`, so in both lists the levels that fire first sit at the
tail: a tick costs two `bisect` calls and pops exactly the fired tail. Add and remove locate an entry
by bisect and delete it in place (no tombstones); expiries sit in a lazy heap compacted when more
than half of it is stale.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from revagent.alerts.levels import LOWER, UPPER, EntryKey, price_book
from revagent.alerts.trade_alerts import TradeLevel
from revagent.models import LegDirection, LegStatus, WatcherLeg, WatcherPair
from revagent.store.alert_events import level_trigger_key

_Slot = tuple[Decimal, int, EntryKey]


class Keep(Enum):
    """Sentinel for `rearm`: keep the armed entry's value (None is a value: no expiry, no payload)."""

    KEEP = "keep"


KEEP = Keep.KEEP


class LevelAlreadyPassed(ValueError):
    """Arming refused: the book's current price has already reached or passed the level."""

    def __init__(self, key: EntryKey, book: str, direction: LegDirection, level: Decimal, price: Decimal):
        self.key = key
        self.book = book
        self.direction = direction
        self.level = level
        self.price = price
        if direction is LegDirection.ABOVE:
            hint = f"it would fire above {level}, but the price is already {price}; choose a level above {price}"
        else:
            hint = f"it would fire below {level}, but the price is already {price}; choose a level below {price}"
        super().__init__(f"{key.alert_id} {key.slot} on {book}: {hint}")


class StaleGeneration(ValueError):
    """Arming refused: the key is armed at, or already fired at, this generation or a later one."""


@dataclass(frozen=True, slots=True)
class ArmedLevel:
    """A read-only view of one armed entry."""

    key: EntryKey
    book: str
    direction: LegDirection
    level: Decimal
    generation: int
    exclusive: bool
    expires_at: datetime | None
    payload: object

    @property
    def trigger_key(self) -> str:
        return level_trigger_key(self.key.alert_id, self.key.slot, self.generation)


@dataclass(frozen=True, slots=True)
class Fired:
    """One level that fired on a tick. `price` is the price that fired it (mid or mark, per book)."""

    level: ArmedLevel
    price: Decimal
    previous_price: Decimal | None
    fired_at: datetime
    disarmed: tuple[ArmedLevel, ...] = ()
    """Exclusive siblings disarmed because this entry consumed its group (the pair's other leg)."""

    @property
    def key(self) -> EntryKey:
        return self.level.key

    @property
    def trigger_key(self) -> str:
        return self.level.trigger_key


@dataclass(frozen=True, slots=True)
class Expired:
    """One entry removed because its expiry passed (with `expired_at` = its `expires_at`)."""

    level: ArmedLevel
    expired_at: datetime


@dataclass(slots=True)
class _Entry:
    view: ArmedLevel
    seq: int
    sort_level: Decimal
    waiting: bool = False
    """Armed past its level (`wait_if_passed`): not in the sorted lists until a tick is back on its side."""


@dataclass(slots=True)
class _Book:
    above: list[_Slot] = field(default_factory=list)  # (-level, seq, key): lowest level at the tail
    below: list[_Slot] = field(default_factory=list)  # (level, seq, key): highest level at the tail
    last: Decimal | None = None
    waiting: dict[EntryKey, _Entry] = field(default_factory=dict)  # armed past their level (few)


def _passed(direction: LegDirection, level: Decimal, price: Decimal) -> bool:
    return price >= level if direction is LegDirection.ABOVE else price <= level


class PriceTriggerIndex:
    """Armed price levels of one session, all books. Not thread-safe; one owner (the scheduler)."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._entries: dict[EntryKey, _Entry] = {}
        self._by_alert: dict[str, set[EntryKey]] = {}
        self._fired_generation: dict[EntryKey, int] = {}
        self._fired_level: dict[EntryKey, Decimal] = {}
        self._expiry_heap: list[tuple[datetime, int, EntryKey]] = []
        self._expiring = 0
        self._pending_expired: list[Expired] = []
        self._seq = 0
        self._bulk = False

    # --- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: EntryKey) -> ArmedLevel | None:
        entry = self._entries.get(key)
        return entry.view if entry is not None else None

    def armed(self, book: str | None = None) -> list[ArmedLevel]:
        """Every armed entry (of one book), in no particular order."""
        return [e.view for e in self._entries.values() if book is None or e.view.book == book]

    def last_price(self, book: str) -> Decimal | None:
        b = self._books.get(book)
        return b.last if b is not None else None

    def next_expiry(self) -> datetime | None:
        """When the earliest armed entry expires (for the scheduler's single timer), None if none do."""
        heap = self._expiry_heap
        while heap:
            at, seq, key = heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.seq == seq:
                return at
            heapq.heappop(heap)
        return None

    def fired_generation(self, key: EntryKey) -> int:
        """The highest generation of `key` that fired in this index (0 if none)."""
        return self._fired_generation.get(key, 0)

    def fired_level(self, key: EntryKey) -> Decimal | None:
        """The level at which `key` last fired in this index (None if it never fired here)."""
        return self._fired_level.get(key)

    def is_waiting(self, key: EntryKey) -> bool:
        """True when `key` is armed but waits for the price to come back to its side (`wait_if_passed`)."""
        entry = self._entries.get(key)
        return entry is not None and entry.waiting

    # --- arming --------------------------------------------------------------------------------

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
        payload: object = None,
        price: Decimal | None = None,
        check_passed: bool = True,
        wait_if_passed: bool = False,
    ) -> ArmedLevel:
        """Arm one level. `price` is the book's current price (default: the last price it was fed).

        Raises `LevelAlreadyPassed` when that price has reached or passed the level (unless
        `check_passed` is False or `wait_if_passed` is True: then the entry waits for the price to
        come back to its side, see the module docstring), `StaleGeneration` when `key` is already
        armed (use `rearm`) or already fired at `generation` or later, ValueError for a non-positive
        level or generation.
        """
        if key in self._entries:
            raise StaleGeneration(f"{key.alert_id} {key.slot} is already armed; re-arm it with a new generation")
        self._validate(key, level, generation)
        b = self._books.get(book)
        current = price if price is not None else (b.last if b is not None else None)
        passed = current is not None and _passed(direction, level, current)
        if check_passed and passed and not wait_if_passed:
            assert current is not None
            raise LevelAlreadyPassed(key, book, direction, level, current)
        if b is None:
            b = self._books[book] = _Book()
        self._seq += 1
        seq = self._seq
        view = ArmedLevel(key, book, direction, level, generation, exclusive, expires_at, payload)
        sort_level = -level if direction is LegDirection.ABOVE else level
        entry = self._entries[key] = _Entry(view, seq, sort_level, waiting=wait_if_passed and passed)
        self._by_alert.setdefault(key.alert_id, set()).add(key)
        lst = b.above if direction is LegDirection.ABOVE else b.below
        if entry.waiting:
            b.waiting[key] = entry
        elif self._bulk:
            lst.append((sort_level, seq, key))
        else:
            insort(lst, (sort_level, seq, key))
        if expires_at is not None:
            self._expiring += 1
            heapq.heappush(self._expiry_heap, (expires_at, seq, key))
            self._compact_expiry_heap()
        return view

    def rearm(
        self,
        key: EntryKey,
        level: Decimal,
        *,
        generation: int,
        book: str | None = None,
        direction: LegDirection | None = None,
        exclusive: bool | None = None,
        expires_at: datetime | Keep | None = KEEP,
        payload: object = KEEP,
        price: Decimal | None = None,
        check_passed: bool = True,
    ) -> ArmedLevel:
        """Arm `key` again at a new level and a strictly newer generation (a new trigger key).

        Works whether `key` is armed now (it is replaced) or not (fired, disarmed, expired). Fields
        left out (None, or `KEEP` for `expires_at` and `payload`) are taken from the armed entry;
        book and direction are required when there is none. Refusals as in `arm`; a refused re-arm
        leaves the previous entry armed.
        """
        old = self._entries.get(key)
        if old is not None and generation <= old.view.generation:
            raise StaleGeneration(
                f"{key.alert_id} {key.slot} is armed at generation {old.view.generation}; "
                f"re-arm with a later one (got {generation})"
            )
        prev = old.view if old is not None else None
        new_book = book if book is not None else (prev.book if prev is not None else None)
        new_dir = direction if direction is not None else (prev.direction if prev is not None else None)
        if new_book is None or new_dir is None:
            raise ValueError(f"{key.alert_id} {key.slot} is not armed: give book and direction to re-arm it")
        self._validate(key, level, generation)
        b = self._books.get(new_book)
        current = price if price is not None else (b.last if b is not None else None)
        if check_passed and current is not None and _passed(new_dir, level, current):
            raise LevelAlreadyPassed(key, new_book, new_dir, level, current)
        if old is not None:
            self._drop(old)
        return self.arm(
            key,
            new_book,
            new_dir,
            level,
            generation=generation,
            exclusive=exclusive if exclusive is not None else (prev.exclusive if prev is not None else False),
            expires_at=(prev.expires_at if prev is not None else None) if expires_at is KEEP else expires_at,
            payload=(prev.payload if prev is not None else None) if payload is KEEP else payload,
            price=price,
            check_passed=False,
        )

    @contextmanager
    def bulk(self) -> Iterator[PriceTriggerIndex]:
        """Arm many entries at once (a restart): appended unsorted and sorted once on exit, O(n log n)
        instead of one list shift per entry. Only `arm` may be called inside the block."""
        if self._bulk:
            raise RuntimeError("bulk() does not nest")
        self._bulk = True
        try:
            yield self
        finally:
            self._bulk = False
            for b in self._books.values():
                b.above.sort()
                b.below.sort()

    def disarm(self, key: EntryKey) -> ArmedLevel | None:
        """Remove one entry; returns it, or None if it was not armed. O(log n) plus a list shift."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._drop(entry)
        return entry.view

    def disarm_alert(self, alert_id: str) -> list[ArmedLevel]:
        """Remove every entry of an alert (a pair cancelled, a trade closed)."""
        keys = list(self._by_alert.get(alert_id, ()))
        return [v for v in (self.disarm(k) for k in keys) if v is not None]

    def forget(self, alert_id: str) -> None:
        """Disarm an alert and drop its fired-generation memory (the alert is deleted for good)."""
        self.disarm_alert(alert_id)
        for key in [k for k in self._fired_generation if k.alert_id == alert_id]:
            del self._fired_generation[key]
            self._fired_level.pop(key, None)

    def note_fired(self, key: EntryKey, generation: int) -> None:
        """Record that `key` fired at `generation` elsewhere (restored state): never arm it there again."""
        if generation > self._fired_generation.get(key, 0):
            self._fired_generation[key] = generation

    # --- evaluation ----------------------------------------------------------------------------

    def on_price(self, book: str, price: Decimal, now: datetime) -> list[Fired]:
        """Feed one price of one book; return what fired, in crossing order (see the gap rule).

        Cost: O(1) when nothing fires (the tails are compared first), else O(log n + fired).
        Entries whose expiry has passed are expired first and never fire.
        """
        if self._bulk:
            raise RuntimeError("on_price inside bulk(): leave the block first")
        if self._expiry_heap and self._expiry_heap[0][0] <= now:
            self._collect_expired(now)
        b = self._books.get(book)
        if b is None:
            b = self._books[book] = _Book()
        previous = b.last
        b.last = price
        if b.waiting:
            self._release_waiting(b, price)
        above, below = b.above, b.below
        hits: list[_Slot] = []
        if above and above[-1][0] >= -price:
            i = bisect_left(above, (-price,))
            hits.extend(above[i:])
            del above[i:]
        if below and below[-1][0] >= price:
            i = bisect_left(below, (price,))
            hits.extend(below[i:])
            del below[i:]
        if not hits:
            return []
        return self._fire(hits, price, previous, now)

    def on_mids(self, mids: Mapping[str, Decimal], now: datetime, *, source: str = "") -> list[Fired]:
        """Feed a whole price message (`MidsUpdated.mids`: market -> mid) at once; what fired, by book.

        `source="mark"` feeds marks instead (books `<market>:mark`). Every market's last price is
        kept (arming checks against it), so the cost is O(markets) plus each book's tick cost.
        """
        fired: list[Fired] = []
        suffix = f":{source}" if source else ""
        for market, price in mids.items():
            hits = self.on_price(market + suffix if suffix else market, price, now)
            if hits:
                fired += hits
        return fired

    def recheck(self, book: str, now: datetime) -> list[Fired]:
        """Evaluate a book again at its last price (after arming with `check_passed=False`)."""
        last = self.last_price(book)
        return [] if last is None else self.on_price(book, last, now)

    def expire_due(self, now: datetime) -> list[Expired]:
        """Remove and return every entry whose expiry is at or before `now` (and any expired by ticks)."""
        self._collect_expired(now)
        out, self._pending_expired = self._pending_expired, []
        return out

    # --- internals -----------------------------------------------------------------------------

    def _validate(self, key: EntryKey, level: Decimal, generation: int) -> None:
        if level <= 0:
            raise ValueError(f"a level must be positive, got {level}")
        if generation < 1:
            raise ValueError(f"a generation starts at 1, got {generation}")
        fired = self._fired_generation.get(key, 0)
        if generation <= fired:
            raise StaleGeneration(
                f"{key.alert_id} {key.slot} already fired at generation {fired}; arm it with a later one"
            )

    def _fire(self, hits: list[_Slot], price: Decimal, previous: Decimal | None, now: datetime) -> list[Fired]:
        entries = self._entries
        down = previous is not None and price < previous
        # crossing order from the previous price: down moves meet the highest level first
        hits.sort(key=lambda s: (-entries[s[2]].view.level if down else entries[s[2]].view.level, s[1]))
        fired: list[Fired] = []
        for _, seq, key in hits:
            entry = entries.get(key)
            if entry is None or entry.seq != seq:
                continue  # disarmed earlier in this tick by a sibling that fired first
            self._forget_entry(entry)
            view = entry.view
            self._fired_generation[key] = view.generation
            self._fired_level[key] = view.level
            disarmed: list[ArmedLevel] = []
            if view.exclusive:
                for sibling_key in list(self._by_alert.get(key.alert_id, ())):
                    sibling = entries[sibling_key]
                    if sibling.view.exclusive:
                        self._drop(sibling)
                        disarmed.append(sibling.view)
            fired.append(Fired(view, price, previous, now, tuple(disarmed)))
        return fired

    def _forget_entry(self, entry: _Entry) -> None:
        """Remove an entry from the maps (not from the sorted lists)."""
        key = entry.view.key
        del self._entries[key]
        keys = self._by_alert[key.alert_id]
        keys.discard(key)
        if not keys:
            del self._by_alert[key.alert_id]
        if entry.view.expires_at is not None:
            self._expiring -= 1

    def _drop(self, entry: _Entry) -> None:
        """Remove an entry from the maps and from its sorted list (if it is still there)."""
        if self._bulk:
            raise RuntimeError("only arm() may be called inside bulk()")
        self._forget_entry(entry)
        b = self._books[entry.view.book]
        if entry.waiting:
            b.waiting.pop(entry.view.key, None)
            return
        lst = b.above if entry.view.direction is LegDirection.ABOVE else b.below
        probe = (entry.sort_level, entry.seq)
        i = bisect_left(lst, probe)
        if i < len(lst) and lst[i][1] == entry.seq:
            del lst[i]

    @staticmethod
    def _release_waiting(b: _Book, price: Decimal) -> None:
        """Waiting entries whose side the price is strictly back on join the sorted lists (they fire
        at the next crossing, never on this tick)."""
        for key, entry in list(b.waiting.items()):
            if _passed(entry.view.direction, entry.view.level, price):
                continue
            del b.waiting[key]
            entry.waiting = False
            lst = b.above if entry.view.direction is LegDirection.ABOVE else b.below
            insort(lst, (entry.sort_level, entry.seq, key))

    def _collect_expired(self, now: datetime) -> None:
        heap = self._expiry_heap
        while heap and heap[0][0] <= now:
            at, seq, key = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is None or entry.seq != seq:
                continue
            group = [entry]
            if entry.view.exclusive:
                group += [
                    self._entries[k]
                    for k in self._by_alert.get(key.alert_id, ())
                    if k != key and self._entries[k].view.exclusive
                ]
            for member in group:
                self._drop(member)
                self._pending_expired.append(Expired(member.view, at))

    def _compact_expiry_heap(self) -> None:
        heap = self._expiry_heap
        if len(heap) > 2 * self._expiring + 64:
            live = [
                (at, seq, key) for at, seq, key in heap if (e := self._entries.get(key)) is not None and e.seq == seq
            ]
            heapq.heapify(live)
            self._expiry_heap = live


# --- rebuilding after a restart ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebuiltIndex:
    """The index loaded from stored state, and what happened while loading it.

    `fired`: armed entries the current prices had already crossed (the process was down, or crashed
    between firing and recording it): enqueue them marked late; their trigger keys are the ones a
    firing before the crash would have used, so the queue's de-duplication absorbs a repeat.
    `expired`: legs of pairs whose expiry passed while down (record the pair EXPIRED).
    `corrections`: legs the store still marks ARMED but that must be recorded otherwise: FIRED when
    their trigger key was already fired (the crash came before the status was saved), DISARMED when
    a sibling leg of the same or a later generation had already consumed the pair.
    """

    index: PriceTriggerIndex
    fired: list[Fired]
    expired: list[ArmedLevel]
    corrections: list[LegCorrection]


@dataclass(frozen=True, slots=True)
class LegCorrection:
    """A stored leg status to fix after a restart (see `RebuiltIndex.corrections`)."""

    pair_id: str
    slot: str
    generation: int
    status: LegStatus


def _leg_slots(pair: WatcherPair) -> list[tuple[str, LegDirection, WatcherLeg]]:
    out: list[tuple[str, LegDirection, WatcherLeg]] = []
    if pair.upper is not None:
        out.append((UPPER, LegDirection.ABOVE, pair.upper))
    if pair.lower is not None:
        out.append((LOWER, LegDirection.BELOW, pair.lower))
    return out


def build_index(
    pairs: Iterable[WatcherPair],
    trade_levels: Iterable[TradeLevel],
    mids: Mapping[str, Decimal],
    *,
    now: datetime,
    marks: Mapping[str, Decimal] | None = None,
    already_fired: Collection[str] = (),
) -> RebuiltIndex:
    """Load an index from stored watcher pairs and trade levels after a restart, then feed it prices.

    - A leg is armed only if its status is ARMED, its trigger key is not in `already_fired` (the
      trigger keys the store or queue has seen), and no leg of its pair fired at the same or a later
      generation (that leg consumed the pair); see `RebuiltIndex.corrections`.
    - A pair whose `expires_at` is at or before `now` is reported expired and not armed.
    - Trade levels are armed unless their trigger key is in `already_fired`.
    - `mids` (market -> mid) and `marks` (market -> mark) are then fed as one tick each: levels they
      have already crossed fire (returned in `fired`) instead of being refused.
    """
    fired_keys = set(already_fired)
    # the alert ids among the seen keys (`<alert id>#...`): a pair not among them needs no key built
    fired_ids = {k.partition("#")[0] for k in fired_keys}
    index = PriceTriggerIndex()
    expired: list[ArmedLevel] = []
    corrections: list[LegCorrection] = []
    with index.bulk():
        for pair in pairs:
            slots = _leg_slots(pair)
            consumed_at = 0  # the generation at which a leg of this pair fired (0: never)
            seen_before = pair.id in fired_ids
            for slot, _, leg in slots:
                fired_here = leg.status is LegStatus.FIRED
                if (
                    seen_before
                    and leg.status is LegStatus.ARMED
                    and level_trigger_key(pair.id, slot, leg.generation) in fired_keys
                ):
                    fired_here = True
                    corrections.append(LegCorrection(pair.id, slot, leg.generation, LegStatus.FIRED))
                if fired_here:
                    index.note_fired(EntryKey(pair.id, slot), leg.generation)
                    consumed_at = max(consumed_at, leg.generation)
            for slot, direction, leg in slots:
                if leg.status is not LegStatus.ARMED:
                    continue
                if index.fired_generation(EntryKey(pair.id, slot)) >= leg.generation:
                    continue  # corrected to FIRED above
                if leg.generation <= consumed_at:
                    corrections.append(LegCorrection(pair.id, slot, leg.generation, LegStatus.DISARMED))
                    continue
                key = EntryKey(pair.id, slot)
                if pair.expires_at is not None and pair.expires_at <= now:
                    expired.append(
                        ArmedLevel(key, pair.market, direction, leg.level, leg.generation, True, pair.expires_at, pair)
                    )
                    continue
                index.arm(
                    key,
                    pair.market,
                    direction,
                    leg.level,
                    generation=leg.generation,
                    exclusive=True,
                    expires_at=pair.expires_at,
                    payload=pair,
                    check_passed=False,
                )
        for tl in trade_levels:
            if fired_keys and tl.trigger_key in fired_keys:
                index.note_fired(tl.key, tl.generation)
                continue
            index.arm(tl.key, tl.book, tl.direction, tl.level, generation=tl.generation, payload=tl, check_passed=False)
    fired: list[Fired] = []
    for market, mid in mids.items():
        fired += index.on_price(market, mid, now)
    for market, mark in (marks or {}).items():
        fired += index.on_price(price_book(market, "mark"), mark, now)
    return RebuiltIndex(index, fired, expired, corrections)
