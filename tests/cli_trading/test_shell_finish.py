"""Issue 23, shell items 11-16: numbers formatted once, `--yes` on every trading command, negative
values reach validation, a refusal said once, `config check` as strict as `status`, `ask`'s
paragraphs and clipped tool results."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from revagent import format as fmt
from revagent.cli.ask import TextRenderer
from revagent.cli.common import DECLINED
from tests.cli_trading.conftest import ThreadedSim, master_of, ok_json, rv

pytestmark = pytest.mark.timeout(300)


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


# ----------------------------------------------------------------------------------------- item 11

def test_the_formatter_puts_prices_on_the_tick_sizes_on_the_lot_money_in_cents() -> None:
    assert fmt.price(Decimal("100806.000")) == "100,806"
    assert fmt.price("100255.5950") == "100,256"
    assert fmt.price("91293.93789968817715765551504") == "91,294"
    assert fmt.price("3312.456") == "3,312.5"
    assert fmt.price("0.123456789", 0) == "0.12346"
    assert fmt.price("1.2345678", 4) == "1.23"  # ETH-like lot: at most 6 - 4 decimals
    assert fmt.size("0.004170", 5) == "0.00417" and fmt.size("-1.50", 2, signed=True) == "-1.5"
    assert fmt.size("0.25", signed=True) == "+0.25"
    assert fmt.money("14.9919614145") == "$14.99" and fmt.money("-3.1") == "-$3.10"
    assert fmt.money("7", signed=True) == "+$7.00" and fmt.money(None) == fmt.DASH
    assert fmt.ratio("0.8807896735003796507213363705") == "0.88"
    assert fmt.pct("0.012") == "1.20%"
    assert fmt.duration(timedelta(hours=1)) == "1h" and fmt.duration(timedelta(minutes=90)) == "1h30m"
    assert fmt.price("NaN") == fmt.DASH and fmt.price(None) == fmt.DASH


def test_risk_check_prints_no_long_decimals_and_json_keeps_them(paper: ThreadedSim) -> None:
    out = rv("risk", "check", "BTC", "long", "--stop", "1.7%", "--risk", "15", "--target", "3.3%")
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    assert "approved" in text and "R:R" in text
    long_numbers = [n for n in re.findall(r"\d[\d,]*\.(\d+)", text) if len(n) > 5]
    assert long_numbers == [], text
    assert re.search(r"risk \$\d+\.\d\d\b", text), text
    doc = ok_json("risk", "check", "BTC", "long", "--stop", "1.7%", "--risk", "15", "--target", "3.3%")
    assert len(str(doc["reward_risk"]).split(".")[-1]) > 2  # --json keeps the exact decimal


def test_a_repeating_alert_reads_back_as_typed(paper: ThreadedSim) -> None:
    out = rv("alerts", "add", "--in", "30m", "--every", "1h", "check funding")
    assert out.returncode == 0, out.stderr
    assert "every 1h" in out.stdout and "1:00:00" not in out.stdout


# ------------------------------------------------------------------------------------- items 12-14

def test_every_trading_command_takes_yes_and_negative_values_reach_validation(paper: ThreadedSim) -> None:
    master = master_of()
    opened = ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes")
    assert opened["status"] == "done", opened
    for args in (("trade", "stop", "BTC", "59000", "--yes"), ("trade", "target", "BTC", "63000", "--yes")):
        done = ok_json(*args)
        assert done["status"] == "done", (args, done)
    for args, where in ((("trade", "stop", "BTC", "-5", "--yes"), "PX"),
                        (("trade", "target", "BTC", "-5", "--yes"), "PX"),
                        (("trade", "cancel", "-1", "--yes"), "OID"),
                        (("risk", "set", "max_leverage", "-3", "--yes"), "max_leverage")):
        out = rv(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "No such option" not in out.stderr and where in out.stderr, (args, out.stderr)
    assert paper.positions(master) != {}


@pytest.mark.parametrize("args", [("ping", "--timeout", "-3"), ("ask", "hi", "--timeout", "-1"),
                                  ("proposals", "approve", "P1", "--timeout", "-1"), ("sim", "serve", "--port", "-1")])
def test_negative_timeouts_and_ports_are_usage_errors(revagent_home: Path, args: tuple[str, ...]) -> None:
    out = rv(*args, timeout=60)
    assert out.returncode == 2, (out.stdout[-500:], out.stderr[-500:])
    assert "No such option" not in out.stderr and "Invalid value" in out.stderr, out.stderr


def test_declining_a_prompt_exits_with_the_documented_code(paper: ThreadedSim) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"{DECLINED} declined" in " ".join(readme.split())
    for args in (("trade", "close", "BTC"), ("trade", "flatten"), ("risk", "resume"), ("risk", "unlock")):
        declined = rv(*args, input="n\n")
        assert declined.returncode == DECLINED, (args, declined.stderr)
        no_input = rv(*args, input="")  # end of input at the prompt: declined too, no "Aborted!"
        assert no_input.returncode == DECLINED and "Aborted" not in no_input.stderr, (args, no_input.stderr)


def test_a_refusal_says_each_thing_once(paper: ThreadedSim) -> None:
    out = rv("trade", "open", "BTC", "long", "--stop", "50%", "--risk", "100000", "--yes")
    assert out.returncode == 6, out.stderr
    text = _flat(out.stdout)
    assert "refused refused" not in text
    assert text.count("refused") == 1, text
    codes = re.findall(r"\((\w+)\)", text)
    assert codes and len(codes) == len(set(codes)), text
    for code in codes:
        message = re.search(rf"✗ ([^✗]*?) \({code}\)", text)
        assert message is not None and text.count(message.group(1)) == 1, (code, text)


# ----------------------------------------------------------------------------------------- item 15

def test_config_check_refuses_a_default_wallet_that_names_no_wallet(revagent_home: Path) -> None:
    (revagent_home / "config" / "config.toml").write_text(
        'default_wallet = "nope"\n[wallets.paper]\nnetwork = "paper"\n')
    status = rv("status")
    assert status.returncode == 4, status.stderr
    check = rv("config", "check")
    assert check.returncode == 4, (check.stdout, check.stderr)
    assert "nope" in check.stderr


# ----------------------------------------------------------------------------------------- item 16

def test_ask_separates_text_around_a_tool_call_and_clips_errors_at_a_word(
        capsys: pytest.CaptureFixture[str]) -> None:
    error = "amount: the value 'x1' must be a valid decimal number, " + "and more detail " * 30
    render = TextRenderer()
    render("text", {"text": "Saving that."})
    render("tool_call", {"name": "add_note", "input": {"text": "n"}})
    render("tool_result", {"name": "add_note", "is_error": True, "content": error})
    render("text", {"text": "Done: MK123"})
    render("done", {"status": "done"})
    out, err = capsys.readouterr()
    assert out == "Saving that.\n\nDone: MK123\n"
    shown = re.search(r"\[add_note -> error: (.*)\]", err)
    assert shown is not None, err
    assert shown.group(1).endswith("…") and len(shown.group(1)) <= 300
    assert error.startswith(shown.group(1)[:-1]), shown.group(1)  # cut between words, never mid-word
    assert error[len(shown.group(1)) - 1] == " "


def test_clip_cuts_at_a_word() -> None:
    assert fmt.clip("must be a valid decimal", 18) == "must be a valid…"
    assert fmt.clip("short", 18) == "short"
    assert json.dumps(fmt.clip("x" * 50, 10)) == json.dumps("x" * 9 + "…")
