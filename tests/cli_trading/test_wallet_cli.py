"""`revagent wallet new/show` for real, and the onboarding helpers against the simulator."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revagent.config.keys import SecretKey
from revagent.exchange.sim import SimConfig, SimServer
from tests.cli_trading.conftest import ThreadedSim, master_of, ok_json, rv

CONFIG_TEXT = '# my revagent config\nlog_level = "info"  # keep this comment\n\n[risk]\nmax_leverage = 5\n'


def config_file(home: Path) -> Path:
    return home / "config" / "config.toml"


def key_hexes(home: Path) -> list[str]:
    """Every private key under the data dir, without its 0x (to look for leaks)."""
    return [p.read_text().strip().removeprefix("0x") for p in (home / "data" / "wallets").rglob("*.key")]


def test_wallet_new_paper2_then_trade_with_it(paper: ThreadedSim, revagent_home: Path) -> None:
    config_file(revagent_home).write_text(CONFIG_TEXT)
    paper_master = master_of()
    created = rv("wallet", "new", "paper2", "--network", "paper", "--json")
    assert created.returncode == 0, created.stderr
    doc = json.loads(created.stdout)
    assert doc["approval"]["status"] == "approved"
    key_file = Path(doc["agent_key_file"])
    assert key_file == revagent_home / "data" / "wallets" / "paper2" / "agent.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    text = config_file(revagent_home).read_text()
    assert text.startswith(CONFIG_TEXT)  # everything that was there stays, comments included
    assert "[wallets.paper]" in text and "[wallets.paper2]" in text
    assert master_of() == paper_master  # the implicit paper wallet is still the default, same account

    opened = ok_json("trade", "open", "BTC", "short", "--stop", "1%", "--risk", "12", "--yes", "--wallet", "paper2")
    assert opened["status"] == "done", opened
    assert set(paper.positions(doc["master_address"])) == {"BTC"}
    assert paper.positions(paper_master) == {}
    assert [p["market"] for p in ok_json("positions", "--wallet", "paper2")["positions"]] == ["BTC"]
    assert ok_json("positions")["positions"] == []

    shown = rv("wallet", "show", "paper2", "--json")
    assert shown.returncode == 0
    info = json.loads(shown.stdout)
    assert info["approval"]["status"] == "approved"
    assert (info["master_address"], info["agent_address"]) == (doc["master_address"], doc["agent_address"])
    assert info["agent_key"]["mode"] == "0600"
    outputs = created.stdout + created.stderr + shown.stdout + shown.stderr
    assert not any(k in outputs for k in key_hexes(revagent_home))  # never a key

    again = rv("wallet", "new", "paper2", "--network", "paper")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert config_file(revagent_home).read_text() == text


def test_wallet_new_testnet_with_print_approval(revagent_home: Path) -> None:
    missing = rv("wallet", "new", "tn1", "--network", "testnet", "--print-approval")
    assert missing.returncode == 2 and "--master-address" in missing.stderr
    assert not config_file(revagent_home).exists()
    assert not (revagent_home / "data" / "wallets" / "tn1").exists()
    assert rv("wallet", "new", "tn1", "--network", "moon").returncode == 2

    master = "0x" + "ab" * 20
    out = rv("wallet", "new", "tn1", "--network", "testnet", "--master-address", master, "--print-approval")
    assert out.returncode == 0, out.stderr
    flat = " ".join(out.stdout.split())
    key_file = revagent_home / "data" / "wallets" / "tn1" / "agent.key"
    agent = SecretKey(key_file.read_text()).address()
    assert agent in flat and "rv-tn1" in flat and "hyperliquid-testnet.xyz" in flat
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    shown = ok_json("wallet", "show", "tn1", "--no-check")
    assert shown["network"] == "testnet" and shown["master_address"] == master
    assert shown["agent_address"] == agent
    assert shown["agent_key"] == {"source": f"file {key_file}", "path": str(key_file), "mode": "0600",
                                  "problem": None}
    assert ok_json("config", "check")["wallets"] == ["paper", "tn1"]
    assert rv("wallet", "new", "tn1", "--network", "testnet", "--master-address", master,
              "--print-approval").returncode == 2


def test_master_key_is_typed_at_a_hidden_prompt_and_never_shown_or_stored(revagent_home: Path) -> None:
    master = SecretKey.generate()
    out = rv("wallet", "new", "tn2", "--network", "testnet", input=master.reveal() + "\n", timeout=60)
    # created either way; the approval needs testnet: refused (6) or unreachable (8) from a test box
    assert out.returncode in (0, 6, 8), out.stderr
    hex_key = master.reveal().removeprefix("0x")
    assert hex_key not in out.stdout + out.stderr
    assert master.address() in " ".join(out.stdout.split())
    text = config_file(revagent_home).read_text()
    assert f'master_address = "{master.address()}"' in text and hex_key not in text
    assert all(hex_key not in k for k in key_hexes(revagent_home))
    wrong = rv("wallet", "new", "tn3", "--network", "testnet", "--master-address", "0x" + "cd" * 20,
               input=master.reveal() + "\n")
    assert wrong.returncode == 2 and "belongs to" in wrong.stderr
    assert "tn3" not in config_file(revagent_home).read_text()
    assert rv("wallet", "new", "tn4", "--network", "testnet", input="not-a-key\n").returncode == 2


@pytest.fixture
async def sim_url() -> AsyncIterator[str]:
    sim = SimServer(SimConfig(seed=1, manual_clock=True, history_minutes=0))
    url = await sim.start()
    try:
        yield url
    finally:
        await sim.stop()


async def test_approve_with_master_key_against_the_simulator(sim_url: str) -> None:
    from revagent.cli.wallet import approve_with_master_key

    master, agent = SecretKey.generate(), SecretKey.generate()
    result = await approve_with_master_key(sim_url, "testnet", master, agent.address(), "rv-x")
    assert result["status"] == "approved" and result["agent_name"] == "rv-x"
    assert result["valid_until_ms"]


async def test_approval_status_names_the_problem(sim_url: str, revagent_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from revagent.cli.wallet import approval_status
    from revagent.config import load_config

    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", sim_url)
    cfg = load_config()
    master, agent = SecretKey.generate(), SecretKey.generate()
    status = await approval_status(cfg, cfg.wallet(), master.address(), agent.address())
    assert status["status"] == "not_approved" and "not approved by any account" in status["problem"]
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", "http://127.0.0.1:9")
    unknown = await approval_status(load_config(), cfg.wallet(), master.address(), agent.address())
    assert unknown["status"] == "unknown" and unknown["problem"]


def test_wallet_new_creates_an_explicit_config_file(paper: ThreadedSim, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "revagent.toml"
    out = rv("wallet", "new", "p3", "--network", "paper", "--config", str(target), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["approval"]["status"] == "approved"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert ok_json("config", "check", "--config", str(target))["wallets"] == ["p3", "paper"]
