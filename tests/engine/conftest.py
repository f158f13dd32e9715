"""Fixtures for the engine tests: the strict fake Anthropic server and a provider pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from revagent.engine.providers.anthropic import AnthropicProvider
from tests.fakes.anthropic_server import FakeAnthropic

TEST_KEY = "sk-test-not-a-real-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=TEST_KEY) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(api_key=TEST_KEY, base_url=fake.base_url, timeout_s=5.0, max_retries=2)
    try:
        yield p
    finally:
        await p.aclose()
