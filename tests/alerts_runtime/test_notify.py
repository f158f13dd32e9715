"""Notifications: the webhook against a local aiohttp server (retried, never blocking), desktop
notifications through a real `notify-send` stand-in, kinds switched on and off."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from revagent.alerts.notify import Notifier
from revagent.bus import Bus
from revagent.config import NotifySettings
from revagent.events import AlertSignal, FillRecorded, RiskStateChanged
from tests.alerts_runtime.conftest import eventually


class Hook:
    """A webhook endpoint that fails the first `fail` requests with 503."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.fail:
            return web.Response(status=503)
        self.bodies.append(await request.json())
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook(fail=2)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_webhook_is_retried_and_carries_slack_and_discord_fields(hook: Hook) -> None:
    notifier = Notifier(NotifySettings(webhook_url=hook.url, desktop=False), session_label="paper (paper:0xab)",
                        backoff_s=0.01)
    task = asyncio.get_running_loop().create_task(notifier.run(), name="notify")
    try:
        assert notifier.notify("alert_failed", "alert failed: watcher", "model unreachable", data={"k": 1})
        await eventually(lambda: _async(bool(hook.bodies)))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    [body] = hook.bodies
    assert hook.attempts == 3  # two 503s, then delivered
    assert body["kind"] == "alert_failed" and body["session"] == "paper (paper:0xab)"
    assert body["text"] == body["content"] == "alert failed: watcher: model unreachable"
    assert body["data"] == {"k": 1}
    assert notifier.stats.webhook_sent == 1


async def _async(value: Any) -> Any:
    return value


async def test_a_dead_webhook_never_blocks_and_the_queue_stays_bounded() -> None:
    notifier = Notifier(NotifySettings(webhook_url="http://127.0.0.1:9/nothing", desktop=False), maxsize=3,
                        attempts=2, backoff_s=0.01, timeout_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(10):
        notifier.notify("fill", f"fill {i}")
    assert loop.time() - started < 0.05  # notify() returns at once
    assert notifier.stats.dropped == 7
    await notifier.flush(5)
    assert notifier.stats.webhook_failed == 3 and notifier.stats.webhook_sent == 0
    await notifier.aclose()


async def test_kinds_are_switchable_and_bus_events_map_to_them(hook: Hook) -> None:
    hook.fail = 0
    notifier = Notifier(NotifySettings(webhook_url=hook.url, desktop=False, kinds=["alert_finished", "lockout"]))
    bus = Bus()
    follow = asyncio.get_running_loop().create_task(notifier.follow(bus))
    run = asyncio.get_running_loop().create_task(notifier.run())
    await asyncio.sleep(0)
    bus.publish(AlertSignal(status="started", trigger_key="w_1#upper:g1", kind="watcher"))
    bus.publish(FillRecorded(market="BTC", side="buy", px=Decimal("100"), sz=Decimal("1"), fee=Decimal("0.1"),
                             closed_pnl=Decimal("0")))
    bus.publish(AlertSignal(status="finished", trigger_key="w_1#upper:g1", kind="watcher", thread_id="alert:w_1",
                            detail="watcher BTC upper at 110"))
    bus.publish(RiskStateChanged(state="locked", multiplier=Decimal("0"), reason="daily loss"))
    bus.publish(RiskStateChanged(state="active", multiplier=Decimal("1")))
    try:
        await eventually(lambda: _async(len(hook.bodies) == 3))
    finally:
        for t in (follow, run):
            t.cancel()
        await asyncio.gather(follow, run, return_exceptions=True)
    assert [b["kind"] for b in hook.bodies] == ["alert_finished", "lockout", "lockout"]
    assert hook.bodies[1]["title"] == "trading locked" and hook.bodies[2]["title"] == "trading active again"
    assert not notifier.wants("fill") and not notifier.wants("alert_started")


async def test_desktop_notifications_run_notify_send(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "notify-send"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {log}\necho --- >> {log}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    notifier = Notifier(NotifySettings(desktop=True), which=lambda name: str(script) if name == "notify-send" else None)
    assert notifier.enabled
    notifier.notify("daemon", "revagent daemon died: paper", "task alerts:timer died", urgent=True)
    await notifier.flush(5)
    lines = log.read_text().splitlines()
    assert lines[:4] == ["--app-name=revagent", "--urgency=critical", "revagent daemon died: paper",
                         "task alerts:timer died"]
    assert notifier.stats.desktop_sent == 1
    without = Notifier(NotifySettings(desktop=True), which=lambda name: None)
    assert not without.enabled and not without.notify("daemon", "x")
    assert json.dumps(without.settings.kinds)


async def test_a_pending_proposal_is_notified_with_its_preview_once(hook: Hook) -> None:
    from revagent.events import TurnEvent

    hook.fail = 0
    notifier = Notifier(NotifySettings(webhook_url=hook.url, desktop=False, kinds=["proposal"]))
    bus = Bus()
    follow = asyncio.get_running_loop().create_task(notifier.follow(bus))
    run = asyncio.get_running_loop().create_task(notifier.run())
    await asyncio.sleep(0)
    preview = {"size": "0.01", "risk_usd": "20", "reward_risk": "2.1"}
    bus.publish(TurnEvent(thread_id="th", turn_id="", kind="proposal",
                          data={"id": "p_1", "tool": "open_trade", "summary": "long BTC risk $20", "preview": preview}))
    bus.publish(TurnEvent(thread_id="th", turn_id="t1", kind="proposal", data={"id": "p_1"}))  # the turn's copy
    bus.publish(TurnEvent(thread_id="th", turn_id="", kind="proposal", data={"id": "p_1", "status": "approved"}))
    try:
        await eventually(lambda: _async(len(hook.bodies) == 1))
        await asyncio.sleep(0.2)
    finally:
        for t in (follow, run):
            t.cancel()
        await asyncio.gather(follow, run, return_exceptions=True)
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["kind"] == "proposal" and "long BTC risk $20" in body["title"]
    assert "revagent proposals approve p_1" in body["message"]
    assert body["data"]["preview"] == preview
