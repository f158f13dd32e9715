"""Runtime risk settings: validated before they are stored, reset to the config's value, sourced."""

from __future__ import annotations

from decimal import Decimal

import pytest

from revagent.errors import UsageError
from revagent.models import SessionId
from revagent.risk import RiskSettings, RiskState
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.risk import RiskStore

SID = SessionId(network="paper", address="0x" + "77" * 20)


async def test_set_reset_and_sources(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        store = RiskStore(redis, Keyspace(SID), RiskSettings(max_leverage=Decimal(4)))
        assert (await store.settings()).max_leverage == Decimal(4)
        await store.set("max_leverage", "3")
        assert (await store.settings()).max_leverage == Decimal(3)
        sources = await store.sources()
        assert sources["max_leverage"] == "runtime"
        assert sources["max_risk_per_trade_usd"] == "default"
        await store.set("lockout", "12h")
        assert (await store.settings()).lockout.total_seconds() == 12 * 3600
        with pytest.raises(UsageError, match="not a risk setting"):
            await store.set("max_levrage", "3")
        with pytest.raises(UsageError, match="VALUE"):
            await store.set("max_leverage", "-1")
        with pytest.raises(UsageError, match="cannot exceed"):
            await store.set("max_risk_per_trade_usd", "1000")  # above the portfolio cap
        assert (await store.settings()).max_leverage == Decimal(3)  # the bad values changed nothing
        assert await store.reset("max_leverage")
        assert (await store.sources())["max_leverage"] == "config"
        assert (await store.settings()).max_leverage == Decimal(4)
    finally:
        await redis.aclose()


async def test_risk_state_round_trips(redis_url: str) -> None:
    redis = await connect(redis_url)
    try:
        store = RiskStore(redis, Keyspace(SID), RiskSettings())
        assert await store.get() == RiskState()
        state = RiskState(peak_equity=Decimal("10000"), equity=Decimal("9500"), drawdown=Decimal("0.05"))
        await store.put(state)
        assert await store.get() == state
    finally:
        await redis.aclose()
