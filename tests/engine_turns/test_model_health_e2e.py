"""A misconfigured model in a whole session: an alert turn that the model refuses (400) runs the
offline policy, and a health alert and a notification say why (issue 15.5). The real anthropic SDK
against the strict fake, the real Redis, the simulator as the paper venue, a local webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from revagent.config import load_config
from revagent.models import utc_now
from revagent.runtime.session import Session
from revagent.store.alert_events import AlertEvent, AlertKind
from tests.alerts_runtime.conftest import eventually
from tests.fakes.anthropic_server import FakeAnthropic, http_error
from tests.paper_venue import paper_venue

KEY = "sk-ant-test-health"
pytestmark = pytest.mark.timeout(90)


class Webhook:
    """A local webhook endpoint that keeps every JSON body it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def hook() -> AsyncIterator[Webhook]:
    w = Webhook()
    await w.start()
    try:
        yield w
    finally:
        await w.stop()


async def test_an_alert_turn_refused_with_a_400_runs_offline_and_raises_a_health_alert_and_a_notification(
        revagent_home: Path, monkeypatch: pytest.MonkeyPatch, hook: Webhook) -> None:
    async with FakeAnthropic(api_key=KEY) as fake, paper_venue(monkeypatch, seed=5, start_ms=1_767_225_600_000):
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("REVAGENT_LLM__BASE_URL", fake.base_url)
        monkeypatch.setenv("REVAGENT_NOTIFY__WEBHOOK_URL", hook.url)
        monkeypatch.setenv("REVAGENT_NOTIFY__DESKTOP", "false")
        refusal = "output_config.effort: 'extreme' is not a valid effort for this model"
        fake.script(*(http_error(400, refusal) for _ in range(4)))
        cfg = load_config()
        session = Session(cfg, cfg.wallet(), role="daemon")
        await session.start(serve_commands=False)
        try:
            await session.start_runtime()
            assert session.alerts is not None and session.engine is not None
            event = AlertEvent(alert_id="t_cfg", kind=AlertKind.TIME, trigger_key="t_cfg#2026-01-01T00:00:00Z",
                               fired_at=utc_now(), context={"thesis": "check BTC"})
            assert await session.alerts.queue.enqueue(event)

            async def health() -> list[dict[str, Any]]:
                return [h for h in await session.alerts.queue.history()
                        if h["trigger_key"].startswith("health-model")]

            raised = await eventually(health, timeout=30)
            assert refusal in raised[0]["event"]["context"]["detail"]  # the health alert says why
            assert raised[0]["event"]["kind"] == "health"
            notes = await eventually(lambda: _async([b for b in hook.bodies if b["kind"] == "health"]), timeout=30)
            assert refusal in notes[0]["message"] and "llm" in notes[0]["message"]  # and what to fix
            # the alert itself was handled by the offline policy, not dropped
            done = [h for h in await session.alerts.queue.history() if h["trigger_key"] == event.trigger_key]
            assert done and done[0]["status"] == "finished"
            assert any(r.status == 400 for r in fake.requests)
        finally:
            await session.stop("test finished")


async def _async(value: Any) -> Any:
    await asyncio.sleep(0)
    return value
