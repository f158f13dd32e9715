"""The shell CLI, run for real in subprocesses: happy paths, JSON shapes and every exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("revagent_home")


def rv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def ok_json(*args: str) -> dict[str, object]:
    out = rv(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_notes_round_trip() -> None:
    added = ok_json("notes", "add", "hello", "--tag", "btc")
    listed = ok_json("notes", "list")
    assert listed["notes"] == [added]
    edited = ok_json("notes", "edit", str(added["id"]), "hello again")
    assert edited["text"] == "hello again"
    assert ok_json("notes", "list", "--tag", "eth")["notes"] == []
    assert ok_json("notes", "rm", str(added["id"])) == {"removed": added["id"]}
    assert ok_json("notes", "list")["notes"] == []


def test_watchers_add_list_rm() -> None:
    pair = ok_json("watchers", "add", "eth", "--above", "3500", "--above-thesis", "range high",
                   "--above-entry", "3510", "--above-stop", "3440", "--above-target", "3700",
                   "--below", "3000", "--expires", "24h")
    assert pair["market"] == "ETH"
    assert pair["upper"]["level"] == "3500"  # type: ignore[index]
    assert pair["upper"]["setup"]["side"] == "long"  # type: ignore[index]
    assert pair["lower"]["direction"] == "below"  # type: ignore[index]
    assert [p["id"] for p in ok_json("watchers", "list")["watchers"]] == [pair["id"]]  # type: ignore[union-attr]
    ok_json("watchers", "rm", str(pair["id"]))
    assert ok_json("watchers", "list", "--all")["watchers"] == []


def test_time_alerts_add_list_rm() -> None:
    alert = ok_json("alerts", "add", "--in", "30m", "--every", "1h", "check funding")
    assert alert["every"] == "1h"
    assert alert["status"] == "scheduled"
    assert [a["id"] for a in ok_json("alerts", "list")["time_alerts"]] == [alert["id"]]  # type: ignore[union-attr]
    ok_json("alerts", "rm", str(alert["id"]))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["watchers", "add", "BTC"], "give --above LEVEL"),
        (["watchers", "add", "BTC!", "--above", "1"], "MARKET: 'BTC!' is not a market name"),
        (["watchers", "add", "BTC", "--above", "-5"], "--above: must be positive (got -5)"),
        (["watchers", "add", "BTC", "--above", "90", "--below", "95"], "must be under the upper level"),
        (["watchers", "add", "BTC", "--below", "9", "--expires", "soon"], "--expires: 'soon' is not a duration"),
        (["alerts", "add", "--at", "2020-01-01T00:00Z", "late"], "is in the past"),
        (["alerts", "add", "--in", "5x", "p"], "--in:"),
        (["alerts", "add", "--in", "1h", "--every", "10s", "p"], "at most once a minute"),
        (["notes", "add", "  "], "cannot be empty"),
    ],
)
def test_bad_input_is_one_line_naming_the_argument_exit_2_and_changes_nothing(args: list[str], needle: str) -> None:
    out = rv(*args)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    err = rv(*args, "--json")
    assert err.returncode == 2
    assert json.loads(err.stdout)["error"]["code"] == "usage"
    assert ok_json("watchers", "list", "--all")["watchers"] == []
    assert ok_json("alerts", "list", "--all")["time_alerts"] == []


def test_not_found_is_exit_3() -> None:
    out = rv("notes", "rm", "n_missing", "--json")
    assert out.returncode == 3
    assert json.loads(out.stdout) == {"error": {"code": "not_found", "message": "no note with id 'n_missing'"}}


def test_config_errors_are_exit_4(revagent_home: Path) -> None:
    cfg = revagent_home / "config" / "config.toml"
    cfg.write_text("[risk]\nmax_leverage = 'high'\n")
    out = rv("notes", "list")
    assert out.returncode == 4
    assert str(cfg) in out.stderr and "risk.max_leverage" in out.stderr
    assert rv("config", "check").returncode == 4
    cfg.write_text("[wallets.a]\nnetwork = 'paper'\n")
    assert ok_json("config", "check")["wallets"] == ["a"]
    out = rv("notes", "list", "--wallet", "nope")
    assert out.returncode == 4 and "no wallet named 'nope'" in out.stderr


def test_world_readable_key_file_is_refused_with_exit_4(revagent_home: Path) -> None:
    key = revagent_home / "agent.key"
    key.write_text("0x" + "11" * 32)
    key.chmod(0o644)
    (revagent_home / "config" / "config.toml").write_text(
        f"[wallets.t]\nnetwork='testnet'\nmaster_address='0x{'1' * 40}'\nagent_key_file='{key}'\n")
    out = rv("wallet", "list")
    assert out.returncode == 0  # listing reads no key
    from revagent.config import load_config
    from revagent.config.keys import agent_key
    from revagent.errors import ConfigError

    with pytest.raises(ConfigError, match="chmod 600"):
        agent_key(load_config().wallet("t"), revagent_home / "data")


def test_unreachable_redis_is_exit_5_without_a_traceback(tmp_path: Path) -> None:
    out = rv("notes", "list", env={"REVAGENT_REDIS__URL": f"unix://{tmp_path}/nothing.sock"})
    assert out.returncode == 5
    assert "Traceback" not in out.stderr
    assert "Redis is unreachable" in out.stderr


def test_embedded_redis_starts_by_itself_and_keeps_data_across_a_restart(tmp_path: Path) -> None:
    env = {"REVAGENT_REDIS__URL": "", "REVAGENT_DATA_DIR": str(tmp_path / "d")}
    try:
        added = rv("notes", "add", "kept", "--json", env=env)
        assert added.returncode == 0, added.stderr
        status = json.loads(rv("server", "status", "--json", env=env).stdout)["redis"]
        assert status["running"] and status["started_by_revagent"]
        assert rv("server", "stop", env=env).returncode == 0
        assert not json.loads(rv("server", "status", "--json", env=env).stdout)["redis"]["running"]
        listed = rv("notes", "list", "--json", env=env)  # starts it again, from its AOF
        assert [n["text"] for n in json.loads(listed.stdout)["notes"]] == ["kept"]
    finally:
        rv("server", "stop", env=env)


def test_status_wallet_list_and_help() -> None:
    status = ok_json("status")
    assert status["wallet"] == "paper" and status["network"] == "paper"
    assert str(status["session"]).startswith("paper:0x")
    wallets = ok_json("wallet", "list")["wallets"]
    assert wallets[0]["name"] == "paper" and wallets[0]["default"] is True  # type: ignore[index]
    started = time.monotonic()
    out = rv("--help")
    assert out.returncode == 0 and "notes" in out.stdout
    assert time.monotonic() - started < 5  # the figure itself is measured in benchmarks/cli_bench.py
    assert rv("notes", "--bogus").returncode == 2


def test_a_watcher_level_the_price_already_passed_is_refused_with_the_price() -> None:
    out = rv("watchers", "add", "BTC", "--above", "1000")
    assert out.returncode == 2, out.stderr
    assert "already" in out.stderr and "BTC" in out.stderr
    assert ok_json("watchers", "list", "--all")["watchers"] == []
