"""Issue 14 item 1 in the TUI: a market entry's preview shows the expected entry, the worst entry (the
IOC limit) and the risk at the worst; a limit entry's preview is unchanged."""

from __future__ import annotations

from revagent.tui.widgets.thread_view import preview_lines


def test_a_market_entry_preview_shows_expected_and_worst_entry() -> None:
    lines = preview_lines({"verdict": {"side": "long", "market": "BTC", "size": "0.01666", "notional": "999.6",
                                       "risk_usd": "19.99", "expected_entry_px": "60001.2", "worst_entry_px": "60600",
                                       "risk_at_worst_usd": "29.98", "stop_px": "58800"}})
    assert any("entry ~60,001.2" in line and "worst 60,600" in line and "29.98" in line for line in lines), lines


def test_a_limit_entry_preview_has_no_expected_line() -> None:
    lines = preview_lines({"verdict": {"side": "long", "market": "BTC", "size": "0.01", "risk_usd": "10",
                                       "expected_entry_px": "60000", "worst_entry_px": "60000"}})
    assert not any(line.startswith("entry ~") for line in lines)
