"""Appending a wallet section to the config file: text kept byte for byte, no overwrite, validated."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.config.write import add_wallet, toml_value
from revagent.errors import ConfigError, UsageError

LIVE = {"network": "testnet", "master_address": "0x" + "ab" * 20, "agent_key_file": "/k/agent.key"}


def test_first_wallet_keeps_the_implicit_paper_wallet_and_the_text(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = '# top comment\ndata_dir = "/tmp/x"  # trailing\n\n[risk]\n# about leverage\nmax_leverage = 4\n'
    path.write_text(original)
    path.chmod(0o640)
    add_wallet(path, "tn", LIVE, comment="made by a test")
    text = path.read_text()
    assert text.startswith(original)
    assert "# made by a test\n[wallets.tn]\n" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    cfg = load_config(path, environ={})
    assert cfg.wallet_names() == ["paper", "tn"] and cfg.default_wallet == "paper"
    assert cfg.wallet("tn").master_address == LIVE["master_address"]
    assert cfg.risk.max_leverage == 4


def test_a_second_wallet_keeps_the_implicit_default(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[wallets.main]\nnetwork = "paper"\n')
    assert load_config(path, environ={}).default_wallet == "main"
    add_wallet(path, "other", {"network": "paper"})
    cfg = load_config(path, environ={})
    assert cfg.default_wallet == "main" and cfg.wallet_names() == ["main", "other"]


def test_missing_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    add_wallet(path, "p2", {"network": "paper"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path, environ={}).wallet_names() == ["p2", "paper"]


@pytest.mark.parametrize("name", ["paper", "tn"])
def test_an_existing_wallet_is_never_overwritten(tmp_path: Path, name: str) -> None:
    path = tmp_path / "config.toml"
    if name == "tn":
        add_wallet(path, "tn", LIVE)
    before = path.read_text() if path.exists() else None
    with pytest.raises(UsageError, match="already exists"):
        add_wallet(path, name, {"network": "paper"})
    assert (path.read_text() if path.exists() else None) == before


def test_a_file_it_cannot_append_to_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    inline = 'wallets = { a = { network = "paper" } }\n'
    path.write_text(inline)
    with pytest.raises(ConfigError, match="by hand"):
        add_wallet(path, "b", {"network": "paper"})
    assert path.read_text() == inline
    path.write_text("[risk\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        add_wallet(path, "b", {"network": "paper"})


def test_an_invalid_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError, match="would not validate"):
        add_wallet(path, "tn", {"network": "testnet"})  # no master address, no key
    assert not path.exists()


def test_values_are_quoted_safely() -> None:
    assert toml_value('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert toml_value(True) == "true" and toml_value(3) == "3"
