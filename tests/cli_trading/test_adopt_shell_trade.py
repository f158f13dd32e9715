"""A trade opened from the shell is not drift (issue 14 item 10): `revagent trade open` under a
one-shot lease records a trade plan; a daemon started afterwards adopts the position instead of
reporting "BTC ... appeared on the exchange"."""

from __future__ import annotations

import asyncio

import pytest

from revagent.config import load_config
from revagent.runtime.session import Session
from tests.cli_trading.conftest import ThreadedSim, rv

pytestmark = pytest.mark.timeout(300)


def test_a_position_with_a_recorded_plan_is_adopted_not_drift(paper: ThreadedSim) -> None:
    opened = rv("trade", "open", "BTC", "long", "--stop", "59000", "--risk", "10", "--yes", "--json")
    assert opened.returncode == 0, opened.stderr[-1500:]

    async def start_owner() -> tuple[list[str], list[str]]:
        cfg = load_config()
        session = Session(cfg, cfg.wallet(), role="daemon")
        await session.start(serve_commands=False)
        try:
            await session.start_trading()
            assert session.sync is not None
            await session.sync.wait_consistent(30)
            report = session.sync.last_report
            assert report is not None
            return ([d.detail for d in report.drift],
                    [c.reason for c in report.corrections if c.kind == "adopted"])
        finally:
            await session.stop("test finished")

    drift, adopted = asyncio.run(start_owner())
    assert drift == []
    assert len(adopted) == 1 and "BTC" in adopted[0] and "tr_" in adopted[0]
