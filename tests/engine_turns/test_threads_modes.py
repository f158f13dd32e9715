"""Threads, approval modes, proposals, compaction and alert-turn resume."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.threads import alert_thread_id, run_alert_turn
from revagent.errors import UsageError
from revagent.events import TurnEvent
from revagent.store.alert_events import AlertEvent
from revagent.store.threads import TranscriptEntry
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool

OPEN_TOO_BIG = {"market": "BTC", "side": "long", "stop_px": "59000", "target_px": "65000", "conviction": 70,
                "risk_usd": "500", "rationale": "breakout retest",
                "thesis": "breakout retest holds", "invalidation": "back under the breakout"}


def watcher_event(harness: Harness, key: str = "w_1#upper:g1") -> AlertEvent:
    return AlertEvent(alert_id=key.split("#")[0], kind="watcher", trigger_key=key, fired_at=harness.clock(),
                      price=Decimal("61000"), context={"market": "BTC", "thesis": "breakout above 61k"})


async def test_chat_threads_create_rename_close(harness: Harness) -> None:
    ops = harness.thread_ops
    main = await ops.chat()
    assert main.title == "main" and (await ops.chat("main")).id == main.id
    other = await ops.chat("eth ideas")
    assert other.id != main.id
    renamed = await ops.rename(other.id, "ETH swing")
    assert (await ops.chat("eth swing")).id == renamed.id
    await ops.close(renamed.id)
    fresh = await ops.chat("ETH swing")  # a closed thread's name starts a new thread
    assert fresh.id != renamed.id and fresh.status == "open"
    assert sorted((t.title, t.status) for t in await harness.threads.all()) == [
        ("ETH swing", "closed"), ("ETH swing", "open"), ("main", "open")]


async def test_transcripts_are_isolated_per_thread(harness: Harness, fake: FakeAnthropic,
                                                   anthropic: AnthropicProvider) -> None:
    fake.script(reply(text("a")), reply(text("b")))
    runner = harness.runner(anthropic)
    t1 = await harness.thread_ops.chat("one")
    t2 = await harness.thread_ops.chat("two")
    await runner.submit(t1.id, "secret in one")
    await runner.submit(t2.id, "hello two")
    body = fake.requests[-1].body
    assert "secret in one" not in str(body["messages"])
    assert [e.text for e in await harness.threads.transcript(t2.id) if e.kind == "user"] == ["hello two"]


async def test_copilot_chat_makes_a_proposal_and_the_decision_reaches_the_next_turn(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("open_trade", OPEN_TOO_BIG)), reply(text("Proposed.")), reply(text("ok")))
    runner = harness.runner(anthropic, chat_mode="copilot")
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    outcome = await runner.submit(thread.id, "long BTC", listener=events.append)
    assert outcome.status == "done" and len(outcome.proposals) == 1
    pid = outcome.proposals[0]
    proposal = await harness.threads.get_proposal(pid)
    assert proposal is not None and proposal.status == "pending" and proposal.tool == "open_trade"
    assert proposal.preview["approved"] is False and any("risk_per_trade" in r for r in proposal.preview["reasons"])
    assert any(e.kind == "proposal" and e.data["id"] == pid for e in events)
    assert await harness.services.journal.all() == []  # nothing sent while it waits
    decided = await harness.proposals.decide(pid, approve=False, by="cli")
    assert decided.status == "rejected"
    with pytest.raises(UsageError):
        await harness.proposals.decide(pid, approve=True)
    await runner.submit(thread.id, "and now?")
    last_user = fake.requests[-1].body["messages"][-1]["content"]
    assert any(f"proposal {pid}" in b.get("text", "") and "rejected" in b.get("text", "") for b in last_user)


async def test_approving_executes_the_same_call_through_the_gateway(harness: Harness, fake: FakeAnthropic,
                                                                    anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("open_trade", OPEN_TOO_BIG, id="toolu_fixed_1")), reply(text("Proposed.")))
    runner = harness.runner(anthropic, chat_mode="copilot")
    thread = await harness.thread_ops.chat()
    outcome = await runner.submit(thread.id, "long BTC")
    decided = await harness.proposals.decide(outcome.proposals[0], approve=True, by="tui")
    # executed through the gateway: the risk engine refuses the oversized trade, so it failed, with reasons
    assert decided.status == "failed" and "risk_per_trade" in decided.result


async def test_copilot_alert_waits_then_does_not_trade(harness: Harness, fake: FakeAnthropic,
                                                       anthropic: AnthropicProvider) -> None:
    harness.proposals.timeout = timedelta(seconds=0.2)
    fake.script(reply(tool("open_trade", OPEN_TOO_BIG)), reply(text("No answer; standing aside.")))
    runner = harness.runner(anthropic, alert_mode="copilot")
    outcome = await run_alert_turn(runner, harness.thread_ops, watcher_event(harness))
    assert outcome.status == "done"
    result = fake.requests[-1].body["messages"][-1]["content"][0]
    assert result["is_error"] is True and "nothing was sent" in str(result["content"])
    proposal = await harness.threads.get_proposal(outcome.proposals[0])
    assert proposal is not None and proposal.status == "expired"


async def test_readonly_refuses_orders_but_protective_actions_pass(harness: Harness, fake: FakeAnthropic,
                                                                   anthropic: AnthropicProvider) -> None:
    fake.script(reply(tool("open_trade", OPEN_TOO_BIG), tool("ensure_stop", {"market": "BTC"}),
                      tool("halt_trading", {"reason": "testing"})), reply(text("ok")))
    runner = harness.runner(anthropic, chat_mode="readonly")
    thread = await harness.thread_ops.chat()
    await runner.submit(thread.id, "do things")
    results = fake.requests[-1].body["messages"][-1]["content"]
    assert results[0]["is_error"] is True and "read-only" in str(results[0]["content"])
    assert results[1].get("is_error") is not True and "nothing to protect" in str(results[1]["content"])
    assert results[2].get("is_error") is not True
    assert (await harness.services.risk.get()).halted


async def test_compaction_summarises_older_turns_visibly(harness: Harness, fake: FakeAnthropic,
                                                         anthropic: AnthropicProvider) -> None:
    fake.script(*(reply(text(f"answer {i} " + "blah " * 60)) for i in range(4)))
    runner = harness.runner(anthropic, context_budget_tokens=300, keep_turns=1)
    thread = await harness.thread_ops.chat()
    events: list[TurnEvent] = []
    for i in range(4):
        outcome = await runner.submit(thread.id, f"question {i} " + "words " * 40, listener=events.append)
        assert outcome.status == "done", outcome.error
    log = await harness.threads.transcript(thread.id)
    summaries = [e for e in log if e.kind == "summary"]
    assert summaries and "Trader" in summaries[0].text and "question 0" in summaries[0].text
    assert any(e.kind == "notice" and "compaction" in e.data for e in events)
    first = fake.requests[-1].body["messages"][0]["content"][0]["text"]
    assert first.startswith("[Summary of the earlier conversation]")
    assert "question 0" not in str(fake.requests[-1].body["messages"][1:])


async def test_alert_turn_resumes_after_a_crash_and_never_reruns_a_finished_one(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    event = watcher_event(harness, "w_9#upper:g1")
    thread = await harness.thread_ops.for_alert(event)
    assert thread.id == alert_thread_id(event) == "alert:w_9" and thread.kind == "alert"
    now = harness.clock()
    # the crash: the model asked for a tool call, the process died before running it
    await harness.threads.append(thread.id,
                                 TranscriptEntry(kind="turn_start", turn_id="turn_x", at=now,
                                                 data={"alert_key": event.trigger_key}),
                                 TranscriptEntry(kind="user", turn_id="turn_x", at=now, text="Alert fired"),
                                 TranscriptEntry(kind="assistant", turn_id="turn_x", at=now, blocks=[
                                     {"type": "tool_use", "id": "toolu_crash", "name": "add_note",
                                      "input": {"text": "watcher fired at 61k"}}]))
    fake.script(reply(text("Handled after restart.")))
    runner = harness.runner(anthropic)
    outcome = await run_alert_turn(runner, harness.thread_ops, event)
    assert outcome.status == "done" and outcome.resumed and outcome.turn_id == "turn_x"
    assert [n.text for n in await harness.store.notes.all()] == ["watcher fired at 61k"]
    body = fake.requests[-1].body
    assert body["messages"][-1]["content"][0]["tool_use_id"] == "toolu_crash"
    # redelivered again: reported, not re-run
    count = len(fake.requests)
    again = await run_alert_turn(runner, harness.thread_ops, event)
    assert again.status == "done" and again.resumed and len(fake.requests) == count
    assert len(await harness.store.notes.all()) == 1


async def test_offline_provider_explains_in_chat_and_logs_watchers_without_trading(harness: Harness) -> None:
    runner = harness.runner(OfflineProvider())
    thread = await harness.thread_ops.chat()
    outcome = await runner.submit(thread.id, "hello")
    assert "No language model is configured" in outcome.text and outcome.cost_usd == 0
    alert = await run_alert_turn(runner, harness.thread_ops, watcher_event(harness))
    assert alert.status == "done" and alert.tool_calls == 0 and "never trades on a watcher" in alert.text


async def test_interrupt_lets_a_running_tool_finish(harness: Harness, fake: FakeAnthropic,
                                                    anthropic: AnthropicProvider) -> None:
    from revagent.engine.tools import Tool, ToolRegistry, default_tools
    from revagent.engine.tools.base import Args, ToolContext, ToolResult

    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow(args: Args, ctx: ToolContext) -> ToolResult:
        started.set()
        await release.wait()
        finished.append(ctx.tool_call_id)
        return ToolResult.ok({"ok": True})

    base = default_tools()
    tools = [t for t in (base.get(n) for n in base.names) if t is not None]
    registry = ToolRegistry([*tools, Tool("slow_order", "an order that takes a while", Args, slow, "protective")])
    fake.script(reply(tool("slow_order", {}, id="toolu_a"), tool("slow_order", {}, id="toolu_b")))
    runner = harness.runner(anthropic, registry=registry)
    thread = await harness.thread_ops.chat()
    fut = runner.submit(thread.id, "go")
    await asyncio.wait_for(started.wait(), 5)
    assert runner.interrupt(thread.id)
    release.set()
    outcome = await asyncio.wait_for(fut, 5)
    assert outcome.status == "interrupted" and finished == ["toolu_a"]
    results = [e for e in await harness.threads.transcript(thread.id) if e.kind == "tool_results"][-1]
    assert results.blocks[0]["is_error"] is False
    assert results.blocks[1]["is_error"] is True and "interrupted" in results.blocks[1]["content"]


async def test_alert_queue_handler_runs_each_firing_once_in_the_alert_thread(harness: Harness) -> None:
    from datetime import timedelta

    from revagent.engine.threads import AlertTurnHandler
    from revagent.store.alert_queue import QueuedAlert

    runner = harness.runner(OfflineProvider())
    handler = AlertTurnHandler(runner, harness.thread_ops)

    def firing(at_hour: int) -> QueuedAlert:
        scheduled = harness.clock().replace(hour=at_hour)
        key = "t_7#" + scheduled.isoformat().replace("+00:00", "Z")
        event = AlertEvent(alert_id="t_7", kind="time", trigger_key=key,
                           fired_at=scheduled + timedelta(seconds=1), context={"prompt": "review the book"})
        return QueuedAlert(band="normal", entry_id="1-0", event=event, attempt=1, redelivered=False)

    first, second = firing(8), firing(9)
    out1 = await handler(first)
    out2 = await handler(second)
    redelivered = await handler(first)
    assert out1.ok and out2.ok and redelivered.ok
    assert out1.thread_id == out2.thread_id == "alert:t_7"
    log = await harness.threads.transcript("alert:t_7")
    assert sum(e.kind == "turn_start" for e in log) == 2  # the redelivered firing was reported, not re-run
    assert "review the book" in out1.summary
