"""Issue 13 item 9: huge numbers and durations typed in the shell (or written in the config) get a
one-line error with the documented exit code (2 usage, 3 not found, 4 config), never a traceback,
and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_trading.conftest import ThreadedSim, ok_json, rv

HUGE = "1" * 5000


def _one_line_error(out: object, code: int) -> None:
    assert out.returncode == code, (out.returncode, out.stdout[-500:], out.stderr[-1500:])  # type: ignore[attr-defined]
    err = out.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-1500:]
    assert len(err) < 400


@pytest.mark.parametrize("args", [
    ("--risk", "1e309"), ("--risk", HUGE), ("--risk", "20", "--entry", "1e309"),
    ("--risk", "20", "--target", HUGE),
])
def test_trade_open_with_a_huge_number_is_a_usage_error(paper: ThreadedSim, args: tuple[str, ...]) -> None:
    out = rv("trade", "open", "BTC", "long", "--stop", "2%", *args, "--yes")
    _one_line_error(out, 2)
    assert ok_json("positions")["positions"] == []


@pytest.mark.parametrize("args", [
    ("alerts", "add", "check BTC", "--in", "9" * 400 + "d"),
    ("alerts", "add", "check BTC", "--in", "99999999999d"),
    ("watchers", "add", "BTC", "--above", "70000", "--expires", "99999999999d"),
    ("watchers", "add", "BTC", "--above", "1e309"),
    ("risk", "set", "stop_grace", "99999999999d"),
])
def test_huge_levels_and_durations_are_usage_errors(paper: ThreadedSim, args: tuple[str, ...]) -> None:
    _one_line_error(rv(*args), 2)


def test_a_watcher_on_an_unknown_market_is_not_found(paper: ThreadedSim) -> None:
    _one_line_error(rv("watchers", "add", "NOPE", "--above", "5"), 3)
    assert ok_json("watchers", "list", "--all")["watchers"] == []


def test_a_huge_number_in_the_config_is_a_config_error(revagent_home: Path) -> None:
    (revagent_home / "config" / "config.toml").write_text(f"[risk]\nmax_risk_per_trade_usd = {HUGE}\n")
    _one_line_error(rv("risk", "show"), 4)
    (revagent_home / "config" / "config.toml").write_text("[risk]\nmax_risk_per_trade_usd = 1e300\n")
    _one_line_error(rv("risk", "show"), 4)


@pytest.mark.parametrize("field", ["risk_usd", "stop_px", "target_px"])
@pytest.mark.parametrize("value", ["1e309", HUGE, "Infinity", "NaN"])
def test_the_open_trade_tool_refuses_the_same_numbers(field: str, value: str) -> None:
    from pydantic import ValidationError

    from revagent.engine.tools.trade import OpenTradeArgs

    args = {"market": "BTC", "side": "long", "stop_px": "59000", "target_px": "63000", "conviction": 60,
            "risk_usd": "20", "rationale": "test", field: value}
    with pytest.raises(ValidationError):
        OpenTradeArgs.model_validate(args)
