"""`revagent replay` at the front door: bad input is a clear error (exit 2) and writes nothing; a file of
candles replays from its first timestamp, in market time, and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from revagent.cli.main import app

pytestmark = pytest.mark.timeout(120)
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "synthetic:x"], "synthetic:SEED takes an integer seed"),
    (["--data", "missing.csv"], "no such file"),
    (["--data", "synthetic:1", "--speed", "fast"], "--speed fast"),
    (["--data", "synthetic:1", "--step", "0.1s"], "--step: at least 1s"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(revagent_home: Path, tmp_path: Path, args: list[str],
                                                       message: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["replay", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_a_file_of_candles_replays_from_its_first_timestamp(revagent_home: Path, tmp_path: Path) -> None:
    candles = [{"t": T0 + i * 60_000, "s": "BTC", "c": str(95_000 + 10 * i)} for i in range(30)]
    data = tmp_path / "btc.json"
    data.write_text(json.dumps(candles))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["replay", "--data", str(data), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["start"] == "2026-01-05T00:00:00Z" and report["run"]["end"] == "2026-01-05T00:29:00Z"
    assert report["run"]["data"] == "btc.json" and report["trades"] == []
    assert json.loads(result.output)["runs"][0]["run"] == "offline"


def test_a_time_alert_fires_in_market_time(revagent_home: Path, tmp_path: Path) -> None:
    """Issue 19.1: the scheduler's time alerts follow the market clock (the hour passes in about a second)."""
    seeds = tmp_path / "seeds.toml"
    seeds.write_text('[[time_alerts]]\nafter = "30m"\nevery = "20m"\nprompt = "review the book"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["replay", "--data", "synthetic:5", "--hours", "1", "--seeds", str(seeds),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["alert_turns"]["time"] == {"finished": 2}  # at 00:30 and 00:50 of market time
    assert report["run"]["seeded"] is True
