"""Issue 14 item 1 in the shell: `risk check` and `trade open` judge a market entry at its expected
fill (a target between the fill and the slippage bound is fine) and show expected entry, worst entry
and the risk at each."""

from __future__ import annotations

from decimal import Decimal

from tests.cli_trading.conftest import BTC, ThreadedSim, ok_json, rv


def test_risk_check_measures_the_target_from_the_expected_fill(paper: ThreadedSim) -> None:
    v = ok_json("risk", "check", "BTC", "long", "--stop", "2%", "--risk", "20", "--target", "0.5%")
    assert v["approved"], v["reasons"]
    expected, worst = Decimal(v["expected_entry_px"]), Decimal(v["worst_entry_px"])
    assert BTC <= expected < BTC * Decimal("1.001") and worst == BTC * Decimal("1.01")
    assert Decimal("19.9") <= Decimal(v["risk_usd"]) <= 20 < Decimal(v["risk_at_worst_usd"])
    text = rv("risk", "check", "BTC", "long", "--stop", "2%", "--risk", "20")
    assert text.returncode == 0, text.stderr
    for label in ("entry ~", "worst", "risk $", "at worst $"):
        assert label in text.stdout, text.stdout


def test_trade_open_reports_expected_and_worst_entry(paper: ThreadedSim) -> None:
    opened = ok_json("trade", "open", "BTC", "long", "--stop", "1%", "--risk", "20", "--yes")
    assert opened["status"] == "done", opened
    v = opened["verdict"]
    assert Decimal(v["expected_entry_px"]) < Decimal(v["worst_entry_px"]) == Decimal(v["price"])
    assert "risk $19.9" in opened["message"] or "risk $20.00" in opened["message"], opened["message"]
