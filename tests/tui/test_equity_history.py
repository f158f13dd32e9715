"""The panel's equity line reads the sync loop's minute points from the ledger (real Redis), with the
current equity as the newest point; the ledger is re-read at most once per refresh period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis.asyncio as aioredis

from revagent.models import SessionId
from revagent.store.keys import Keyspace
from revagent.store.ledger import LedgerStore
from revagent.tui.equity import EquityHistory

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
KEYS = Keyspace(SessionId(network="paper", address="0x" + "ab" * 20))


async def test_the_line_starts_with_the_recorded_minutes_and_ends_with_the_current_equity(
        redis_client: aioredis.Redis) -> None:
    ledger = LedgerStore(redis_client, KEYS)
    for i in range(300):  # five hours of minute points, older than the window first
        await ledger.record_equity(T0 + timedelta(minutes=i), Decimal(10_000 + i))
    now = [T0 + timedelta(minutes=300)]
    mono = [0.0]
    history = EquityHistory(ledger, minutes=240, refresh_s=60, clock=lambda: now[0], monotonic=lambda: mono[0])

    points = await history.points(Decimal("10500"))
    assert len(points) == 240 and points[-1] == Decimal("10500")
    assert points[0] == Decimal(10_000 + 61)  # the window: the last 240 minutes, the newest being current
    assert points[-2] == Decimal(10_299)

    await ledger.record_equity(T0 + timedelta(minutes=300), Decimal("10400"))
    mono[0] = 30.0  # within the refresh period: the ledger is not re-read
    assert (await history.points(Decimal("10501")))[-2] == Decimal(10_299)
    mono[0] = 61.0
    assert (await history.points(Decimal("10502")))[-2:] == (Decimal("10400"), Decimal("10502"))
    assert (await history.points(None))[-1] == Decimal("10400")  # no account read: the minutes alone


async def test_a_fresh_wallet_shows_just_the_current_equity(redis_client: aioredis.Redis) -> None:
    history = EquityHistory(LedgerStore(redis_client, KEYS), clock=lambda: T0)
    assert await history.points(Decimal("10000")) == (Decimal("10000"),)
    assert await history.points(None) == ()
