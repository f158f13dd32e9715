"""Whole-process tests: SIGKILL between enqueue and ack then restart (the alert runs to completion
exactly once), SIGTERM drains the running turn, the daemon's log file, and the shell commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from revagent.models import TimeAlert, TimeAlertStatus, utc_now
from revagent.store.alert_events import AlertEvent, AlertKind, trigger_key

ROOT = Path(__file__).resolve().parents[2]


def revagent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def ok_json(*args: str) -> Any:
    out = revagent(*args, "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def worker(delay: float, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.alerts_runtime.daemon_worker", str(delay), *extra],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)


def wait_for(check: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


@pytest.fixture
def r(redis_url: str) -> Any:
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def add_time_alert(seconds: float) -> str:
    alert = ok_json("alerts", "add", "--in", f"{max(seconds, 1):g}s", "check the book")
    return str(alert["id"])


@pytest.mark.usefixtures("revagent_home")
def test_sigkill_between_enqueue_and_ack_runs_the_alert_exactly_once(r: Any, revagent_home: Path) -> None:
    alert_id = add_time_alert(1)
    first = worker(3600)
    try:
        started = wait_for(lambda: r.lrange("test:started", 0, -1), what="the first turn")
        first.send_signal(signal.SIGKILL)  # mid-turn: enqueued, taken, never acknowledged
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    [entry] = started
    key, redelivered = entry.split("|")
    assert key.startswith(alert_id + "#") and redelivered == "False"
    assert r.lrange("test:completed", 0, -1) == []
    listed = ok_json("alerts", "list")
    assert [p["trigger_key"] for p in listed["queue"]["pending"]] == [key]
    assert [x["trigger_key"] for x in listed["queue"]["running"]] == [key]
    second = worker(0)
    try:
        wait_for(lambda: r.lrange("test:completed", 0, -1), what="the resumed turn")
        time.sleep(0.5)  # would a duplicate run now?
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert second.returncode == 0, second.stderr.read() if second.stderr else ""
    assert r.lrange("test:completed", 0, -1) == [key]
    assert r.lrange("test:started", 0, -1) == [f"{key}|False", f"{key}|True"]
    history = ok_json("alerts", "history")["history"]
    assert [(h["trigger_key"], h["status"]) for h in history] == [(key, "finished")]
    assert history[0]["summary"] == "completed by the test handler"
    listed = ok_json("alerts", "list", "--all")
    assert listed["queue"] == {"pending": [], "running": [], "failed": []}
    [alert] = listed["time_alerts"]
    assert alert["status"] == TimeAlertStatus.FIRED.value
    log = revagent_home / "data" / "logs" / "daemon-paper.log"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("alert scheduler loaded" in line["message"] for line in lines)


@pytest.fixture
def venue(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from revagent.exchange.sim import SimConfig
    from revagent.exchange.sim.threaded import ThreadedSim

    sim = ThreadedSim(SimConfig(seed=5, controls=True, manual_clock=True, history_minutes=0))
    url = sim.start()
    sim.call(lambda s: s.set_price("BTC", "60000"))
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", url)
    try:
        yield sim
    finally:
        sim.stop()


def test_sigkill_between_the_order_and_the_ack_places_one_order(r: Any, venue: Any) -> None:
    add_time_alert(1)
    first = worker(3600, "order")
    try:
        wait_for(lambda: r.lrange("test:orders", 0, -1), timeout=60, what="the order")
        first.send_signal(signal.SIGKILL)  # the order is on the exchange; the alert is not acknowledged
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    master = ok_json("status")["session"].split(":", 1)[1]
    second = worker(0, "order")
    try:
        wait_for(lambda: r.lrange("test:completed", 0, -1), timeout=60, what="the resumed turn")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    # the resumed call found its own orders by their client order ids and sent nothing
    assert r.lrange("test:orders", 0, -1) == ["done|2", "duplicate|2"], r.lrange("test:errors", 0, -1)
    assert len(r.lrange("test:completed", 0, -1)) == 1
    state = _info(venue, {"type": "clearinghouseState", "user": master})
    [position] = [p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "BTC"]
    orders = _info(venue, {"type": "frontendOpenOrders", "user": master})
    user_fills = _info(venue, {"type": "userFills", "user": master})
    assert len([f for f in user_fills if f["coin"] == "BTC"]) >= 1
    assert len({f["oid"] for f in user_fills if f["coin"] == "BTC"}) == 1  # one entry order, whatever its fills
    assert len([o for o in orders if o["coin"] == "BTC" and o["isTrigger"]]) == 1  # one stop
    assert 0 < float(position["szi"]) < 0.02
    assert [h["status"] for h in ok_json("alerts", "history")["history"]] == ["finished"]


def _info(venue: Any, payload: dict[str, Any]) -> Any:
    import urllib.request

    req = urllib.request.Request(venue.base_url + "/info", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.usefixtures("revagent_home")
def test_sigterm_lets_the_running_turn_finish(r: Any) -> None:
    add_time_alert(1)
    proc = worker(1.5)
    try:
        wait_for(lambda: r.lrange("test:started", 0, -1), what="the turn")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert len(r.lrange("test:completed", 0, -1)) == 1
    assert [h["status"] for h in ok_json("alerts", "history")["history"]] == ["finished"]


@pytest.mark.usefixtures("revagent_home")
def test_alerts_list_retry_and_history_from_the_shell(redis_url: str) -> None:
    import asyncio

    from revagent.config import load_config
    from revagent.runtime.session import open_redis, resolve_session_id
    from revagent.store.alert_queue import AlertQueue
    from revagent.store.repos import SessionStore

    # levels around the paper venue's BTC price (the shell refuses a level the price already passed)
    ok_json("watchers", "add", "BTC", "--above", "1100000", "--below", "9000")

    async def park_one() -> str:
        cfg = load_config()
        redis = await open_redis(cfg)
        try:
            store = SessionStore(redis, await resolve_session_id(cfg, cfg.wallet()))
            await store.time_alerts.put(TimeAlert(fire_at=utc_now() + timedelta(hours=1), prompt="later",
                                                  created_at=utc_now()))
            q = AlertQueue(redis, store.keys, max_attempts=1)
            await q.ensure_groups()
            event = AlertEvent(alert_id="w_9", kind=AlertKind.WATCHER, trigger_key=trigger_key("w_9", "upper:g1"),
                               fired_at=utc_now())
            await q.enqueue(event)
            [item] = await q.take(block_ms=0)
            await q.mark_running(item, "alert:w_9")
            await q.failed(item, "model unreachable")
            await q.enqueue(AlertEvent(alert_id="w_8", kind=AlertKind.WATCHER,
                                       trigger_key=trigger_key("w_8", "lower:g1"), fired_at=utc_now()))
            return event.trigger_key
        finally:
            await redis.aclose()

    key = asyncio.run(park_one())
    doc = ok_json("alerts", "list")
    assert set(doc) == {"time_alerts", "watchers", "trade_alerts", "queue"}
    assert len(doc["time_alerts"]) == 1 and doc["watchers"][0]["upper"]["level"] == "1100000"
    assert [p["trigger_key"] for p in doc["queue"]["pending"]] == ["w_8#lower:g1"]
    [failed] = doc["queue"]["failed"]
    assert failed["trigger_key"] == key and failed["error"] == "model unreachable" and failed["attempts"] == 1
    plain = revagent("alerts", "list")
    assert plain.returncode == 0 and "Queue" in plain.stdout and "failed: model unreachable" in plain.stdout
    missing = revagent("alerts", "retry", "w_nope", "--json")
    assert missing.returncode == 3 and json.loads(missing.stdout)["error"]["code"] == "not_found"
    assert ok_json("alerts", "retry", "w_9") == {"retried": key}  # by alert id when unambiguous
    doc = ok_json("alerts", "list")
    assert doc["queue"]["failed"] == []
    assert sorted(p["trigger_key"] for p in doc["queue"]["pending"]) == sorted([key, "w_8#lower:g1"])
    history = ok_json("alerts", "history")["history"]
    assert [(h["trigger_key"], h["status"], h["error"]) for h in history] == [(key, "failed", "model unreachable")]
    assert history[0]["at"].endswith("+00:00")
