"""The periodic REST snapshot costs a small share of Hyperliquid's 1,200 weight per minute (issue 18: a full
snapshot every 10 s cost 124 weight, 62% of the budget). With the websocket up and the view confirmed, the
periodic tick is a cheap check (`clearinghouseState`, weight 2) compared with the live view; a full snapshot
follows every `full_snapshot_every` ticks, on drift, after fills and acks, and on reconnect. Measured on the
venue side (the simulator counts the weight of every request it receives)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.sync.conftest import Rig


async def _const(value: bool) -> bool:
    return value


async def test_steady_state_snapshots_cost_little_weight_and_still_catch_drift(rig: Rig) -> None:
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"), what="consistent")
    interval = rig.sync.options.snapshot_interval.total_seconds()
    await asyncio.sleep(interval / 2)
    rig.sim.weight_served.clear()
    await asyncio.sleep(interval * 6)  # six periodic ticks, nothing happening
    served = dict(rig.sim.weight_served)
    total = sum(served.values())
    print(f"weight over 6 periodic ticks: {total} {served}")
    # one full snapshot (state 2 + open orders 20 + contexts 20 + mids 2 + fills 20 + transfers 20 [+ funding
    # 20]) and five cheap checks (2 each) at most; six full snapshots were 504-524
    assert total <= 130, served

    # a change the websocket never delivered (its events lost): the next cheap check sees the position
    sim = rig.sim
    sim.venue.place_orders(rig.master, [{"a": 0, "b": True, "p": "70000", "s": "0.01", "r": False,
                                         "t": {"limit": {"tif": "Ioc"}}}], "na", sim.venue.new_hash())
    sim.venue.events.clear()

    def seen() -> bool:
        view = rig.sync.view
        return bool(view and [p.size for p in view.positions if p.market == "BTC"] == [Decimal("0.01")])

    await rig.until(lambda: _const(seen()), timeout=interval * 3, what="the unannounced position in the view")
