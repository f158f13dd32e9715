"""The whole path from the keyboard: a chat message in the TUI -> the real turn engine -> the real
`anthropic` SDK against the strict fake server (scripted model) -> an `open_trade` tool call ->
the gateway -> an in-process paper venue; the thread shows the streamed answer and the tool call,
and the panel shows the position. In copilot mode the same tool call becomes a proposal that F2
approves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.service import TurnEngine
from revagent.engine.settings import EngineSettings
from revagent.exchange.sim import SimServer
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.session_port import SessionAdapter
from tests.fakes.anthropic_server import FakeAnthropic, reply, text, tool
from tests.paper_venue import paper_venue
from tests.tui.screen import screen_text

KEY = "sk-test-not-a-real-key"


@pytest.fixture
async def venue(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=1, start_ms=1_767_225_600_000) as server:
        yield server


@pytest.fixture
async def model() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=KEY) as server:
        yield server


async def wait_for(pilot: object, cond: object, rounds: int = 100) -> None:
    for _ in range(rounds):
        await pilot.pause(0.1)  # type: ignore[attr-defined]
        if cond():  # type: ignore[operator]
            return


def open_call(stop: str) -> dict[str, object]:
    return {"market": "ETH", "side": "long", "stop_px": stop, "target_px": "3500", "conviction": 70,
            "risk_usd": "20", "rationale": "reclaim of 3,250 with flat funding",
            "thesis": "reclaim of 3,250", "invalidation": "a close under 3,200"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["autonomous", "copilot"])
async def test_a_chat_turn_opens_a_trade_through_the_engine(venue: SimServer, model: FakeAnthropic,
                                                            mode: str) -> None:
    cfg = load_config()
    wallet = cfg.wallet()
    session = Session(cfg, wallet, role="tui")
    await session.start(serve_commands=False)
    engine: TurnEngine | None = None
    try:
        await session.start_trading()
        assert session.gateway and session.plans and session.journal and session.risk
        account = await session.account()
        stop = str((account.markets["ETH"].mark_px * Decimal("0.98")).quantize(Decimal("0.1")))
        model.script(
            reply(text("ETH held the retest and funding is flat. Opening with a stop under the range low."),
                  tool("open_trade", open_call(stop), id="toolu_open1")),
            reply(text("Done: long ETH with its stop on the exchange.")),
        )
        provider = AnthropicProvider(api_key=KEY, base_url=model.base_url, timeout_s=10, max_retries=0)
        engine = TurnEngine.build(wallet=wallet, store=session.store, gateway=session.gateway, plans=session.plans,
                                  journal=session.journal, risk=session.risk, bus=session.bus,
                                  account=session.account, provider=provider,
                                  settings=EngineSettings(chat_mode=mode, temperature=None))  # type: ignore[arg-type]
        await engine.start()
        adapter = SessionAdapter(session, engine=engine, start_runtime=False)
        app = RevagentApp(adapter, initial=await adapter.load_snapshot(), live_clock=False, refresh_interval=3600)
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.active is not None)
            await pilot.press(*"long ETH on the reclaim?", "enter")
            if mode == "copilot":
                await wait_for(pilot, lambda: "F2 approve   F3 reject" in screen_text(app))
                shown = screen_text(app)
                assert "LONG ETH  size" in shown and "R:R" in shown and "liq" in shown
                assert session.plans is not None and not await session.plans.open_trades()
                await pilot.press("f2")
            # The panel follows the sync loop's live view: the stop (a normalTpsl child) shows once the
            # snapshot that confirms the fill lands.
            await wait_for(pilot, lambda: app.model.snapshot.account is not None
                           and (p := app.model.snapshot.account.position("ETH")) is not None
                           and p.stop_px is not None
                           and app.tabs[app.active or ""].status == "idle")
            await wait_for(pilot, lambda: "Done: long ETH" in screen_text(app), rounds=30)
            shown = screen_text(app)
            assert "you  long ETH on the reclaim?" in shown
            assert "ETH held the retest and funding is flat." in shown
            assert "open_trade ETH long" in shown
            if mode == "copilot":
                assert "approved ✓" in shown
            else:
                assert f"open_trade ETH long risk $20 stop {stop}  ✓" in shown
            assert "Done: long ETH with its stop on the exchange." in shown
            pos = app.model.snapshot.account.position("ETH") if app.model.snapshot.account else None
            assert pos is not None and pos.size > 0 and pos.stop_px is not None
            assert "ETH  +" in shown and f"stop {pos.stop_px:,f}".rstrip("0").rstrip(".") in shown
            app.input_box.value = "/cost"
            await pilot.press("enter")
            await wait_for(pilot, lambda: "this thread:" in screen_text(app), rounds=30)
            shown = screen_text(app)
            assert "today: $" in shown and "of $10.00 (2 model calls" in shown
            assert "this thread: $" in shown and "(2 model calls)" in shown
    finally:
        if engine is not None:
            await engine.aclose()
        await session.stop("test finished")
