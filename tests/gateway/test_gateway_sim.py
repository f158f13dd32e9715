"""The gateway against the simulator through the real bridge: every order passes the risk engine,
goes out with its stop, and a retried action never places twice."""

from __future__ import annotations

from decimal import Decimal

from revagent.exchange.protocol import CancelRequest
from revagent.gateway import Action
from revagent.risk import ClosePosition, ModifyStop, OpenTrade, SetTarget
from tests.gateway.conftest import Desk


def long_btc(**kw: object) -> OpenTrade:
    base: dict[str, object] = {"market": "BTC", "side": "long", "stop_px": Decimal("59000"),
                               "risk_usd": Decimal("20"), "target_px": Decimal("63000"), "conviction": 60}
    base.update(kw)
    return OpenTrade.model_validate(base)


async def test_open_sends_the_entry_with_its_stop_and_sizes_from_the_risk(desk: Desk) -> None:
    result = await desk.gateway.submit(long_btc(), Action.tool("th_1", "call_1"), rationale="reclaim")
    assert result.status == "done", result.message
    verdict = result.verdict
    assert verdict is not None and verdict.size is not None
    # size = risk / (|entry - stop| + fees): about 20 / (~1600 + fees) at a slippage-bounded entry
    assert Decimal("0.009") <= verdict.size <= Decimal("0.02")
    roles = {o.role: o for o in result.orders}
    assert roles["entry"].status == "filled"
    assert roles["stop"].status in ("resting", "waiting", "triggered")
    account = await desk.reader()
    position = account.position("BTC")
    assert position is not None and position.size == verdict.size
    assert position.stop_px == Decimal("59000")
    plan = await desk.plans.open_for("BTC")
    assert plan is not None and plan.status == "open" and plan.tool_call_id == "call_1"
    assert plan.trade_id == result.trade_id


async def test_a_retried_action_never_places_twice(desk: Desk) -> None:
    action = Action.tool("th_1", "call_retry")
    first = await desk.gateway.submit(long_btc(), action)
    second = await desk.gateway.submit(long_btc(), action)
    assert first.status == "done"
    assert second.status == "duplicate"
    account = await desk.reader()
    position = account.position("BTC")
    assert position is not None and first.verdict is not None
    assert position.size == first.verdict.size  # one entry, not two
    stops = [t for t in account.triggers if t.market == "BTC" and t.kind == "stop"]
    assert len(stops) == 1


async def test_a_refusal_lists_every_reason_and_sends_nothing(desk: Desk) -> None:
    bad = long_btc(stop_px=Decimal("61000"), risk_usd=Decimal("500"), target_px=Decimal("60100"))
    result = await desk.gateway.submit(bad, Action.tool("th_1", "call_bad"))
    assert result.status == "refused"
    codes = {r.code.value for r in result.reasons}
    assert "stop_wrong_side" in codes
    assert "risk_per_trade" in codes
    assert await desk.journal.for_action(Action.tool("th_1", "call_bad").key) == []
    assert (await desk.reader()).positions == ()


async def test_tighten_the_stop_then_close(desk: Desk) -> None:
    opened = await desk.gateway.submit(long_btc(), Action.command("c1"))
    assert opened.status == "done"
    moved = await desk.gateway.submit(ModifyStop(market="BTC", origin="human", stop_px=Decimal("59500")),
                                      Action.command("c2"))
    assert moved.status == "done", moved.message
    account = await desk.reader()
    stops = [t for t in account.triggers if t.market == "BTC" and t.kind == "stop"]
    assert [s.trigger_px for s in stops] == [Decimal("59500")]
    plan = await desk.plans.open_for("BTC")
    assert plan is not None and plan.stop_px == Decimal("59500") and plan.stop_generation == 2
    target = await desk.gateway.submit(SetTarget(market="BTC", origin="human", target_px=Decimal("64000")),
                                       Action.command("c3"))
    assert target.status == "done"
    closed = await desk.gateway.submit(ClosePosition(market="BTC", origin="human"), Action.command("c4"))
    assert closed.status == "done", closed.message
    assert (await desk.reader()).position("BTC") is None


async def test_ensure_stop_replaces_a_stop_cancelled_by_hand_once(desk: Desk) -> None:
    opened = await desk.gateway.submit(long_btc(), Action.command("c1"))
    assert opened.status == "done"
    account = await desk.reader()
    stop = next(t for t in account.triggers if t.kind == "stop")
    assert stop.oid is not None
    await desk.bridge.cancel_orders([CancelRequest("BTC", oid=stop.oid)])  # behind the agent's back
    assert (await desk.reader()).position("BTC").stop_px is None  # type: ignore[union-attr]
    repaired = await desk.gateway.ensure_stop("BTC")
    assert repaired.status == "done", repaired.message
    assert (await desk.reader()).position("BTC").stop_px == Decimal("59000")  # type: ignore[union-attr]
    again = await desk.gateway.ensure_stop("BTC")
    assert "already in place" in again.message
    stops = [t for t in (await desk.reader()).triggers if t.kind == "stop"]
    assert len(stops) == 1


async def test_a_lost_response_is_resolved_by_cloid_without_a_second_order(desk: Desk) -> None:
    desk.sim.faults.lose_order_responses = 1
    action = Action.tool("th_1", "call_lost")
    first = await desk.gateway.submit(long_btc(), action)
    assert first.status == "unknown"
    retry = await desk.gateway.submit(long_btc(), action)
    assert retry.status == "duplicate", retry.message
    entry = next(o for o in retry.orders if o.role == "entry")
    assert entry.status == "filled"
    account = await desk.reader()
    assert account.position("BTC") is not None
    assert account.position("BTC").size == first.verdict.size  # type: ignore[union-attr]


async def test_adding_to_a_position_leaves_one_stop_covering_all_of_it(desk: Desk) -> None:
    first = await desk.gateway.submit(long_btc(), Action.command("add-1"))
    assert first.status == "done"
    desk.sim.set_price("BTC", "60500")
    added = await desk.gateway.submit(long_btc(stop_px=Decimal("59200"), target_px=Decimal("64000")),
                                      Action.command("add-2"))
    assert added.status == "done", added.message
    account = await desk.reader()
    position = account.position("BTC")
    assert position is not None and first.verdict is not None and added.verdict is not None
    assert position.size == first.verdict.size + added.verdict.size  # type: ignore[operator]
    stops = [t for t in account.triggers if t.market == "BTC" and t.kind == "stop"]
    assert [(s.size, s.trigger_px) for s in stops] == [(position.size, Decimal("59200"))]
    plan = await desk.plans.open_for("BTC")
    assert plan is not None and plan.trade_id == first.trade_id
    assert plan.risk_usd == first.verdict.risk_usd + added.verdict.risk_usd  # type: ignore[operator]
