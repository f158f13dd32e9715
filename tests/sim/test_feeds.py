"""Price feeds: the seeded walk is deterministic, replay follows its file, live fails with a clear reason."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.feed import FeedUnavailable, LiveFeed, ReplayFeed, SyntheticFeed
from revagent.exchange.sim.markets import BY_NAME, MARKETS
from tests.sim.conftest import START_MS


def walk(seed: int, steps: int) -> list[dict[str, float]]:
    feed = SyntheticFeed(MARKETS, seed=seed, start_ms=START_MS)
    return [feed.step(START_MS + 1000 * (i + 1)) for i in range(steps)]


def test_synthetic_walk_is_deterministic_per_seed() -> None:
    assert walk(7, 50) == walk(7, 50)
    assert walk(7, 50) != walk(8, 50)
    day = SyntheticFeed(MARKETS, seed=1, start_ms=START_MS).step(START_MS + 86_400_000)
    # one day of a 55% annual vol: a move of a few percent, not a jump
    assert abs(day["BTC"] / float(BY_NAME["BTC"].start_px) - 1) < 0.2


def test_venue_under_a_seed_reproduces_its_prices() -> None:
    a = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=42))
    b = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=42))
    a.advance(600_000)
    b.advance(600_000)
    assert {c: m.mid for c, m in a.venue.markets.items()} == {c: m.mid for c, m in b.venue.markets.items()}


def test_replay_csv_and_json(tmp_path: Path) -> None:
    csv_file = tmp_path / "ticks.csv"
    csv_file.write_text("time,coin,px\n1000,BTC,50000\n2000,BTC,50100\n3000,BTC,49900\n")
    feed = ReplayFeed(csv_file, MARKETS, seed=0, start_ms=START_MS)
    assert feed.step(START_MS)["BTC"] == 50000
    assert feed.step(START_MS + 1500)["BTC"] == 50100
    assert feed.step(START_MS + 10_000)["BTC"] == 49900  # holds the last price
    candles = tmp_path / "candles.json"
    candles.write_text(json.dumps([{"t": 0, "s": "ETH", "c": "3000.5"}, {"t": 60_000, "s": "ETH", "c": "3010"}]))
    sim = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, prices=f"replay:{candles}"))
    assert sim.venue.markets["ETH"].mid == Decimal("3000.5")
    sim.advance(60_000)
    assert sim.venue.markets["ETH"].mid == Decimal("3010")


def test_replay_without_usable_rows_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(FeedUnavailable, match="no rows"):
        ReplayFeed(bad, MARKETS, seed=0, start_ms=START_MS)
    with pytest.raises(FeedUnavailable, match="not found"):
        ReplayFeed(tmp_path / "missing.csv", MARKETS, seed=0, start_ms=START_MS)


async def test_live_feed_unreachable_says_so() -> None:
    feed = LiveFeed(MARKETS, seed=0, start_ms=START_MS, url="ws://127.0.0.1:9/ws")
    with pytest.raises(FeedUnavailable, match="unreachable from here"):
        await feed.start(timeout=5)


def test_synthetic_history_gives_charts_a_past() -> None:
    sim = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=2, history_minutes=120))
    bars = sim.venue.markets["SOL"].candles.snapshot("1m", START_MS - 200 * 60_000, START_MS)
    assert len(bars) == 121  # 120 minutes of history and the live minute
    assert [b["t"] for b in bars] == [START_MS - (120 - i) * 60_000 for i in range(121)]
    assert bars[-2]["c"] == bars[-1]["o"] == "180.0"  # the history ends where the market starts
    assert all(float(b["l"]) <= min(float(b["o"]), float(b["c"])) <= float(b["h"]) for b in bars)
    none = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, history_minutes=0))
    assert len(none.venue.markets["SOL"].candles.snapshot("1m", 0, START_MS)) == 1
