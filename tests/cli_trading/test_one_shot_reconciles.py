"""One-shot shell commands that add risk reconcile first (issue 14 item 9): a loosening stop with no
owner running is checked against a reconciled account, not refused "not in sync"."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.cli_trading.conftest import ThreadedSim, master_of, rv

pytestmark = pytest.mark.timeout(300)


def test_a_loosening_stop_from_the_shell_reconciles_first(paper: ThreadedSim) -> None:
    user = master_of()
    opened = rv("trade", "open", "BTC", "long", "--stop", "59000", "--risk", "10", "--yes", "--json")
    assert opened.returncode == 0, opened.stderr[-1500:]
    moved = rv("trade", "stop", "BTC", "58900", "--json")  # a loosening: new risk, gated on `consistent`
    assert moved.returncode == 0, (moved.stdout[-1500:], moved.stderr[-1500:])
    assert json.loads(moved.stdout)["status"] == "done"
    stops = [Decimal(o["triggerPx"]) for o in paper.open_orders(user) if o.get("isTrigger")]
    assert stops == [Decimal(58900)]
