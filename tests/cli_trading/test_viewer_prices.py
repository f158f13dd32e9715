"""A TUI attached to a daemon follows its prices (issue 14 item 7): the viewer's bus gets the
owner's mids as they move, as the owner's own TUI gets its ticks, not only the first snapshot's."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

import pytest

from revagent.config import load_config
from revagent.events import MidsUpdated
from revagent.exchange.sim.controls import SimControls
from revagent.tui.viewer_port import ViewerPort
from tests.tui.test_viewer import Owner, owner  # noqa: F401  (the owner fixture: a daemon session on its own loop)

pytestmark = pytest.mark.timeout(120)


async def test_the_viewer_follows_the_owners_price_ticks(owner: Owner) -> None:  # noqa: F811
    cfg = load_config()
    port = await ViewerPort.open(cfg, cfg.wallet())
    sub = port.subscribe()
    try:
        await port.connect()
        first = await port.load_snapshot()
        assert first.account is not None
        before = first.account.markets["BTC"].mid_px
        assert before is not None
        target = (before * Decimal("1.02")).quantize(Decimal(1))
        async with SimControls(os.environ["REVAGENT_PAPER__VENUE_URL"]) as ctl:
            await ctl.set_price("BTC", target)

        async def moved() -> Decimal:
            while True:
                event = await sub.get()
                if isinstance(event, MidsUpdated) and "BTC" in event.mids \
                        and abs(event.mids["BTC"] - target) < target * Decimal("0.002"):
                    return event.mids["BTC"]

        seen = await asyncio.wait_for(moved(), timeout=10)  # no snapshot asked: the viewer follows by itself
        assert seen != before
    finally:
        await port.aclose()
