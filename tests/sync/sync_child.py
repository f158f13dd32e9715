"""A session's sync in a process of its own, for the SIGKILL test: `python -m tests.sync.sync_child
REDIS_URL BASE_URL MASTER`. Prints `consistent` once reconciled, then keeps recording until killed."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from revagent.bus import Bus
from revagent.events import SyncPhaseChanged
from revagent.exchange.hyperliquid import HyperliquidBridge
from revagent.models import SessionId
from revagent.risk import RiskSettings
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.ledger import LedgerStore
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.risk import RiskStore
from revagent.sync.options import SyncOptions
from revagent.sync.service import SyncService


async def main(redis_url: str, base_url: str, master: str) -> None:
    redis = await connect(redis_url)
    keys = Keyspace(SessionId(network="paper", address=master))
    bus = Bus()
    phases = bus.subscribe(SyncPhaseChanged)
    async with HyperliquidBridge(network="paper", base_url=base_url, master=master) as bridge:
        sync = SyncService(venue=bridge, ledger=LedgerStore(redis, keys), plans=TradePlans(redis, keys),
                           journal=OrderJournal(redis, keys), risk=RiskStore(redis, keys, RiskSettings()), bus=bus,
                           options=SyncOptions(snapshot_interval=timedelta(milliseconds=200)))
        task = asyncio.create_task(sync.run(), name="child:sync")
        while True:
            event = await phases.get()
            assert isinstance(event, SyncPhaseChanged)
            if event.phase == "consistent":
                print("consistent", flush=True)
                break
        await task


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
