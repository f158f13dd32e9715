"""Issue 22 item 7: the settings' sources and their order. File < wallet section < `REVAGENT_*`
variables (`__` nests) < runtime overrides in Redis; a mistake in a variable names the variable,
the setting and what was expected."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from revagent.config import load_config
from revagent.errors import ConfigError
from revagent.models import SessionId
from revagent.store.keys import Keyspace
from revagent.store.risk import RiskStore

pytestmark = pytest.mark.timeout(60)

WALLET_FILE = """
default_wallet = "main"
[risk]
max_leverage = 4
[llm]
model = "claude-file"
[wallets.main]
network = "paper"
[wallets.main.risk]
max_leverage = 3
[wallets.main.llm]
model = "claude-wallet"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_an_env_variable_beats_the_wallet_section(tmp_path: Path) -> None:
    p = write(tmp_path, WALLET_FILE)
    assert load_config(p, environ={}).wallet().risk.max_leverage == Decimal("3")  # wallet beats the file
    cfg = load_config(p, environ={"REVAGENT_RISK__MAX_LEVERAGE": "2", "REVAGENT_LLM__MODEL": "claude-env"})
    w = cfg.wallet()
    assert w.risk.max_leverage == Decimal("2")
    assert w.llm.model == "claude-env"


def test_env_nesting_reaches_every_level(tmp_path: Path) -> None:
    p = write(tmp_path, WALLET_FILE)
    cfg = load_config(p, environ={
        "REVAGENT_LOG_LEVEL": "debug",
        "REVAGENT_DATA_DIR": str(tmp_path / "data"),
        "REVAGENT_REDIS__URL": "unix:///tmp/x.sock",
        "REVAGENT_SYNC__ENTRY_WAIT": "3s",
        "REVAGENT_NOTIFY__KINDS": '["fill", "lockout"]',
        "REVAGENT_WALLETS__MAIN__RISK__MAX_RISK_PER_TRADE_USD": "7",
        "REVAGENT_CONFIG": str(p),  # where the file is: not a setting
        "REVAGENT_TEST_AGENT_KEY": "not a setting either",
        "OTHER": "ignored",
    })
    assert cfg.log_level == "debug"
    assert cfg.data_path == tmp_path / "data"
    assert cfg.redis.url == "unix:///tmp/x.sock"
    assert cfg.sync.entry_wait.total_seconds() == 3
    assert cfg.notify.kinds == ["fill", "lockout"]
    w = cfg.wallet()
    assert w.risk.max_risk_per_trade_usd == Decimal("7")
    assert w.risk.max_leverage == Decimal("3")  # the file's wallet section is still there under the variable


def test_an_env_variable_picks_the_default_wallet(tmp_path: Path) -> None:
    p = write(tmp_path, WALLET_FILE + "[wallets.other]\nnetwork = 'paper'\n")
    assert load_config(p, environ={"REVAGENT_DEFAULT_WALLET": "other"}).wallet().name == "other"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REVAGENT_RISK__MAX_LEVERAGE", "x", "risk.max_leverage: Input should be a valid decimal (got 'x')"),
        ("REVAGENT_RISK__MAX_LEVRAGE", "3", "risk.max_levrage: unknown setting"),
        ("REVAGENT_RISK_MAX_LEVERAGE", "3", "unknown setting"),
        ("REVAGENT_NOTIFY__KINDS", "fill", "notify.kinds"),
        ("REVAGENT_WALLETS__MAIN__RISK__MAX_LEVERAGE", "lots", "wallets.main.risk.max_leverage"),
        ("REVAGENT_LLM__MAX_TOKENS", "10", "llm.max_tokens: Input should be greater than or equal to 256"),
    ],
)
def test_a_bad_variable_names_itself_the_setting_and_what_was_expected(
        tmp_path: Path, name: str, value: str, expected: str) -> None:
    p = write(tmp_path, WALLET_FILE)
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={name: value}).wallet()
    assert name in err.value.message
    assert expected in err.value.message


def test_a_bad_file_value_still_names_the_file_not_a_variable(tmp_path: Path) -> None:
    p = write(tmp_path, WALLET_FILE.replace("max_leverage = 3", "max_leverage = 'x'"))
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={"REVAGENT_LLM__MODEL": "m"}).wallet()
    assert err.value.message.startswith(f"{p}: wallets.main.risk.max_leverage")
    assert "REVAGENT_" not in err.value.message


def test_config_without_a_load_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from revagent.config import Config

    monkeypatch.setenv("REVAGENT_LOG_LEVEL", "debug")
    monkeypatch.setenv("REVAGENT_SOURCE", "x")
    assert Config().log_level == "info"
    assert Config().source == "(defaults)"


async def test_a_runtime_override_beats_the_env_variable(tmp_path: Path, redis_client: aioredis.Redis) -> None:
    p = write(tmp_path, WALLET_FILE)
    wallet = load_config(p, environ={"REVAGENT_RISK__MAX_LEVERAGE": "2"}).wallet()
    store = RiskStore(redis_client, Keyspace(SessionId(network="paper", address="0x" + "c0" * 20)), wallet.risk)
    assert (await store.settings()).max_leverage == Decimal("2")
    await store.set("max_leverage", "1.5")
    assert (await store.settings()).max_leverage == Decimal("1.5")
    await store.reset("max_leverage")
    assert (await store.settings()).max_leverage == Decimal("2")
