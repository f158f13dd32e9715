"""Nonces are strictly increasing per signer, even within one millisecond and under concurrency;
cloids are deterministic, well formed, and distinct for distinct actions."""

from __future__ import annotations

import asyncio
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.exchange.hyperliquid.cloid import cloid_for, is_cloid
from revagent.exchange.hyperliquid.nonces import NonceSource, wall_clock_ms


def test_nonce_follows_the_clock_and_never_repeats_within_a_millisecond() -> None:
    now = [1_000]
    source = NonceSource(lambda: now[0])
    assert [source.next() for _ in range(3)] == [1_000, 1_001, 1_002]
    now[0] = 5_000
    assert source.next() == 5_000
    now[0] = 4_000  # the clock stepped back
    assert source.next() == 5_001


def test_default_nonce_is_epoch_milliseconds() -> None:
    before = wall_clock_ms()
    nonce = NonceSource().next()
    assert before <= nonce <= wall_clock_ms() + 1


async def test_nonces_unique_and_increasing_under_asyncio_concurrency() -> None:
    source = NonceSource(lambda: 42)  # a frozen clock: the worst case
    issued: list[int] = []

    async def worker() -> None:
        for _ in range(50):
            issued.append(source.next())
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(20)))
    assert len(set(issued)) == 1000
    assert issued == sorted(issued)


def test_nonces_unique_across_threads() -> None:
    source = NonceSource()
    per_thread: list[list[int]] = [[] for _ in range(4)]

    def run(out: list[int]) -> None:
        for _ in range(2000):
            out.append(source.next())

    threads = [threading.Thread(target=run, args=(out,)) for out in per_thread]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    everything = [n for out in per_thread for n in out]
    assert len(set(everything)) == len(everything) == 8000
    assert all(out == sorted(out) for out in per_thread)


def test_cloid_is_deterministic_and_well_formed() -> None:
    a = cloid_for("thread-1", "toolcall-9")
    assert a == cloid_for("thread-1", "toolcall-9")
    assert is_cloid(a) and len(a) == 34
    assert a == "0x" + a[2:].lower()


def test_cloid_depends_on_how_parts_split() -> None:
    assert cloid_for("ab", "c") != cloid_for("a", "bc")
    assert cloid_for("abc") != cloid_for("ab", "c")
    assert cloid_for("x", "") != cloid_for("x")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=4), st.lists(st.text(max_size=12), min_size=1, max_size=4))
def test_distinct_actions_get_distinct_cloids(a: list[str], b: list[str]) -> None:
    assert (cloid_for(*a) == cloid_for(*b)) == (a == b)
    assert is_cloid(cloid_for(*a))
