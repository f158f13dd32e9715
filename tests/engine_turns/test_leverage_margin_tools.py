"""`set_leverage` and `adjust_margin` (issue 16.4): typed actions through the risk engine and the
gateway to the exchange (the simulator, through the real bridge); bad arguments and refusals change
nothing; each effect runs once per tool-call id."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.models import utc_now
from revagent.risk import halt
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_tools_sim import OPEN, Desk

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture


def ctx(desk: Desk, call: str) -> ToolContext:
    return ToolContext("th_margin", call, "chat", "autonomous", desk.services)


def venue_leverage(desk: Desk, market: str) -> tuple[bool, int]:
    acct = desk.sim.venue.account(desk.services.store.sid.address)
    lev = acct.leverage.get(market)
    assert lev is not None
    return lev.is_cross, lev.value


def iso_margin(desk: Desk, market: str) -> Decimal:
    return D(desk.sim.venue.account(desk.services.store.sid.address).positions[market].iso_margin)


async def test_set_leverage_through_the_risk_engine_once_per_call(desk: Desk) -> None:
    tools = default_tools()
    await desk.services.risk.set("max_leverage", "10")
    result = await tools.execute("set_leverage", {"market": "BTC", "leverage": 4, "margin_mode": "isolated"},
                                 ctx(desk, "toolu_lev"))
    assert not result.is_error, result.content
    assert venue_leverage(desk, "BTC") == (False, 4)
    # over the cap: refused with the reason, nothing changed
    over = await tools.execute("set_leverage", {"market": "BTC", "leverage": 25}, ctx(desk, "toolu_lev_over"))
    assert over.is_error and "leverage" in over.content and "nothing was sent" in over.content
    assert venue_leverage(desk, "BTC") == (False, 4)
    # bad arguments: a validation error back to the model, nothing changed
    bad = await tools.execute("set_leverage", {"market": "BTC", "leverage": "lots"}, ctx(desk, "toolu_lev_bad"))
    assert bad.is_error and "leverage" in bad.content
    assert venue_leverage(desk, "BTC") == (False, 4)
    # the same call id again is the recorded result: the venue is not asked again
    await tools.execute("set_leverage", {"market": "BTC", "leverage": 3}, ctx(desk, "toolu_lev_2"))
    assert venue_leverage(desk, "BTC") == (True, 3)  # no position: the settings' margin mode (cross)
    again = await tools.execute("set_leverage", {"market": "BTC", "leverage": 4, "margin_mode": "isolated"},
                                ctx(desk, "toolu_lev"))
    assert again.content == result.content and venue_leverage(desk, "BTC") == (True, 3)


async def test_adjust_margin_adds_and_removes_isolated_margin(desk: Desk) -> None:
    tools = default_tools()
    await desk.services.risk.set("max_leverage", "10")
    none = await tools.execute("adjust_margin", {"market": "BTC", "add_usd": 50}, ctx(desk, "toolu_m_none"))
    assert none.is_error and "no_position" in none.content
    opened = await tools.execute("open_trade", {**OPEN, "leverage": 5, "margin_mode": "isolated",
                                                "thesis": "t", "invalidation": "i"}, ctx(desk, "toolu_m_open"))
    assert not opened.is_error, opened.content
    before = iso_margin(desk, "BTC")
    liq_before = (await desk.services.account()).position("BTC").liquidation_px  # type: ignore[misc, union-attr]
    added = await tools.execute("adjust_margin", {"market": "BTC", "add_usd": "50"}, ctx(desk, "toolu_m_add"))
    assert not added.is_error, added.content
    assert iso_margin(desk, "BTC") == before + 50
    assert json.loads(added.content)["status"] == "done"
    liq_after = (await desk.services.account()).position("BTC").liquidation_px  # type: ignore[misc, union-attr]
    assert liq_before is not None and liq_after is not None and liq_after < liq_before  # further from a long
    # once per call id
    again = await tools.execute("adjust_margin", {"market": "BTC", "add_usd": "50"}, ctx(desk, "toolu_m_add"))
    assert again.content == added.content and iso_margin(desk, "BTC") == before + 50
    # both or neither: a validation error
    both = await tools.execute("adjust_margin", {"market": "BTC", "add_usd": 5, "remove_usd": 5},
                               ctx(desk, "toolu_m_both"))
    assert both.is_error and "exactly one of add_usd or remove_usd" in both.content
    # halted: adding margin (it moves liquidation away) passes, removing it is refused
    await desk.services.risk.update(lambda s: halt(s, utc_now(), "test"))
    removed = await tools.execute("adjust_margin", {"market": "BTC", "remove_usd": 20}, ctx(desk, "toolu_m_rm"))
    assert removed.is_error and "halted" in removed.content and iso_margin(desk, "BTC") == before + 50
    more = await tools.execute("adjust_margin", {"market": "BTC", "add_usd": 10}, ctx(desk, "toolu_m_add2"))
    assert not more.is_error, more.content
    assert iso_margin(desk, "BTC") == before + 60


async def test_adjust_margin_on_a_cross_position_is_refused(desk: Desk) -> None:
    tools = default_tools()
    opened = await tools.execute("open_trade", {**OPEN, "thesis": "t", "invalidation": "i"},
                                 ctx(desk, "toolu_x_open"))
    assert not opened.is_error, opened.content
    result = await tools.execute("adjust_margin", {"market": "BTC", "add_usd": 50}, ctx(desk, "toolu_x_add"))
    assert result.is_error and "isolated" in result.content and "nothing was sent" in result.content
