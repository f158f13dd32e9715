"""Property: the trigger index fires exactly what a brute-force scan fires, tick by tick.

Random operations (arm, re-arm, disarm, ticks on two books, time passing with expiries) on a small
price grid, so exact touches, ties, gaps through several levels and exclusive groups happen often.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revagent.alerts.levels import EntryKey
from revagent.alerts.triggers import LevelAlreadyPassed, PriceTriggerIndex
from revagent.models import LegDirection
from tests.alerts.reference_scan import NaiveScan

T0 = datetime(2026, 11, 24, tzinfo=UTC)
BOOKS = ("BTC", "ETH")
ALERTS = ("a", "b", "c", "d")
SLOTS = ("upper", "lower", "s")

arm_op = st.tuples(
    st.just("arm"),
    st.sampled_from(ALERTS),
    st.sampled_from(SLOTS),
    st.sampled_from(BOOKS),
    st.sampled_from((LegDirection.ABOVE, LegDirection.BELOW)),
    st.integers(1, 20),
    st.one_of(st.none(), st.integers(1, 30)),  # expires this many seconds from now
)
tick_op = st.tuples(st.just("tick"), st.sampled_from(BOOKS), st.integers(1, 20), st.integers(0, 5))
disarm_op = st.tuples(st.just("disarm"), st.sampled_from(ALERTS), st.sampled_from(SLOTS))
ops = st.lists(st.one_of(arm_op, arm_op, tick_op, tick_op, tick_op, disarm_op), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_index_matches_naive_scan(operations: list[tuple[object, ...]]) -> None:
    index = PriceTriggerIndex()
    naive = NaiveScan()
    now = T0
    generation: dict[EntryKey, int] = {}
    for op in operations:
        if op[0] == "arm":
            _, alert, slot, book, direction, level, expires_in = op
            assert isinstance(alert, str) and isinstance(slot, str) and isinstance(book, str)
            assert isinstance(direction, LegDirection) and isinstance(level, int)
            key = EntryKey(alert, slot)
            gen = generation.get(key, 0) + 1
            expires_at = None if expires_in is None else now + timedelta(seconds=int(str(expires_in)))
            exclusive = slot != "s"
            armed = index.get(key)
            try:
                if armed is None:
                    index.arm(
                        key, book, direction, Decimal(level), generation=gen, exclusive=exclusive, expires_at=expires_at
                    )
                else:
                    index.rearm(
                        key,
                        Decimal(level),
                        generation=gen,
                        book=book,
                        direction=direction,
                        exclusive=exclusive,
                        expires_at=expires_at,
                    )
            except LevelAlreadyPassed as err:
                last = naive.last.get(book)
                assert last is not None
                assert (last >= level) if direction is LegDirection.ABOVE else (last <= level)
                assert err.price == last  # noqa: PT017 - the refusal must name the price it saw
                continue
            generation[key] = gen
            naive.arm(key, book, direction, Decimal(level), generation=gen, exclusive=exclusive, expires_at=expires_at)
        elif op[0] == "disarm":
            key = EntryKey(str(op[1]), str(op[2]))
            index.disarm(key)
            naive.disarm(key)
        else:
            _, book, price, advance = op
            assert isinstance(book, str) and isinstance(price, int) and isinstance(advance, int)
            now += timedelta(seconds=advance)
            got = index.on_price(book, Decimal(price), now)
            want = naive.on_price(book, Decimal(price), now)
            assert [
                (f.key, f.level.generation, f.level.level, f.price, tuple(sorted(d.key for d in f.disarmed)))
                for f in got
            ] == [(w.key, w.generation, w.level, w.price, w.disarmed) for w in want]
        assert sorted(e.level.key for e in index.expire_due(now)) == sorted(naive.expired)
        naive.expired.clear()
        assert sorted(v.key for v in index.armed()) == sorted(naive.levels)
        # the sorted structures hold exactly the armed entries
        assert sum(len(b.above) + len(b.below) for b in index._books.values()) == len(index)


@settings(max_examples=100, deadline=None)
@given(
    levels=st.lists(
        st.tuples(st.sampled_from((LegDirection.ABOVE, LegDirection.BELOW)), st.integers(1, 50)), max_size=60
    ),
    path=st.lists(st.integers(1, 50), min_size=1, max_size=30),
)
def test_bulk_load_fires_like_incremental_arming(levels: list[tuple[LegDirection, int]], path: list[int]) -> None:
    bulk, one_by_one = PriceTriggerIndex(), PriceTriggerIndex()
    with bulk.bulk():
        for i, (direction, level) in enumerate(levels):
            bulk.arm(EntryKey(f"x{i // 2}", str(i % 2)), "BTC", direction, Decimal(level), exclusive=True)
    for i, (direction, level) in enumerate(levels):
        one_by_one.arm(EntryKey(f"x{i // 2}", str(i % 2)), "BTC", direction, Decimal(level), exclusive=True)
    for step, price in enumerate(path):
        now = T0 + timedelta(seconds=step)
        assert [f.trigger_key for f in bulk.on_price("BTC", Decimal(price), now)] == [
            f.trigger_key for f in one_by_one.on_price("BTC", Decimal(price), now)
        ]
    assert len(bulk) == len(one_by_one)


def test_bulk_refuses_ticks_inside_the_block() -> None:
    ix = PriceTriggerIndex()
    with ix.bulk():
        ix.arm(EntryKey("a", "s"), "BTC", LegDirection.ABOVE, Decimal(5))
        with pytest.raises(RuntimeError, match="bulk"):
            ix.on_price("BTC", Decimal(1), T0)
        with pytest.raises(RuntimeError, match="bulk"):
            ix.disarm(EntryKey("a", "s"))
    assert [f.key for f in ix.on_price("BTC", Decimal(6), T0)] == [EntryKey("a", "s")]
