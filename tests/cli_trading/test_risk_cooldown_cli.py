"""Issue 12 item 11: lowering `cooldown` shortens an active cooldown and raising (or disabling)
`cooldown_after_losses` past the streak that caused it ends it, with a message that states the
real streak; `risk set KEY -1 --json` answers in JSON (a negative value is a value, not an option)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from revagent.risk import RiskState
from tests.cli_trading.conftest import ThreadedSim, ok_json, rv

pytestmark = pytest.mark.timeout(300)


def put_state(state: RiskState) -> None:
    async def write() -> None:
        from revagent.config import load_config
        from revagent.runtime.session import open_redis, resolve_session_id
        from revagent.store.keys import Keyspace
        from revagent.store.risk import RiskStore

        cfg = load_config()
        redis = await open_redis(cfg)
        try:
            keys = Keyspace(await resolve_session_id(cfg, cfg.wallet()))
            await RiskStore(redis, keys, cfg.wallet().risk, None).put(state)
        finally:
            await redis.aclose()

    asyncio.run(write())


def cooldown_until() -> str | None:
    until: str | None = ok_json("risk", "show")["status"]["cooldown_until"]
    return until


def test_changing_the_cooldown_settings_applies_to_an_active_cooldown(paper: ThreadedSim) -> None:
    now = datetime.now(UTC)
    ok_json("risk", "show")  # the paper wallet exists
    put_state(RiskState(cooldown_until=now + timedelta(minutes=60), cooldown_started=now, cooldown_streak=3))
    check = ("risk", "check", "BTC", "long", "--stop", "59000", "--risk", "10", "--json")
    refused = rv(*check)
    assert refused.returncode == 6
    assert "after 3 consecutive losing trades" in refused.stdout

    ok_json("risk", "set", "cooldown", "5m")
    until = cooldown_until()
    assert until is not None and datetime.fromisoformat(until) <= now + timedelta(minutes=5, seconds=1)

    ok_json("risk", "set", "cooldown_after_losses", "1000")  # the streak of 3 no longer causes a cooldown
    assert cooldown_until() is None
    approved = rv(*check)
    assert approved.returncode == 0, approved.stdout[-1500:]


def test_a_negative_value_under_json_is_a_json_error(paper: ThreadedSim) -> None:
    out = rv("risk", "set", "max_drawdown_pct", "-1", "--json")
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    assert doc["error"]["code"] == "usage" and "max_drawdown_pct" in doc["error"]["message"]
    assert ok_json("risk", "show")["settings"]["max_drawdown_pct"]["source"] != "runtime"
