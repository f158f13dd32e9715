"""The agent's watcher tools (issue 16.4): legs carry the full setup (entry and conviction too), and
`modify_watcher` changes a pair in place (same id, the changed leg re-armed at its next
generation) instead of replacing it. Bad arguments and impossible changes change nothing; a call
runs once per tool-call id. Against the simulator's mids, through the real store."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.models import LegStatus
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_tools_sim import Desk

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture (BTC mid 60000)

PAIR = {"market": "BTC",
        "upper": {"level": "61000", "thesis": "range high breaks", "side": "long", "entry_px": "61050",
                  "stop_px": "60400", "target_px": "63000", "conviction": 70, "risk_usd": "25"},
        "lower": {"level": "59000", "thesis": "range low fails", "entry_px": "58950", "stop_px": "59500",
                  "conviction": 45},
        "expires_in": "24h"}


def ctx(desk: Desk, call: str) -> ToolContext:
    return ToolContext("th_watch", call, "chat", "autonomous", desk.services)


async def test_legs_carry_entry_and_conviction_and_modify_keeps_the_pair(desk: Desk) -> None:
    tools = default_tools()
    made = await tools.execute("set_watcher_pair", PAIR, ctx(desk, "toolu_w_set"))
    assert not made.is_error, made.content
    wid = json.loads(made.content)["watcher_id"]
    pair = await desk.services.store.watchers.get(wid)
    assert pair is not None and pair.upper is not None and pair.lower is not None
    assert (pair.upper.setup.entry, pair.upper.setup.conviction) == (D("61050"), 70)
    assert (pair.lower.setup.entry, pair.lower.setup.conviction) == (D("58950"), 45)
    assert pair.lower.setup.side is not None and pair.lower.setup.side.value == "short"  # stop over the entry
    # move the lower leg: same pair, the upper leg untouched, the lower re-armed at generation 2
    change = {"id": wid, "lower": {"level": "59200", "thesis": "retest of the low", "entry_px": "59150",
                                   "stop_px": "59600", "target_px": "58000", "conviction": 55, "risk_usd": "15"}}
    moved = await tools.execute("modify_watcher", change, ctx(desk, "toolu_w_mod"))
    assert not moved.is_error, moved.content
    after = await desk.services.store.watchers.get(wid)
    assert after is not None and after.lower is not None and after.upper == pair.upper
    assert after.expires_at == pair.expires_at and after.created_at == pair.created_at
    assert (after.lower.level, after.lower.thesis, after.lower.generation, after.lower.status) == (
        D("59200"), "retest of the low", 2, LegStatus.ARMED)
    assert (after.lower.setup.entry, after.lower.setup.target, after.lower.setup.conviction) == (
        D("59150"), D("58000"), 55)
    assert [p.id for p in await desk.services.store.watchers.all()] == [wid]  # modified, not replaced
    # the same call again: its recorded result, nothing written again
    again = await tools.execute("modify_watcher", change, ctx(desk, "toolu_w_mod"))
    assert again.content == moved.content
    assert await desk.services.store.watchers.get(wid) == after


async def test_bad_watcher_changes_change_nothing(desk: Desk) -> None:
    tools = default_tools()
    made = await tools.execute("set_watcher_pair", PAIR, ctx(desk, "toolu_w_set2"))
    wid = json.loads(made.content)["watcher_id"]
    before = await desk.services.store.watchers.get(wid)
    bad = [
        ({"id": wid, "lower": {"level": "60500"}}, "must be below the current mid"),  # would fire at once
        ({"id": wid, "upper": {"level": "58000"}}, "must be above the current mid"),
        ({"id": wid, "upper": {"level": "62000", "side": "long", "entry_px": "62000", "stop_px": "62500"}},
         "a stop over the entry is a short, not a long"),
        ({"id": wid, "lower": {"level": "59500", "conviction": 101}}, "conviction"),
        ({"id": wid}, "give upper, lower and/or expires_in"),
        ({"id": "w_nope", "lower": {"level": "59100"}}, "no watcher 'w_nope'"),
    ]
    for n, (args, message) in enumerate(bad):
        result = await tools.execute("modify_watcher", args, ctx(desk, f"toolu_w_bad{n}"))
        assert result.is_error and message in result.content, (args, result.content)
    assert await desk.services.store.watchers.get(wid) == before
    # a consumed pair is not modified: set a new one
    cancelled = await tools.execute("cancel_watcher", {"id": wid}, ctx(desk, "toolu_w_cancel"))
    assert not cancelled.is_error
    late = await tools.execute("modify_watcher", {"id": wid, "lower": {"level": "59100"}}, ctx(desk, "toolu_w_late"))
    assert late.is_error and "no longer active" in late.content and "nothing changed" in late.content
