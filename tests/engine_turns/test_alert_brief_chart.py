"""Issue 16.1: a watcher alert's (and a trade-management alert's) brief carries a chart of the market
as an image block in the turn's user message when the model has vision.

A scripted model (the fake Anthropic server, strict about images like the real API; the real SDK)
receives the brief against the simulator (real bridge, candles, Redis): its first request's user
message holds the brief text and a base64 PNG of the candles with the pair's levels and the setup;
the tool loop's next call still has it; the image is never in the transcript, and a resumed turn
(thinking on) replays it byte for byte from its Redis key (kept with the turn, a day's TTL). With
the offline provider (no vision) no chart is drawn and the offline policy still runs."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from revagent.engine.history import build_messages
from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.base import ImageBlock, TextBlock
from revagent.engine.providers.capabilities import MODELS, has_vision
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.threads import run_alert_turn
from revagent.models import LegDirection, LegStatus, ProposedSetup, WatcherLeg, WatcherPair, utc_now
from revagent.store.alert_events import AlertEvent
from tests.engine_turns import test_tools_sim
from tests.engine_turns.test_tools_sim import Desk, _open_btc
from tests.fakes.anthropic_server import FakeAnthropic, image_tokens, reply, text, thinking, tool

pytestmark = pytest.mark.timeout(120)
D = Decimal
desk = test_tools_sim.desk  # the simulator desk fixture
PNG = b"\x89PNG\r\n\x1a\n"


async def _watcher_event(desk: Desk) -> tuple[WatcherPair, AlertEvent]:
    now = utc_now()
    pair = WatcherPair(
        market="BTC", created_at=now - timedelta(hours=2), created_by="agent",
        upper=WatcherLeg(level=D("60000"), direction=LegDirection.ABOVE, thesis="breakout over 60k",
                         setup=ProposedSetup(side="long", entry=D("60050"), stop=D("59200"), target=D("62500"),
                                             conviction=70, risk_usd=D("25")),
                         status=LegStatus.FIRED, fired_at=now, fired_price=D("60010")),
        lower=WatcherLeg(level=D("58000"), direction=LegDirection.BELOW, thesis="loss of 58k",
                         setup=ProposedSetup(side="short", stop=D("58700"), target=D("56000")),
                         status=LegStatus.DISARMED))
    await desk.services.store.watchers.put(pair)
    event = AlertEvent(alert_id=pair.id, kind="watcher", trigger_key=f"{pair.id}#upper:g1", fired_at=now,
                       price=D("60010"),
                       context={"book": "watchers", "slot": "upper", "level": "60000", "direction": "above",
                                "generation": 1, "disarmed": [f"{pair.id}#lower:g1"], "market": "BTC",
                                "thesis": "breakout over 60k", "created_by": "agent",
                                "setup": pair.upper.setup.model_dump(mode="json", exclude_none=True)})  # type: ignore[union-attr]
    return pair, event


def _brief_message(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The content of the user message that carries the alert brief."""
    for m in body["messages"]:
        if m["role"] == "user" and isinstance(m["content"], list) and any(
                "ALERT BRIEF" in b.get("text", "") for b in m["content"]):
            return list(m["content"])
    raise AssertionError("no brief in the request")


def _png_size(raw: bytes) -> tuple[int, int]:
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def test_every_claude_model_has_vision_and_the_offline_model_none() -> None:
    assert all(row.vision for row in MODELS.values())
    assert has_vision("claude-sonnet-4-6") and has_vision("claude-sonnet-5-5-20261001")
    assert not has_vision("offline") and not has_vision("gpt-unknown")


async def test_a_watcher_alert_brief_carries_the_chart_image_in_the_user_message(
        desk: Desk, fake: FakeAnthropic) -> None:
    pair, event = await _watcher_event(desk)
    fake.script(reply(text("Checking the book."), tool("get_snapshot", {"section": "orders"}, id="toolu_chart_1")),
                reply(text("Letting it lapse: no volume.")))
    first = len(fake.requests)
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        runner = desk.runner(provider)
        outcome = await run_alert_turn(runner, desk.ops, event)
    finally:
        await provider.aclose()
    assert outcome.status == "done" and outcome.model_calls == 2, outcome
    bodies = [r.body for r in fake.requests[first:]]
    assert all(r.status == 200 for r in fake.requests[first:])  # the strict fake took the image
    content = _brief_message(bodies[0])
    images = [b for b in content if b["type"] == "image"]
    assert len(images) == 1, content
    source = images[0]["source"]
    assert (source["type"], source["media_type"]) == ("base64", "image/png")
    raw = base64.b64decode(source["data"], validate=True)
    assert raw.startswith(PNG)
    brief = "\n".join(b.get("text", "") for b in content if b["type"] == "text")
    assert f"ALERT BRIEF: watcher BTC ({pair.id})" in brief
    assert "CHART: attached image: BTC " in brief
    for level in ("upper 60000", "lower 58000", "entry 60050", "stop 59200", "target 62500"):
        assert level in brief, level
    assert "candles 1h (" in brief  # the text summary stays with the image
    # the image sits before the brief text, in the same user message, after the turn context
    kinds = [b["type"] for b in content]
    assert kinds.index("image") < max(i for i, b in enumerate(content) if "ALERT BRIEF" in b.get("text", ""))
    # the tool loop's next call still shows the chart
    assert [b for b in _brief_message(bodies[1]) if b["type"] == "image"] == images
    # its cost: width * height / 750 tokens (about 800 for the 1000 x 600 chart)
    assert image_tokens(*_png_size(raw)) <= 1600

    # never stored in Redis: the user entry says an image was shown, and a replay says it is not kept
    entries = await desk.threads.transcript(outcome.thread_id)
    stored = json.dumps([e.model_dump(mode="json") for e in entries])
    assert source["data"][:64] not in stored and "iVBORw0KGgo" not in stored
    user = next(e for e in entries if e.kind == "user" and e.turn_id == outcome.turn_id)
    assert user.data.get("image") == "chart"
    replay = build_messages(entries, current_turn=outcome.turn_id, context="ctx", images={})
    blocks = next(m.content for m in replay if m.role == "user" and any(
        isinstance(b, TextBlock) and "ALERT BRIEF" in b.text for b in m.content))
    assert not any(isinstance(b, ImageBlock) for b in blocks)
    assert any(isinstance(b, TextBlock) and "chart image sent with this alert brief is not kept" in b.text
               for b in blocks), blocks


async def test_an_early_warning_brief_charts_the_trade_entry_stop_and_target(
        desk: Desk, fake: FakeAnthropic) -> None:
    trade_id = await _open_btc(desk, fake, "toolu_open_chart")
    desk.sim.set_price("BTC", "59700")
    event = AlertEvent(alert_id=trade_id, kind="early_warning", trigger_key=f"{trade_id}#early_warning:g1",
                       fired_at=utc_now(), price=D("59700"),
                       context={"market": "BTC", "trade_id": trade_id, "level": "59700", "direction": "below"})
    fake.script(reply(text("Holding: thesis intact.")))
    first = len(fake.requests)
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)
    try:
        outcome = await run_alert_turn(desk.runner(provider), desk.ops, event)
    finally:
        await provider.aclose()
    assert outcome.status == "done", outcome
    content = _brief_message(fake.requests[first].body)
    assert sum(b["type"] == "image" for b in content) == 1
    brief = "\n".join(b.get("text", "") for b in content if b["type"] == "text")
    assert "CHART: attached image: BTC " in brief
    for level in ("entry ", "stop 59400", "target 62000"):
        assert level in brief.split("CHART:")[1].splitlines()[0], level


async def test_the_offline_provider_gets_no_chart_and_its_policy_still_runs(desk: Desk) -> None:
    _, event = await _watcher_event(desk)
    runner = desk.runner(OfflineProvider())
    outcome = await run_alert_turn(runner, desk.ops, event)
    assert outcome.status == "done", outcome
    assert outcome.model_calls >= 1
    entries = await desk.threads.transcript(outcome.thread_id)
    user = next(e for e in entries if e.kind == "user" and e.turn_id == outcome.turn_id)
    assert "ALERT BRIEF: watcher BTC" in user.text and "CHART:" not in user.text
    assert "image" not in user.data


async def test_a_resumed_thinking_alert_turn_replays_its_chart_byte_for_byte(desk: Desk, fake: FakeAnthropic) -> None:
    """The owner dies mid-turn on a thinking model: the restart's replay must be the prefix the thinking
    was signed after (the strict fake refuses anything else), so the chart is kept in Redis with the
    turn (a day's TTL, never in the transcript) and deleted when the turn ends."""
    import asyncio

    from revagent.engine.prompt import PromptLayers
    from revagent.engine.runner import TurnRunner
    from revagent.engine.settings import EngineSettings
    from revagent.store.threads import ThreadStore
    from tests.engine_turns.test_tool_effects_resume import registry_with_block

    _, event = await _watcher_event(desk)
    started, release = asyncio.Event(), asyncio.Event()
    registry = registry_with_block(started, release)
    thread = await desk.ops.for_alert(event)
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10)

    def runner() -> TurnRunner:
        return TurnRunner(threads=ThreadStore(desk.threads.redis, desk.threads.keys), provider=provider,
                          tools=registry, services=desk.services,
                          settings=EngineSettings(model="claude-sonnet-5-5", max_tokens=4096, temperature=None),
                          layers=PromptLayers(), bus=desk.bus)

    fake.script(reply(thinking("Check the book first."), text("Waiting on the book."),
                      tool("block", {}, id="toolu_block_chart")),
                reply(thinking("Decided."), text("Letting it lapse.")))
    first = len(fake.requests)
    redis = desk.threads.redis
    try:
        turn = asyncio.get_running_loop().create_task(runner().run_alert(thread.id, event), name="test:alert-turn")
        await asyncio.wait_for(started.wait(), 30)
        turn.cancel()  # the owner dies mid-turn
        with pytest.raises(asyncio.CancelledError):
            await turn
        kept = [k async for k in redis.scan_iter(match=desk.threads.keys.key(f"thread:{thread.id}:image:*"))]
        assert len(kept) == 1, kept
        assert 0 < await redis.ttl(kept[0]) <= 86400
        release.set()
        outcome = await asyncio.wait_for(runner().run_alert(thread.id, event), 30)
    finally:
        await provider.aclose()
    assert outcome.status == "done" and outcome.resumed, (outcome, [r.error for r in fake.requests[first:]])
    bodies = [r.body for r in fake.requests[first:]]
    assert len(bodies) == 2 and all(r.status == 200 for r in fake.requests[first:])
    before = [b for b in _brief_message(bodies[0]) if b["type"] == "image"]
    assert len(before) == 1
    def bare(content: list[dict[str, Any]]) -> list[dict[str, Any]]:  # cache breakpoints move, content not
        return [{k: v for k, v in b.items() if k != "cache_control"} for b in content]

    assert bare(_brief_message(bodies[1])) == bare(_brief_message(bodies[0]))  # the same message, image and all
    # the chart went with the turn's end, and never reached the transcript
    assert not [k async for k in redis.scan_iter(match=desk.threads.keys.key(f"thread:{thread.id}:image:*"))]
    entries = await desk.threads.transcript(thread.id)
    stored = json.dumps([e.model_dump(mode="json") for e in entries])
    assert before[0]["source"]["data"][:64] not in stored and "iVBORw0KGgo" not in stored
    # an earlier turn's replay keeps the placeholder
    replay = build_messages(entries, current_turn="turn_next", context="ctx", images={})
    assert not any(isinstance(b, ImageBlock) for m in replay for b in m.content)
