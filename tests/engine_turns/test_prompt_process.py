"""Issue 16 item 5: the process guidance, the anti-churn rule and the default strategy are in the
stable cached layers; a trader's strategy file replaces the default; the thread's approval mode is in
the turn context, not in the cached prefix (two turns send the very same system)."""

from __future__ import annotations

from pathlib import Path

from revagent.engine.prompt import DEFAULT_STRATEGY, PromptLayers, system_blocks
from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.runner import TurnRunner
from revagent.models import Note, utc_now
from tests.engine_turns.conftest import Harness
from tests.fakes.anthropic_server import FakeAnthropic, reply, text


def test_the_guidance_and_the_default_strategy_are_in_the_cached_layers() -> None:
    blocks = system_blocks(PromptLayers(), "alert")
    assert [b.cache for b in blocks] == [False, False, True]  # one breakpoint, after the strategy
    base, alert, strategy = (b.text for b in blocks)
    for rule in ("Stops go where the thesis is proven wrong", "Targets sit at the next real obstacle",
                 "Conviction (0-100) maps to risk", "Moving a stop (modify_stop) re-arms the trade's alerts",
                 "Hysteresis: changing a plan needs stronger evidence than keeping it", "Stale data (HEALTH says STALE",
                 "A LATE alert: its brief says how late", "correct the call once; refused again, stop and explain",
                 "Every open_trade states its thesis", "modify_watcher", "adjust_margin", "run_python"):
        assert rule in base
    assert "ALERT BRIEF" in alert
    assert strategy == "# TRADING STRATEGY\n" + DEFAULT_STRATEGY
    assert "Default strategy: the trader gave no strategy file. Theirs replaces this one" in strategy
    assert len(base.split()) < 500 and len(DEFAULT_STRATEGY.split()) < 120  # concise (465 words: 16.4 and 21)


def test_a_strategy_file_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "strategy.md"
    path.write_text("Only trade BTC breakouts on the 4h.\n")
    layers = PromptLayers.from_strategy_file(path)
    assert layers.strategy == "Only trade BTC breakouts on the 4h."
    assert PromptLayers.from_strategy_file(None).strategy == DEFAULT_STRATEGY
    assert "Default strategy" not in system_blocks(layers, "chat")[-1].text


async def test_the_mode_is_in_the_turn_context_and_the_system_stays_the_same(
        harness: Harness, fake: FakeAnthropic, anthropic: AnthropicProvider) -> None:
    base = harness.runner(anthropic)
    runner = TurnRunner(threads=base.threads, provider=anthropic, tools=base.tools, services=base.services,
                        settings=base.settings, layers=PromptLayers(), bus=base.bus)
    fake.script(reply(text("one")), reply(text("two")))
    thread = await harness.thread_ops.chat()
    assert (await runner.submit(thread.id, "hi")).status == "done"
    now = utc_now()
    await harness.store.notes.put(Note(text="a note between the turns", created_at=now, updated_at=now))
    assert (await runner.submit(thread.id, "again")).status == "done"
    first, second = fake.requests[0].body, fake.requests[1].body
    assert first["system"] == second["system"] and first["tools"] == second["tools"]
    context = second["messages"][-1]["content"][0]["text"]
    assert "## THREAD\napproval mode: autonomous (your orders execute)" in context
    assert "a note between the turns" in context
