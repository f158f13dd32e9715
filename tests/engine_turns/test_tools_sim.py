"""Tools end to end against the simulator: a scripted model (the fake Anthropic server, the real SDK)
opens a trade with a stop through the real bridge, gateway and risk engine; read tools and the
offline policy act on the same venue."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from revagent.bus import Bus
from revagent.config.keys import SecretKey
from revagent.engine.prompt import PromptLayers
from revagent.engine.proposals import ProposalService
from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.base import Provider
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.runner import TurnRunner
from revagent.engine.settings import EngineSettings
from revagent.engine.snapshot import SnapshotSource
from revagent.engine.threads import Threads, run_alert_turn
from revagent.engine.tools import ToolServices, default_tools
from revagent.engine.tools.base import ToolContext
from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
from revagent.exchange.onboarding import approve_agent
from revagent.exchange.sim import SimConfig, SimServer
from revagent.gateway import Gateway
from revagent.models import LegDirection, SessionId, WatcherLeg, WatcherPair, utc_now
from revagent.risk import RiskSettings
from revagent.store.alert_events import AlertEvent
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.repos import SessionStore
from revagent.store.risk import RiskStore
from revagent.store.threads import ThreadStore
from revagent.sync.reader import BridgeAccountReader
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool

D = Decimal
OPEN = {"market": "BTC", "side": "long", "stop_px": "59400", "target_px": "62000", "conviction": 65,
        "risk_usd": "20", "rationale": "reclaim of 60k with higher lows", "thesis": "60k reclaimed",
        "invalidation": "a close under 59.4k"}


@dataclass
class Desk:
    sim: SimServer
    bridge: HyperliquidBridge
    services: ToolServices
    threads: ThreadStore
    ops: Threads
    bus: Bus

    def runner(self, provider: Provider) -> TurnRunner:
        registry = default_tools()
        assert self.services.proposals is not None
        self.services.proposals.attach(registry, self.services)  # type: ignore[attr-defined]
        return TurnRunner(threads=self.threads, provider=provider, tools=registry, services=self.services,
                          settings=EngineSettings(model="claude-sonnet-4-6", max_tokens=1024, temperature=None),
                          layers=PromptLayers(), bus=self.bus)


@pytest.fixture
async def desk(redis_url: str) -> AsyncIterator[Desk]:
    sim = SimServer(SimConfig(seed=3, controls=True, manual_clock=True, history_minutes=600))
    base_url = await sim.start()
    sim.set_price("BTC", "60000")
    master, agent = SecretKey.generate(), SecretKey.generate()
    await approve_agent(base_url, master, agent.address(), "test", is_mainnet=False)
    redis = await connect(redis_url)
    sid = SessionId(network="paper", address=master.address())
    keys = Keyspace(sid)
    bridge = HyperliquidBridge(network="paper", base_url=base_url, master=master.address(), signer=agent.account())
    journal, plans = OrderJournal(redis, keys), TradePlans(redis, keys)
    risk = RiskStore(redis, keys, RiskSettings(max_risk_per_trade_usd=D(50), max_portfolio_risk_usd=D(200)))
    reader = BridgeAccountReader(bridge, plans, journal)
    bus = Bus()
    gateway = Gateway(exchange=bridge, journal=journal, plans=plans, account=reader, settings=risk.settings,
                      risk_state=risk, bus=bus, lease=None)
    store = SessionStore(redis, sid)
    threads = ThreadStore(redis, keys)
    snapshot = SnapshotSource(clock=utc_now, settings=risk.settings, risk_state=risk.get, account=reader,
                              plans=plans.open_trades, watchers=store.watchers.all, time_alerts=store.time_alerts.all,
                              notes=store.notes.all)
    proposals = ProposalService(threads, clock=utc_now, timeout=EngineSettings().proposal_timeout, bus=bus)
    services = ToolServices(gateway=gateway, plans=plans, journal=journal, risk=risk, store=store, clock=utc_now,
                            snapshot=snapshot, market=bridge, proposals=proposals, account=reader)
    try:
        yield Desk(sim, bridge, services, threads, Threads(threads, utc_now), bus)
    finally:
        await bridge.aclose()
        await redis.aclose()
        await sim.stop()


async def test_a_scripted_model_opens_a_trade_sized_by_the_risk_engine_and_linked_to_its_call(
        desk: Desk, fake: FakeAnthropic) -> None:
    fake.script(reply(text("Opening."), tool("open_trade", OPEN, id="toolu_e2e_open")), reply(text("Done.")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        thread = await desk.ops.chat()
        outcome = await desk.runner(provider).submit(thread.id, "go long BTC with a stop under 59.4k")
    finally:
        await provider.aclose()
    assert outcome.status == "done", outcome.error
    result = fake.requests[-1].body["messages"][-1]["content"][0]
    assert result.get("is_error") is not True, result["content"]
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None and plan.thread_id == thread.id and plan.tool_call_id == "toolu_e2e_open"
    assert outcome.trades == [plan.trade_id]
    orders = await desk.services.journal.for_action(f"tool:{thread.id}:toolu_e2e_open")
    assert {o.role for o in orders} == {"entry", "stop"} and all(o.trade_id == plan.trade_id for o in orders)
    entry = next(o for o in orders if o.role == "entry")
    # sized from the stop: $20 at risk between the expected fill (from the book) and the stop, fees
    # included, on the lot grid; the IOC limit stays at the slippage bound, where the risk is larger
    import json

    verdict = json.loads(result["content"])["verdict"]
    assert D("19") < D(verdict["risk_usd"]) <= D("20")
    assert entry.status == "filled" and entry.size == D(verdict["size"])
    expected, worst = D(verdict["expected_entry_px"]), D(verdict["worst_entry_px"])
    assert expected < worst == D(verdict["price"])
    assert entry.size * (expected - D("59400")) <= D("20") < entry.size * (worst - D("59400"))
    position = (await desk.services.account()).position("BTC")  # type: ignore[misc, union-attr]
    assert position is not None and position.stop_px == D("59400")
    # the ledger shows which decision opened which trade
    ctx = ToolContext(thread.id, "toolu_ledger", "chat", "autonomous", desk.services)
    ledger = await default_tools().execute("get_ledger", {}, ctx)
    assert '"tool_call_id":"toolu_e2e_open"' in ledger.content and plan.trade_id in ledger.content
    # a retried call (same thread, same tool call id) never places twice
    again = await default_tools().execute("open_trade", OPEN, ToolContext(thread.id, "toolu_e2e_open", "chat",
                                                                          "autonomous", desk.services))
    assert not again.is_error and again.content == result["content"]  # the call's recorded result
    assert len(await desk.services.journal.for_action(f"tool:{thread.id}:toolu_e2e_open")) == len(orders)


async def test_a_refusal_returns_every_reason_and_sends_nothing(desk: Desk, fake: FakeAnthropic) -> None:
    bad = {**OPEN, "risk_usd": "500", "target_px": "59900"}  # the target under the expected fill (~60000)
    fake.script(reply(tool("open_trade", bad)), reply(text("Standing aside.")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        thread = await desk.ops.chat()
        await desk.runner(provider).submit(thread.id, "max size long")
    finally:
        await provider.aclose()
    result = fake.requests[-1].body["messages"][-1]["content"][0]
    assert result["is_error"] is True
    assert "risk_per_trade" in result["content"] and "target_wrong_side" in result["content"]
    assert await desk.services.journal.all() == []


async def test_read_tools_against_the_venue(desk: Desk) -> None:
    registry = default_tools()
    ctx = ToolContext("th_read", "toolu_r", "chat", "autonomous", desk.services)
    market = await registry.execute("get_market", {"market": "BTC"}, ctx)
    assert not market.is_error and '"market":"BTC"' in market.content and "funding_pct_per_hour" in market.content
    book = await registry.execute("get_orderbook", {"market": "BTC", "depth": 3}, ctx)
    assert not book.is_error and '"bids"' in book.content
    candles = await registry.execute("get_candles", {"market": "BTC", "interval": "5m", "count": 100, "rows": 5},
                                     ctx)
    assert not candles.is_error, candles.content
    assert '"ema20"' in candles.content and '"rsi14"' in candles.content and '"vwap"' in candles.content
    chart = await registry.execute("get_chart", {"market": "BTC", "interval": "5m", "count": 60}, ctx)
    assert not chart.is_error and chart.image is not None
    assert base64.b64decode(chart.image.data_b64)[:8] == b"\x89PNG\r\n\x1a\n"
    unknown = await registry.execute("get_market", {"market": "NOPE"}, ctx)
    assert unknown.is_error


async def test_offline_policy_halves_the_risk_on_an_early_warning(desk: Desk, fake: FakeAnthropic) -> None:
    fake.script(reply(tool("open_trade", OPEN, id="toolu_open_2")), reply(text("ok")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        thread = await desk.ops.chat()
        await desk.runner(provider).submit(thread.id, "long")
    finally:
        await provider.aclose()
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None
    desk.sim.set_price("BTC", "59700")
    event = AlertEvent(alert_id=plan.trade_id, kind="early_warning",
                       trigger_key=f"{plan.trade_id}#early_warning:g1", fired_at=utc_now(), price=D("59700"),
                       context={"market": "BTC", "trade_id": plan.trade_id})
    outcome = await run_alert_turn(desk.runner(OfflineProvider()), desk.ops, event)
    assert outcome.status == "done" and outcome.tool_calls == 1, outcome
    after = await desk.services.plans.open_for("BTC")
    assert after is not None and after.stop_px == D("59550")  # midway between 59400 and 59700
    position = (await desk.services.account()).position("BTC")  # type: ignore[misc, union-attr]
    assert position is not None and position.stop_px == D("59550")


async def _open_btc(desk: Desk, fake: FakeAnthropic, call_id: str) -> str:
    fake.script(reply(tool("open_trade", OPEN, id=call_id)), reply(text("ok")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        thread = await desk.ops.chat()
        await desk.runner(provider).submit(thread.id, "long")
    finally:
        await provider.aclose()
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None
    return plan.trade_id


async def test_offline_policy_replaces_a_missing_stop_on_stop_loss_verification(desk: Desk,
                                                                                fake: FakeAnthropic) -> None:
    from revagent.exchange.protocol import CancelRequest

    trade_id = await _open_btc(desk, fake, "toolu_open_slv")
    account = await desk.services.account()  # type: ignore[misc]
    stop = next(t for t in account.triggers if t.kind == "stop")
    await desk.bridge.cancel_orders([CancelRequest("BTC", oid=stop.oid)])  # the stop vanished
    assert (await desk.services.account()).position("BTC").stop_px is None  # type: ignore[misc, union-attr]
    event = AlertEvent(alert_id=trade_id, kind="stop_loss_verification",
                       trigger_key=f"{trade_id}#stop_loss_verification:g1", fired_at=utc_now(),
                       context={"market": "BTC", "trade_id": trade_id})
    outcome = await run_alert_turn(desk.runner(OfflineProvider()), desk.ops, event)
    assert outcome.status == "done", outcome
    position = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert position is not None and position.stop_px == D("59400")  # back at the plan's stop


async def test_offline_policy_takes_half_off_at_the_profit_target_and_moves_the_stop_to_break_even(
        desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_pt")
    before = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert before is not None
    desk.sim.set_price("BTC", "62000")
    event = AlertEvent(alert_id=trade_id, kind="profit_target", trigger_key=f"{trade_id}#profit_target:g1",
                       fired_at=utc_now(), price=D("62000"), context={"market": "BTC", "trade_id": trade_id})
    outcome = await run_alert_turn(desk.runner(OfflineProvider()), desk.ops, event)
    assert outcome.status == "done", outcome
    after = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert after is not None
    assert after.size < before.size and after.size >= before.size / 2 - D("0.00001")  # half off (lot-rounded)
    assert after.stop_px is not None and after.stop_px >= before.entry_px * D("0.999")  # at break-even


async def test_market_conditions_for_the_snapshot_are_shared_for_a_few_seconds(desk: Desk) -> None:
    from revagent.engine.snapshot import build_snapshot
    from revagent.engine.tools.read import MarketConditionsSource

    source = MarketConditionsSource(desk.bridge, max_age_s=60)
    first = await source(["BTC", "NOPE"])
    assert list(first) == ["BTC"] and first["BTC"].mark_px > 0 and first["BTC"].open_interest is not None
    assert (await source(["BTC"]))["BTC"] is first["BTC"]  # cached: no second request
    assert desk.services.snapshot is not None
    await desk.services.store.watchers.put(WatcherPair(
        market="BTC", upper=WatcherLeg(level=D(70000), direction=LegDirection.ABOVE), created_at=utc_now()))
    inputs = await desk.services.snapshot.inputs()
    snap = build_snapshot(dataclasses.replace(inputs, markets=first))
    assert "## MARKETS\nBTC mark" in snap.text() and "BTC [w_" in snap.text()


# --- issue 12 item 4: a crash mid-batch never repeats a trade tool, and its re-run reports success ---


async def test_a_trade_call_cut_short_by_a_crash_runs_once_and_its_rerun_reports_the_orders(desk: Desk) -> None:
    import asyncio

    from revagent.store.alert_events import AlertEvent as Event
    from tests.engine_turns.test_tool_effects_resume import Batch, registry_with_block

    started, release = asyncio.Event(), asyncio.Event()
    registry = registry_with_block(started, release)
    calls = [("open_trade", OPEN), ("block", {})]
    event = Event(alert_id="t_open", kind="time", trigger_key="t_open#2026-03-02T12:00:00Z", fired_at=utc_now(),
                  context={"prompt": "open the planned trade"})
    thread = await desk.ops.for_alert(event)

    def runner(provider: Batch) -> TurnRunner:
        assert desk.services.proposals is not None
        desk.services.proposals.attach(registry, desk.services)  # type: ignore[attr-defined]
        return TurnRunner(threads=ThreadStore(desk.threads.redis, desk.threads.keys), provider=provider,
                          tools=registry, services=desk.services,
                          settings=EngineSettings(model="claude-sonnet-4-6", max_tokens=1024, temperature=None),
                          layers=PromptLayers(), bus=desk.bus)

    first = runner(Batch(calls))
    turn = asyncio.get_running_loop().create_task(first.run_alert(thread.id, event), name="test:alert-turn")
    await asyncio.wait_for(started.wait(), 20)
    turn.cancel()  # the owner dies after the entry and its stop went out
    with pytest.raises(asyncio.CancelledError):
        await turn
    release.set()
    await asyncio.sleep(0.05)
    # the crash lost the call's result record too (as a kill between the orders and the record would)
    await desk.threads.redis.hdel(desk.threads.keys.key(f"thread:{thread.id}:calls"), "toolu_batch_0")
    await desk.threads.redis.hset(desk.threads.keys.key(f"thread:{thread.id}:calls"), "toolu_batch_0",
                                  await _started_record(registry))
    again = runner(Batch(calls))
    outcome = await asyncio.wait_for(again.run_alert(thread.id, event), 30)
    assert outcome.status == "done", outcome
    orders = await desk.services.journal.for_action(f"tool:{thread.id}:toolu_batch_0")
    assert sorted(o.role for o in orders) == ["entry", "stop"]  # placed once
    log = await desk.threads.transcript(thread.id)
    [batch] = [e for e in log if e.kind == "tool_results"]
    opened = batch.blocks[0]
    assert opened["is_error"] is False, opened["content"]  # the re-run of the same call: its orders, a success
    assert "already sent by this call" in opened["content"]
    await first.aclose()
    await again.aclose()


async def _started_record(registry: object) -> str:
    """The `started` record of the batch's open_trade call, as its first run wrote it."""
    from revagent.engine.tools.effects import CallRecord, fingerprint
    from revagent.engine.tools.trade import OpenTradeArgs

    args = OpenTradeArgs.model_validate(OPEN).model_dump(mode="json", by_alias=True, exclude_none=True)
    return CallRecord(tool="open_trade", fingerprint=fingerprint("open_trade", args)).model_dump_json()


# --- issue 14 item 5: the offline policy's actions always happen ---------------------------------------


async def test_a_second_firing_in_a_trades_thread_runs_its_own_actions(desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_two")
    runner = desk.runner(OfflineProvider())
    desk.sim.set_price("BTC", "59700")
    early = AlertEvent(alert_id=trade_id, kind="early_warning", trigger_key=f"{trade_id}#early_warning:g1",
                       fired_at=utc_now(), price=D("59700"), context={"market": "BTC", "trade_id": trade_id})
    first = await run_alert_turn(runner, desk.ops, early)
    assert first.status == "done" and first.tool_calls == 1, first
    before = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert before is not None and before.stop_px == D("59550")
    # the same trade's profit target fires later: same thread, its own firing
    desk.sim.set_price("BTC", "62000")
    target = AlertEvent(alert_id=trade_id, kind="profit_target", trigger_key=f"{trade_id}#profit_target:g2",
                        fired_at=utc_now(), price=D("62000"), context={"market": "BTC", "trade_id": trade_id})
    second = await run_alert_turn(runner, desk.ops, target)
    assert second.status == "done", second
    assert "failed" not in second.text.lower() and "FAILED" not in second.text, second.text
    after = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert after is not None and after.size <= before.size / 2 + D("0.00001")  # the close happened
    assert after.stop_px is not None and after.stop_px >= before.entry_px * D("0.999")  # and the stop moved


async def test_a_duplicate_answer_to_a_call_that_is_not_a_retry_is_an_error(desk: Desk, fake: FakeAnthropic) -> None:
    from revagent.gateway import Action
    from revagent.risk import ModifyStop

    trade_id = await _open_btc(desk, fake, "toolu_open_dup")
    before = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert before is not None
    # another intent already used the action key of call toolu_shared (outside this registry)
    moved = await desk.services.gateway.submit(ModifyStop(market="BTC", origin="agent", stop_px=D("59500")),
                                               Action.tool("th_dup", "toolu_shared"))
    assert moved.status == "done", moved.message
    ctx = ToolContext("th_dup", "toolu_shared", "alert", "autonomous", desk.services)
    result = await default_tools().execute("close_position", {"trade_id": trade_id, "fraction": "0.5"}, ctx)
    assert result.is_error and "NOT EXECUTED" in result.content, result.content
    after = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert after is not None and after.size == before.size  # nothing was closed, and nothing says it was


async def test_a_liquidation_warning_reduces_the_position_until_liquidation_is_far_enough(
        desk: Desk, fake: FakeAnthropic) -> None:
    await desk.services.risk.set("max_leverage", "20")
    fake.script(reply(tool("open_trade", {**OPEN, "leverage": 20}, id="toolu_open_liq")), reply(text("ok")))
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        await desk.runner(provider).submit((await desk.ops.chat()).id, "long at 20x")
    finally:
        await provider.aclose()
    plan = await desk.services.plans.open_for("BTC")
    assert plan is not None, fake.requests[-1].body["messages"][-1]
    trade_id = plan.trade_id
    user = desk.services.store.sid.address
    account = await desk.services.account()  # type: ignore[misc]
    assert account is not None
    position = account.position("BTC")
    assert position is not None
    # most of the collateral leaves: the liquidation price comes within a few percent of the mark
    margin = abs(position.size) * position.mark_px / position.leverage
    error = desk.sim.withdraw(user, str((account.equity - margin * D("1.05") - 2).quantize(D("1"))))
    assert error is None, error
    near = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert near is not None and near.liquidation_px is not None
    pct = D(10)
    assert near.mark_px < near.liquidation_px * (1 + pct / 100), (near.mark_px, near.liquidation_px)  # it fires
    event = AlertEvent(alert_id=trade_id, kind="liquidation_warning",
                       trigger_key=f"{trade_id}#liquidation_warning:g1", fired_at=utc_now(), price=near.mark_px,
                       context={"market": "BTC", "trade_id": trade_id})
    outcome = await run_alert_turn(desk.runner(OfflineProvider()), desk.ops, event)
    assert outcome.status == "done" and outcome.tool_calls >= 1, outcome
    after = (await desk.services.account()).position("BTC")  # type: ignore[misc]
    assert after is not None and after.size < near.size  # reduced, not just talked about
    assert after.liquidation_px is None or after.mark_px >= after.liquidation_px * (1 + pct / 100), (
        after.mark_px, after.liquidation_px)
