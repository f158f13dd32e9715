"""Configuration: defaults, precedence, clear errors, key files, and the example file."""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import Config, load_config
from revagent.config.keys import SecretKey, agent_key, paper_keys, read_key_file, write_key_file
from revagent.errors import ConfigError
from revagent.risk.settings import RiskSettings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_no_config_gives_a_paper_wallet_named_paper(tmp_path: Path) -> None:
    cfg = load_config(environ={"REVAGENT_CONFIG": str(tmp_path / "missing.toml")})
    w = cfg.wallet()
    assert (w.name, w.network) == ("paper", "paper")
    assert w.risk == RiskSettings()
    assert w.chat_mode() == "autonomous"


def test_precedence_defaults_file_wallet_env(tmp_path: Path) -> None:
    p = write(tmp_path, """
default_wallet = "main"
[risk]
max_leverage = 4
max_risk_per_trade_usd = 20
[wallets.main]
network = "testnet"
master_address = "0x00000000000000000000000000000000000000AA"
agent_key_env = "MY_AGENT_KEY"
[wallets.main.risk]
max_leverage = 3
""")
    cfg = load_config(p, environ={"REVAGENT_RISK__MAX_RISK_PER_TRADE_USD": "15"})
    w = cfg.wallet()
    assert w.risk.max_leverage == Decimal("3")  # wallet beats global
    assert w.risk.max_risk_per_trade_usd == Decimal("15")  # env beats file
    assert w.risk.max_portfolio_risk_usd == Decimal("100")  # default
    assert w.master_address == "0x00000000000000000000000000000000000000aa"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[risk]\nmax_levrage = 3\n", "risk.max_levrage: unknown setting"),
        ("[risk]\nmax_leverage = 'lots'\n", "risk.max_leverage: Input should be a valid decimal"),
        ("[wallets.w]\nnetwork = 'mainet'\n", "wallets.w.network: Input should be 'paper', 'testnet' or 'mainnet'"),
        ("[risk]\npenalty_half_life = 'soon'\n", "risk.penalty_half_life"),
        ("[redis]\nurl = 'http://x'\n", "redis.url"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_a_bad_config_names_the_file_and_the_setting(tmp_path: Path, text: str, expected: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={})
    assert str(p) in err.value.message
    assert expected in err.value.message


def test_a_live_wallet_needs_its_master_address_and_a_key_source(tmp_path: Path) -> None:
    p = write(tmp_path, "[wallets.live]\nnetwork = 'mainnet'\n")
    with pytest.raises(ConfigError, match="master_address is required"):
        load_config(p, environ={}).wallet("live")
    p = write(tmp_path, "[wallets.live]\nnetwork = 'mainnet'\nmaster_address = '0x" + "1" * 40 + "'\n")
    with pytest.raises(ConfigError, match="agent_key_env"):
        load_config(p, environ={}).wallet("live")


def test_unknown_wallet_and_bad_default(tmp_path: Path) -> None:
    p = write(tmp_path, "default_wallet = 'nope'\n[wallets.a]\nnetwork = 'paper'\n")
    with pytest.raises(ConfigError, match="default_wallet"):
        load_config(p, environ={})
    p = write(tmp_path, "[wallets.a]\nnetwork = 'paper'\ndefault_wallet='a'\n")
    with pytest.raises(ConfigError):
        load_config(p, environ={})


def test_env_var_with_a_bad_value_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_leverage"):
        load_config(environ={"REVAGENT_CONFIG": str(tmp_path / "none.toml"), "REVAGENT_RISK__MAX_LEVERAGE": "x"})


def test_key_files_must_be_private(tmp_path: Path) -> None:
    key = SecretKey.generate()
    path = tmp_path / "agent.key"
    write_key_file(path, key)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_key_file(path).reveal() == key.reveal()
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=r"mode 0644.*chmod 600"):
        read_key_file(path)


def test_secret_keys_never_print_themselves() -> None:
    key = SecretKey("0x" + "7" * 64)
    for shown in (str(key), repr(key), f"{key}", f"{key!r}", str([key])):
        assert "7777" not in shown


def test_agent_key_from_env_and_paper_keys_are_generated_once(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
[wallets.t]
network = "testnet"
master_address = "0x0000000000000000000000000000000000000001"
agent_key_env = "T_KEY"
"""), environ={})
    with pytest.raises(ConfigError, match=r"T_KEY"):
        agent_key(cfg.wallet("t"), tmp_path, environ={})
    assert agent_key(cfg.wallet("t"), tmp_path, environ={"T_KEY": "ab" * 32}).reveal() == "0x" + "ab" * 32
    first = paper_keys(tmp_path, "paper")
    again = paper_keys(tmp_path, "paper")
    assert first == again
    assert first.master_address != first.agent_address
    assert read_key_file(first.master_key_file).address() == first.master_address


def _flatten(doc: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in doc.items():
        if isinstance(v, dict) and k != "wallets":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_config_example_documents_every_setting_with_its_default() -> None:
    example_path = ROOT / "config.example.toml"
    example = tomllib.loads(example_path.read_text())
    # The example must load as it is.
    cfg = load_config(example_path, environ={})
    defaults = _flatten(Config().model_dump(mode="json", exclude={"wallets", "source"}))
    documented = _flatten({k: v for k, v in example.items() if k != "wallets"})
    assert sorted(set(defaults) - set(documented)) == [], "settings missing from config.example.toml"
    assert sorted(set(documented) - set(defaults)) == [], "config.example.toml has settings the model lacks"
    for key, value in documented.items():
        assert Config.model_validate(_unflatten(key, value)).model_dump(mode="json", exclude={"wallets", "source"}) \
            == Config.model_validate(_unflatten(key, defaults[key])).model_dump(
                mode="json", exclude={"wallets", "source"}), f"{key}: the example's value is not the default"
    assert cfg.wallet("paper").network == "paper"


def _unflatten(key: str, value: object) -> dict[str, object]:
    parts = key.split(".")
    doc: dict[str, object] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        doc = {part: doc}
    return doc
