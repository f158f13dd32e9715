"""Pure rendering: money and price formats, gauges, sparklines, countdowns, R multiples, the header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.risk import PositionView, RiskStatus, TradingState
from revagent.tui import format as fmt
from revagent.tui.panel_model import PanelModel, TradingBanner, r_multiple, render_positions, unrealized_pnl
from revagent.tui.port import Identity, PanelSnapshot
from revagent.tui.throttle import TickCoalescer
from revagent.tui.widgets.header import banner_text, header_text
from tests.tui.scenes import NOW, open_account

D = Decimal


def test_money_and_prices_are_exact_and_readable() -> None:
    assert fmt.money(D("10243.175")) == "$10,243.18"
    assert fmt.money(D("-3.1"), signed=True) == "-$3.10" and fmt.money(D(7), signed=True) == "+$7.00"
    assert fmt.money(None) == "—"
    assert fmt.price(D("3101")) == "3,101" and fmt.price(D("0.000123")) == "0.000123"
    assert fmt.price(D("97312.5")) == "97,312.5" and fmt.price(D("151.20")) == "151.2"
    assert fmt.size(D("0.4120")) == "+0.412" and fmt.size(D("-12.5")) == "-12.5"
    assert fmt.pct(D("0.0122")) == "1.2%" and fmt.distance(D(98500), D(97312)) == "+1.2%"
    assert fmt.short_address("0x3f2a000000000000000000000000000000009c1d") == "0x3f2a…9c1d"


def test_gauges_sparklines_countdowns() -> None:
    assert fmt.gauge(D(38), D(100)) == "████░░░░░░"
    assert fmt.gauge(D(500), D(100)) == "█" * 10 and fmt.gauge(D(1), D(0)) == "█" * 10
    assert fmt.sparkline([D(1), D(2), D(3)], 3) == "▁▅█" and fmt.sparkline([D(5)] * 4) == "▄▄▄▄"
    assert fmt.sparkline([], 5) == ""
    assert fmt.countdown(NOW + timedelta(hours=1, minutes=58), NOW) == "1h58m"
    assert fmt.countdown(NOW + timedelta(minutes=4, seconds=5), NOW) == "4m05s"
    assert fmt.countdown(NOW + timedelta(days=2, hours=3), NOW) == "2d3h"
    assert fmt.countdown(NOW - timedelta(seconds=1), NOW) == "due"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.decimals(min_value=-10**9, max_value=10**9, allow_nan=False, places=2), max_size=30),
       st.integers(min_value=1, max_value=40))
def test_sparkline_is_never_wider_than_asked(values: list[Decimal], width: int) -> None:
    line = fmt.sparkline(values, width)
    assert len(line) == min(width, len(values))


@settings(max_examples=150, deadline=None)
@given(st.decimals(min_value=0, max_value=10**7, allow_nan=False, places=2),
       st.decimals(min_value=0, max_value=10**7, allow_nan=False, places=2))
def test_gauge_is_always_ten_cells(used: Decimal, cap: Decimal) -> None:
    bar = fmt.gauge(used, cap)
    assert len(bar) == 10 and set(bar) <= {"█", "░"}


def test_pnl_and_r_multiple_long_and_short() -> None:
    long = PositionView(market="ETH", size=D("0.412"), entry_px=D(3101), mark_px=D(3118), stop_px=D(3040),
                        leverage=D(5))
    assert unrealized_pnl(long, D(3118)) == D("7.004")
    assert r_multiple(long, D(3162)) == D(1)  # one stop distance (61) in profit
    short = PositionView(market="SOL", size=D("-2"), entry_px=D(150), mark_px=D(150), stop_px=D(155),
                         planned_stop_px=D(160), leverage=D(3))
    assert unrealized_pnl(short, D(140)) == D(20)
    assert r_multiple(short, D(140)) == D(1)  # R from the planned stop, not the moved one
    naked = PositionView(market="BTC", size=D(1), entry_px=D(100), mark_px=D(100), leverage=D(1))
    assert r_multiple(naked, D(110)) is None


def test_positions_use_live_mids_and_show_a_missing_stop() -> None:
    model = PanelModel()
    model.apply_snapshot(PanelSnapshot(account=open_account()))
    assert "mid 3,118.5" in render_positions(model).plain  # the snapshot's mid seeds the live mids
    model.mids["ETH"] = D(3150)
    text = render_positions(model).plain
    assert "mid 3,150  +$20.19" in text
    model.pending["cmd_1"] = "BTC  long opening… risk $20"
    assert render_positions(model).plain.startswith("BTC  long opening…")


def test_header_puts_the_state_at_the_far_right_and_mainnet_is_loud() -> None:
    model = PanelModel(banner=TradingBanner(TradingState.PENALIZED, D("0.62")), sync_phase="consistent", ws_up=True)
    ident = Identity("main", "mainnet", "0x3f2a000000000000000000000000000000009c1d")
    for width in (80, 120, 200):
        line = header_text(ident, model, NOW, width)
        assert line.cell_len == width
        assert line.plain.endswith(" PENALIZED x0.62 ")
        assert "‼ MAINNET ‼" in line.plain and ("ws ●" if width >= 100 else "ws●") in line.plain
    assert any("blink" in str(span.style) for span in header_text(ident, model, NOW, 120).spans)
    assert "14:02:11 UTC" in header_text(ident, model, NOW, 120).plain
    paper = header_text(Identity("paper", "paper", "0x" + "1" * 40), PanelModel(), NOW, 120).plain
    assert " PAPER " in paper and "STATE ?" in paper and "MAINNET" not in paper


def test_banner_for_each_state() -> None:
    model = PanelModel()
    assert banner_text(model, NOW) is None
    model.apply_snapshot(PanelSnapshot(status=RiskStatus(
        state=TradingState.LOCKED, multiplier=D("0.25"), penalty=D("0.75"), drawdown=D("0.15"), peak_equity=D(1),
        locked_until=NOW + timedelta(hours=18, minutes=12), cooldown_until=None, reason="drawdown reached 15%")))
    locked = banner_text(model, NOW)
    assert locked is not None and "LOCKED until 2026-11-25 08:14 UTC (18h12m left)" in locked.plain
    model.banner = TradingBanner(TradingState.HALTED, D(0))
    halted = banner_text(model, NOW)
    assert halted is not None and "HALTED: no new risk until you /resume" in halted.plain
    model.banner = TradingBanner(TradingState.ACTIVE)
    assert banner_text(model, datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_coalescer_keeps_the_latest_value_per_market() -> None:
    c = TickCoalescer()
    for i in range(1000):
        c.add({"ETH": D(i), "BTC": D(2 * i)})
    c.add({"SOL": D(1)})
    assert len(c) == 3 and c.received == 1001
    assert c.take() == {"ETH": D(999), "BTC": D(1998), "SOL": D(1)}
    assert c.take() == {}
