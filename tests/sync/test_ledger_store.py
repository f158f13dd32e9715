"""The ledger's Redis repository: facts recorded exactly once, cursors, events, equity history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from revagent.exchange.types import LedgerDelta, LedgerUpdate
from revagent.models import SessionId
from revagent.store import ledger as ledger_mod
from revagent.store.keys import Keyspace
from revagent.store.ledger import LedgerEvent, LedgerStore
from revagent.sync.fills import transfer_amount
from revagent.sync.trades import build_trades
from tests.sync.builders import Account, recorded_fills

SID = SessionId(network="paper", address="0x" + "ab" * 20)


@pytest.fixture
def store(redis_client: aioredis.Redis) -> LedgerStore:
    return LedgerStore(redis_client, Keyspace(SID))


async def test_the_500_recorded_fills_are_recorded_once_even_when_fed_twice(store: LedgerStore) -> None:
    fills = recorded_fills()
    assert len(await store.record_fills(list(reversed(fills)))) == 500
    assert await store.record_fills(fills) == []
    assert await store.record_fills(fills[:10] + fills[:10]) == []
    assert await store.count("fills") == 500
    assert await store.last_time_ms("fills") == max(f.time for f in fills)
    stored = await store.fills()
    assert stored == list(reversed(fills))
    book = build_trades(stored)
    assert sum(t.gross_pnl for t in book.trades()) == sum(f.closed_pnl for f in fills) == Decimal("-152.586132")


async def test_fills_with_tids_are_keyed_by_tid_and_duplicates_in_one_batch_count_once(store: LedgerStore) -> None:
    a = Account()
    f = a.trade("BTC", "1", "100")
    new = await store.record_fills([f, f, f.model_copy(update={"cloid": "0x" + "2" * 32})])
    assert new == [f]  # same tid: the same fill, whatever else differs
    assert await store.count("fills") == 1


async def test_funding_and_transfers_are_recorded_once(store: LedgerStore) -> None:
    a = Account()
    payments = [a.funding("BTC", "-0.1"), a.funding("BTC", "0.2")]
    assert len(await store.record_funding(payments)) == 2
    assert await store.record_funding(payments) == []
    assert await store.funding() == payments
    deposit = LedgerUpdate(time=1, hash="0x01", delta=LedgerDelta(type="deposit", usdc=Decimal(100)))
    withdraw = LedgerUpdate(time=2, hash="0x02", delta=LedgerDelta.model_validate(
        {"type": "withdraw", "usdc": "40", "fee": "1", "nonce": 2}))
    assert await store.record_transfers([deposit, withdraw, deposit]) == [deposit, withdraw]
    assert await store.record_transfers([withdraw]) == []
    assert [transfer_amount(u) for u in await store.transfers()] == [Decimal(100), Decimal(-41)]
    assert await store.last_time_ms("transfers") == 2


async def test_events_keep_their_reason_and_filter_by_kind(store: LedgerStore) -> None:
    now = datetime.now(UTC)
    await store.record_event(LedgerEvent(kind="correction", reason="BTC has no stop", at=now, market="BTC",
                                         data={"result": "done"}))
    await store.record_event(LedgerEvent(kind="drift", reason="ETH appeared", at=now, market="ETH"))
    events = await store.events()
    assert [e.kind for e in events] == ["correction", "drift"] and all(e.id for e in events)
    (only,) = await store.events(kind="drift")
    assert only.reason == "ETH appeared"


async def test_equity_history_keeps_one_point_a_minute_and_is_bounded(store: LedgerStore,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_mod, "EQUITY_POINTS", 5)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await store.record_equity(t0, Decimal(100))
    await store.record_equity(t0 + timedelta(seconds=30), Decimal(101))
    assert await store.equity_history() == [(t0, Decimal(101))]
    for i in range(1, 10):
        await store.record_equity(t0 + timedelta(minutes=i), Decimal(100 + i))
    history = await store.equity_history()
    assert len(history) == 5 and history[-1] == (t0 + timedelta(minutes=9), Decimal(109))
    assert await store.equity_history(since=t0 + timedelta(minutes=8)) == history[-2:]


async def test_the_recorder_publishes_each_recorded_fill_once_and_counts_closed_trades(
        redis_client: aioredis.Redis) -> None:
    from revagent.bus import Bus
    from revagent.events import FillRecorded
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.sync.recorder import LedgerRecorder

    keys = Keyspace(SID)
    bus = Bus()
    events = bus.subscribe(FillRecorded, maxsize=2000)
    recorder = LedgerRecorder(LedgerStore(redis_client, keys), TradePlans(redis_client, keys),
                              OrderJournal(redis_client, keys), bus)
    await recorder.load()
    fills = list(reversed(recorded_fills()))
    assert len(await recorder.fills(fills[:300], source="rest")) == 300
    assert len(await recorder.fills(fills, source="websocket")) == 200
    assert await recorder.fills(fills, source="rest") == []
    assert events.queue.qsize() == 500
    _, closed = recorder.drain_for_risk(None, 0)
    assert len(closed) == sum(1 for t in recorder.book.trades() if t.status == "closed")
    fresh = LedgerRecorder(LedgerStore(redis_client, keys), TradePlans(redis_client, keys),
                           OrderJournal(redis_client, keys), bus)
    await fresh.load()
    assert fresh.book.trades() == recorder.book.trades()
    assert len(await fresh.ledger.events(kind="trade_closed", count=1000)) == len(closed)
