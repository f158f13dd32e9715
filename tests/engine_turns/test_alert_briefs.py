"""Issue 16 item 1: the alert brief is built in code before the model's first call of an alert turn.

A scripted model (the fake Anthropic server, the real SDK) receives the brief against the simulator
(real bridge, gateway, candles): asserted on the exact user message of its first request, per alert
kind (watcher with the other leg's setup, early warning with the stop verification, stop-loss
verification with a missing stop, a LATE alert), and the model calls a management alert costs with
and without the brief."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.runner import TurnRunner
from revagent.engine.snapshot import SnapshotSource
from revagent.engine.threads import run_alert_turn
from revagent.engine.tools.read import MarketConditionsSource
from revagent.exchange.protocol import CancelRequest
from revagent.models import LegDirection, LegStatus, ProposedSetup, WatcherLeg, WatcherPair, utc_now
from revagent.store.alert_events import AlertEvent
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_tools_sim import Desk, _open_btc
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture


def user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a request (the turn context and the brief)."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if b.get("type") == "text")


async def run(desk: Desk, fake: FakeAnthropic, event: AlertEvent, *items: Any,
              brief: bool = True) -> tuple[Any, list[str]]:
    fake.script(*items)
    first = len(fake.requests)
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        runner = desk.runner(provider)
        if not brief:
            runner = TurnRunner(threads=runner.threads, provider=provider, tools=runner.tools,
                                services=runner.services, settings=runner.settings, layers=runner.layers,
                                bus=runner.bus, brief_alert=False)
        outcome = await run_alert_turn(runner, desk.ops, event)
    finally:
        await provider.aclose()
    return outcome, [user_text(r.body) for r in fake.requests[first:]]


async def test_a_watcher_brief_carries_both_legs_setups_the_distance_candles_and_the_decision(
        desk: Desk, fake: FakeAnthropic) -> None:
    now = utc_now()
    pair = WatcherPair(
        market="BTC", created_at=now - timedelta(hours=2), created_by="agent",
        upper=WatcherLeg(level=D("60000"), direction=LegDirection.ABOVE, thesis="breakout over 60k on volume",
                         setup=ProposedSetup(side="long", entry=D("60050"), stop=D("59200"), target=D("62500"),
                                             conviction=70, risk_usd=D("25")),
                         status=LegStatus.FIRED, fired_at=now, fired_price=D("60010")),
        lower=WatcherLeg(level=D("58000"), direction=LegDirection.BELOW, thesis="loss of 58k support",
                         setup=ProposedSetup(side="short", stop=D("58700"), target=D("56000"), conviction=55,
                                             risk_usd=D("15")),
                         status=LegStatus.DISARMED))
    await desk.services.store.watchers.put(pair)
    old = desk.services.snapshot
    assert old is not None  # the session's market conditions in the snapshot, as TurnEngine.build wires them
    desk.services.snapshot = SnapshotSource(clock=utc_now, settings=old._settings, risk_state=old._risk_state,
                                            account=old._account, plans=old._plans, watchers=old._watchers,
                                            time_alerts=old._time_alerts, notes=old._notes,
                                            markets=MarketConditionsSource(desk.bridge))
    event = AlertEvent(alert_id=pair.id, kind="watcher", trigger_key=f"{pair.id}#upper:g1", fired_at=now,
                       price=D("60010"),
                       context={"book": "watchers", "slot": "upper", "level": "60000", "direction": "above",
                                "generation": 1, "previous_price": "59990", "disarmed": [f"{pair.id}#lower:g1"],
                                "market": "BTC", "thesis": "breakout over 60k on volume",
                                "setup": pair.upper.setup.model_dump(mode="json", exclude_none=True),  # type: ignore[union-attr]
                                "created_by": "agent", "expires_at": None})
    outcome, briefs = await run(desk, fake, event, reply(text("Letting it lapse: no volume.")))
    assert outcome.status == "done" and outcome.model_calls == 1, outcome
    brief = briefs[0]
    assert f"ALERT BRIEF: watcher BTC ({pair.id})" in brief
    assert "fired: upper leg above 60000" in brief
    assert ('upper leg above 60000 [fired]; thesis "breakout over 60k on volume"; setup: side long entry 60050 '
            "stop 59200 target 62500 conviction 70 risk $25.00") in brief
    assert ('other lower leg below 58000 [disarmed]; thesis "loss of 58k support"; setup: side short stop 58700 '
            "target 56000 conviction 55 risk $15.00  (disarmed when this leg fired: the pair is consumed)") in brief
    assert "mid 60000 is +0.00%" in brief and "ATR 15m) from the level" in brief  # 10 h of history: no 1h ATR
    assert "candles 1h (" in brief and "candles 15m (" in brief and "RSI14" in brief and "ATR14" in brief
    assert ("DECISION ASKED: trade the setup with open_trade (stop 59200, risk $25.00, target 62500); or re-arm "
            "at new levels with set_watcher_pair; or let it lapse") in brief
    # the alert's market is in MARKETS although the pair is consumed (no position, no armed watcher)
    assert "## MARKETS\nBTC mark " in brief


async def test_an_early_warning_brief_has_the_stop_verification_r_and_the_options_and_saves_a_call(
        desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_brief")
    desk.sim.set_price("BTC", "59700")
    position = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert position is not None

    def event(n: int) -> AlertEvent:
        return AlertEvent(alert_id=trade_id, kind="early_warning", trigger_key=f"{trade_id}#early_warning:g{n}",
                          fired_at=utc_now(), price=D("59700"),
                          context={"market": "BTC", "trade_id": trade_id, "level": "59700", "direction": "below",
                                   "description": "half-way to the stop"})

    def model(body: dict[str, Any]) -> Any:
        """A model that does the mandatory first step itself when the message does not carry it."""
        said = json.dumps(body["messages"][-1]["content"])
        if "tool_result" in said or "STOP VERIFICATION" in said:
            return reply(text("Stop verified, thesis intact: holding."))
        return reply(text("Verifying the stop first."), tool("get_snapshot", {"section": "orders"},
                                                            id=f"toolu_verify_{len(body['messages'])}"))

    outcome, briefs = await run(desk, fake, event(1), model)
    assert outcome.status == "done" and outcome.tool_calls == 0, outcome
    brief = briefs[0]
    size = format(abs(position.size).normalize(), "f")
    assert f"STOP VERIFICATION: OK: exchange stop 59400 for {size} (covers {size} of {size}) vs plan 59400" in brief
    assert f"position: long {size} BTC @ " in brief and "mark 59700" in brief and "R now -" in brief
    assert "(declared risk $20.00)" in brief
    assert f"plan [{trade_id}]: stop 59400  target 62000  conviction 65  in trade " in brief
    assert 'rationale "reclaim of 60k with higher lows"' in brief
    assert "OPTIONS: tighten the stop (modify_stop" in brief and "or hold (a recorded outcome" in brief
    assert "candles 1h (" in brief and "candles 15m (" in brief  # the price action to re-check the thesis
    with_brief = outcome.model_calls
    without, _ = await run(desk, fake, event(2), model, model, brief=False)
    assert without.status == "done", without
    # the brief saves the round trip of the mandatory first step
    assert (with_brief, without.model_calls) == (1, 2)


async def test_a_stop_loss_verification_brief_reports_the_missing_stop_and_the_repair(
        desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_slv_brief")
    account = await desk.services.account()  # type: ignore[misc]
    stop = next(t for t in account.triggers if t.kind == "stop")
    await desk.bridge.cancel_orders([CancelRequest("BTC", oid=stop.oid)])
    event = AlertEvent(alert_id=trade_id, kind="stop_loss_verification",
                       trigger_key=f"{trade_id}#stop_loss_verification:g1", fired_at=utc_now(),
                       context={"market": "BTC", "side": "long", "status": "missing", "expected_px": "59400",
                                "expected_size": "0.02", "found_px": None, "found_size": None, "oids": [],
                                "detail": "no reduce-only stop on BTC", "protection": {"status": "failed"}})
    outcome, briefs = await run(desk, fake, event, reply(text("Re-placing the stop."),
                                                         tool("ensure_stop", {"market": "BTC"}, id="toolu_ens")),
                                reply(text("Stop back.")))
    assert outcome.status == "done", outcome
    brief = briefs[0]
    assert ("stop check that fired: missing (expected 59400 for 0.02, found None for None): "
            "no reduce-only stop on BTC") in brief
    assert "repair already made by the scheduler: {'status': 'failed'}" in brief
    assert "STOP VERIFICATION: MISSING: no reduce-only stop on the exchange for BTC (plan 59400)" in brief


async def test_a_late_alert_says_how_late_and_what_moved(desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_late")
    desk.sim.set_price("BTC", "59500")
    fired = utc_now() - timedelta(minutes=42)
    event = AlertEvent(alert_id=trade_id, kind="early_warning", trigger_key=f"{trade_id}#early_warning:g1",
                       fired_at=fired, price=D("59700"), late=True,
                       context={"market": "BTC", "trade_id": trade_id, "level": "59700", "direction": "below"})
    outcome, briefs = await run(desk, fake, event, reply(text("Late: holding, the stop is in place.")))
    assert outcome.status == "done", outcome
    brief = briefs[0]
    assert f"LATE: fired {fired.isoformat(timespec='seconds')}, handled " in brief and "(42m late)" in brief
    assert "moved meanwhile: 59700 at firing -> 59500 now (-0.34%)" in brief
    assert "Judge the setup as it is now" in brief


async def test_a_liquidation_warning_brief_says_how_far_liquidation_is_and_how_to_reduce(
        desk: Desk, fake: FakeAnthropic) -> None:
    await desk.services.risk.set("max_leverage", "20")
    fake.script(reply(tool("open_trade", {**test_tools_sim.OPEN, "leverage": 20}, id="toolu_open_liq_b")),
                reply(text("ok")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        await desk.runner(provider).submit((await desk.ops.chat()).id, "long at 20x")
    finally:
        await provider.aclose()
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None
    account = await desk.services.account()  # type: ignore[misc]
    position = account.position("BTC")
    assert position is not None
    margin = abs(position.size) * position.mark_px / position.leverage
    error = desk.sim.withdraw(desk.services.store.sid.address,
                              str((account.equity - margin * D("1.05") - 2).quantize(D("1"))))
    assert error is None, error
    near = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert near is not None and near.liquidation_px is not None
    away = (abs(near.mark_px - near.liquidation_px) / near.mark_px * 100).quantize(D("0.01"))
    event = AlertEvent(alert_id=plan.trade_id, kind="liquidation_warning",
                       trigger_key=f"{plan.trade_id}#liquidation_warning:g1", fired_at=utc_now(), price=near.mark_px,
                       context={"market": "BTC", "trade_id": plan.trade_id})
    outcome, briefs = await run(desk, fake, event, reply(text("Reducing next turn.")))
    assert outcome.status == "done", outcome
    brief = briefs[0]
    liq = format(near.liquidation_px.normalize(), "f")
    assert f"  liq {liq} ({away}% away)" in brief
    assert "STOP VERIFICATION: OK: exchange stop 59400" in brief
    assert ("OPTIONS: reduce the position (close_position with a fraction) until the liquidation price is far "
            "enough") in brief
    assert "or add margin to an isolated position (adjust_margin with add_usd" in brief
    assert ("MANDATORY FIRST ACTION: Verify the stop on the exchange before anything else, then reduce the position "
            "(close_position) or add margin to an isolated position (adjust_margin)") in brief


async def test_a_profit_target_brief_offers_partial_break_even_and_a_further_target(
        desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_pt_brief")
    desk.sim.set_price("BTC", "62000")
    event = AlertEvent(alert_id=trade_id, kind="profit_target", trigger_key=f"{trade_id}#profit_target:g1",
                       fired_at=utc_now(), price=D("62000"),
                       context={"market": "BTC", "trade_id": trade_id, "level": "62000", "direction": "above"})
    outcome, briefs = await run(desk, fake, event, reply(text("Holding for more.")))
    assert outcome.status == "done" and outcome.model_calls == 1, outcome
    brief = briefs[0]
    assert "level above 62000 crossed at " in brief and "mark 62000" in brief and "R now 3." in brief
    assert "STOP VERIFICATION: OK" in brief
    assert ("OPTIONS: take a partial (close_position with a fraction), move the stop to break-even or trail it "
            "(modify_stop), set a further target (set_target)") in brief


async def test_the_watcher_decision_is_recorded_traded_re_armed_or_lapsed(desk: Desk, fake: FakeAnthropic) -> None:
    from revagent.engine.threads import AlertTurnHandler
    from revagent.store.alert_queue import QueuedAlert

    async def fire(n: int, *answers: Any) -> str:
        now = utc_now()
        pair = WatcherPair(market="BTC", created_at=now - timedelta(hours=1), created_by="agent",
                           upper=WatcherLeg(level=D("60000"), direction=LegDirection.ABOVE, thesis="breakout",
                                            setup=ProposedSetup(side="long", stop=D("59400"), risk_usd=D("20")),
                                            status=LegStatus.FIRED, fired_at=now))
        await desk.services.store.watchers.put(pair)
        event = AlertEvent(alert_id=pair.id, kind="watcher", trigger_key=f"{pair.id}#upper:g1", fired_at=now,
                           price=D("60000"), context={"market": "BTC", "slot": "upper", "level": "60000",
                                                      "direction": "above", "disarmed": []})
        fake.script(*answers)
        provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
        try:
            handler = AlertTurnHandler(desk.runner(provider), desk.ops)
            result = await handler(QueuedAlert("normal", f"1-{n}", event, 1, False))
        finally:
            await provider.aclose()
        assert result.ok, result
        return str(result.decision)

    assert await fire(1, reply(text("No volume behind it: letting it lapse."))) == "lapsed"
    rearm = {"market": "BTC", "upper": {"level": "61000", "thesis": "a real breakout clears 61k", "side": "long",
                                        "stop_px": "60300", "risk_usd": "15"}}
    assert await fire(2, reply(text("Re-arming higher."), tool("set_watcher_pair", rearm, id="toolu_rearm")),
                      reply(text("Re-armed at 61k."))) == "re-armed"
    assert await fire(3, reply(text("Taking the setup."), tool("open_trade", test_tools_sim.OPEN, id="toolu_take")),
                      reply(text("Opened."))) == "traded"
