"""Fixtures for the turn engine: a real Redis, the strict fake Anthropic server with the real SDK, a
gateway whose account is a hand-built view (refusals happen before any exchange call), and a runner
factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anthropic as _anthropic_sdk  # noqa: F401  - imported before any loop runs (its import takes ~1-4 s)
import pytest
import redis.asyncio as aioredis

from revagent.bus import Bus
from revagent.engine.prompt import PromptLayers
from revagent.engine.proposals import ProposalService
from revagent.engine.providers.anthropic import AnthropicProvider
from revagent.engine.providers.base import Provider
from revagent.engine.runner import TurnRunner
from revagent.engine.settings import EngineSettings
from revagent.engine.snapshot import SnapshotSource
from revagent.engine.threads import Threads
from revagent.engine.tools import ToolServices, default_tools
from revagent.engine.tools.base import ToolRegistry
from revagent.events import TurnEvent
from revagent.gateway import Gateway
from revagent.models import SessionId
from revagent.risk import AccountView, MarketRules, RiskSettings
from revagent.store.keys import Keyspace
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.repos import SessionStore
from revagent.store.risk import RiskStore
from revagent.store.threads import ThreadStore
from tests.fakes.anthropic_server import FakeAnthropic

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SID = SessionId(network="paper", address="0x" + "ab" * 20)


def btc_account(equity: str = "10000") -> AccountView:
    return AccountView(equity=Decimal(equity), available_margin=Decimal(equity),
                       markets={"BTC": MarketRules(name="BTC", sz_decimals=5, max_leverage=40,
                                                   mark_px=Decimal("60000"), mid_px=Decimal("60000"),
                                                   price_time=NOW)})


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    redis: Any
    store: SessionStore
    threads: ThreadStore
    thread_ops: Threads
    services: ToolServices
    bus: Bus
    clock: Clock
    proposals: ProposalService
    account: list[AccountView]
    events: list[TurnEvent] = field(default_factory=list)

    def runner(self, provider: Provider, *, registry: ToolRegistry | None = None, **settings: Any) -> TurnRunner:
        registry = registry or default_tools()
        self.proposals.attach(registry, self.services)
        base = {"model": "claude-sonnet-4-6", "max_tokens": 1024, "temperature": None}
        return TurnRunner(threads=self.threads, provider=provider, tools=registry, services=self.services,
                          settings=EngineSettings(**{**base, **settings}), layers=PromptLayers(strategy=""),
                          bus=self.bus)


@pytest.fixture
async def harness(redis_client: aioredis.Redis) -> Harness:
    keys = Keyspace(SID)
    store = SessionStore(redis_client, SID)
    threads = ThreadStore(redis_client, keys)
    clock = Clock()
    bus = Bus()
    risk = RiskStore(redis_client, keys, RiskSettings())
    plans = TradePlans(redis_client, keys)
    journal = OrderJournal(redis_client, keys)
    account = [btc_account()]

    async def read_account() -> AccountView:
        return account[0]

    gateway = Gateway(exchange=None, journal=journal, plans=plans, account=read_account, settings=risk.settings,
                      risk_state=risk, bus=bus, lease=None, clock=clock)
    snapshot = SnapshotSource(clock=clock, settings=risk.settings, risk_state=risk.get, account=read_account,
                              plans=plans.open_trades, watchers=store.watchers.all, time_alerts=store.time_alerts.all,
                              notes=store.notes.all, wallet=str(SID))
    proposals = ProposalService(threads, clock=clock, timeout=EngineSettings().proposal_timeout, bus=bus)
    services = ToolServices(gateway=gateway, plans=plans, journal=journal, risk=risk, store=store, clock=clock,
                            snapshot=snapshot, proposals=proposals, account=read_account)
    return Harness(redis_client, store, threads, Threads(threads, clock), services, bus, clock, proposals, account)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key="test-key") as server:
        yield server


@pytest.fixture
async def anthropic(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(api_key="test-key", base_url=fake.base_url, timeout_s=10, max_retries=2)
    try:
        yield provider
    finally:
        await provider.aclose()


def collect(events: list[TurnEvent]) -> Callable[[TurnEvent], None]:
    return events.append
