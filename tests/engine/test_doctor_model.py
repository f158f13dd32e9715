"""`revagent doctor`'s model check against the strict fake through the real SDK: the configured model
is probed with the thread kinds' thinking and effort through the token-counting endpoint (free), and
the report names the model, its thinking mode and its price row (issue 15.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.engine.providers.capabilities import capabilities_for
from revagent.runtime.doctor import check_model
from tests.fakes.anthropic_server import FakeAnthropic

KEY = "sk-ant-doctor"
pytestmark = pytest.mark.timeout(60)


async def test_the_model_check_probes_the_configured_model_and_reports_its_row(
        revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeAnthropic(api_key=KEY, known_models=frozenset({"claude-sonnet-5-5"})) as fake:
        monkeypatch.setenv("REVAGENT_LLM__BASE_URL", fake.base_url)
        monkeypatch.setenv("REVAGENT_LLM__MODEL", "claude-sonnet-5-5")
        wallet = load_config().wallet()
        good = await check_model(wallet, env={"ANTHROPIC_API_KEY": KEY})
        assert good.status == "pass", good
        assert good.data["model"] == "claude-sonnet-5-5"
        assert good.data["thinking"]["alert"]["type"] == "adaptive" and good.data["effort"]["alert"] == "medium"
        row = capabilities_for("claude-sonnet-5-5")
        assert row is not None and row.pricing is not None
        assert good.data["price"] == {"input": str(row.pricing.input), "output": str(row.pricing.output),
                                      "cache_write": str(row.pricing.cache_write),
                                      "cache_read": str(row.pricing.cache_read)}
        assert "claude-sonnet-5-5: context" in good.detail and "alert thinking adaptive effort medium" in good.detail
        [probe] = fake.count_requests
        assert probe.body["model"] == "claude-sonnet-5-5" and probe.body["output_config"] == {"effort": "medium"}
        assert good.data["probe_input_tokens"] > 0 and fake.requests == []  # nothing billed

        wrong_key = await check_model(wallet, env={"ANTHROPIC_API_KEY": "sk-ant-wrong"})
        assert wrong_key.status == "fail" and "auth" in wrong_key.detail and "invalid x-api-key" in wrong_key.detail

        monkeypatch.setenv("REVAGENT_LLM__MODEL", "claude-sonnet-5-5-20270101")  # the row's, not the server's
        missing = await check_model(load_config().wallet(), env={"ANTHROPIC_API_KEY": KEY})
        assert missing.status == "fail" and missing.data["error"]["status"] == 404
        assert "claude-sonnet-5-5-20270101" in missing.detail and "fix [llm]" in missing.detail

        monkeypatch.setenv("REVAGENT_LLM__MODEL", "claude-sonnet-5-5")
        no_key = await check_model(load_config().wallet(), env={})
        assert no_key.status == "warn" and "offline provider" in no_key.detail and len(fake.count_requests) == 3

    monkeypatch.setenv("REVAGENT_LLM__BASE_URL", "http://127.0.0.1:9")  # nothing listens
    down = await check_model(load_config().wallet(), env={"ANTHROPIC_API_KEY": KEY}, timeout_s=10)
    assert down.status == "warn" and "connection" in down.detail
