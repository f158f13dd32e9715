"""The risk state machine: drawdown, penalty with decay, lockout, daily loss, cooldown, kill switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from revagent.risk import (
    RiskSettings,
    RiskState,
    TradingState,
    current_penalty,
    halt,
    note_order_sent,
    resume,
    status,
    target_penalty,
    trading_state,
    unlock,
    update_state,
)
from tests.risk.builders import FRESH, NOW

D = Decimal
S = RiskSettings()  # penalty from 5% to 15% drawdown, floor 0.25, half-life 24h, lockout 24h, daily 5%
H = timedelta(hours=1)


def test_target_penalty_formula() -> None:
    # p*(d) = (1 - 0.25) * clamp((d - 0.05) / (0.15 - 0.05), 0, 1)
    assert target_penalty(D("0.04"), S) == 0
    assert target_penalty(D("0.10"), S) == D("0.375")  # 0.75 * 0.5
    assert target_penalty(D("0.15"), S) == D("0.75")
    assert target_penalty(D("0.40"), S) == D("0.75")


def test_drawdown_raises_the_penalty_at_once_and_it_decays_with_the_half_life() -> None:
    s = update_state(FRESH, D(10000), NOW, S)
    assert (s.peak_equity, s.drawdown, s.penalty) == (D(10000), D(0), D(0))
    assert trading_state(s, NOW, S) is TradingState.ACTIVE
    s = update_state(s, D(9400), NOW + H, S)  # 6% of daily loss would lock: keep it under 5% per day
    s = update_state(s, D(9000), NOW + 25 * H, S)  # next day: d = 0.10 -> p = 0.375
    assert s.drawdown == D("0.1") and s.penalty == D("0.375")
    st = status(s, NOW + 25 * H, S)
    assert st.state is TradingState.PENALIZED and st.multiplier == D("0.625")
    s = update_state(s, D(10000), NOW + 49 * H, S)  # recovered; one half-life later: 0.1875
    assert s.drawdown == 0 and s.penalty == D("0.1875")
    # between updates the engine decays it too: another half-life -> 0.09375
    assert current_penalty(s, NOW + 73 * H, S) == D("0.09375")
    # and a new drawdown lifts it at once: d = 0.12 -> 0.75 * 0.7 = 0.525
    s = update_state(s, D(8800), NOW + 50 * H, S)
    assert s.penalty == D("0.525")


def test_transfers_move_the_peak() -> None:
    s = update_state(FRESH, D(10000), NOW, S)
    s = update_state(s, D(8000), NOW + H, S, transfers=[D(-2000)])  # a withdrawal is not a loss
    assert (s.peak_equity, s.drawdown) == (D(8000), D(0))
    assert s.lock_reason is None
    s = update_state(s, D(7600), NOW + 2 * H, S)  # -5% of the day's 8000 net start: daily lock
    assert s.lock_reason == "daily_loss"
    s = update_state(FRESH, D(10000), NOW, S)
    s = update_state(s, D(9600), NOW + H, S)
    s = update_state(s, D(10600), NOW + 2 * H, S, transfers=[D(1000)])  # a deposit in drawdown
    # transfer-adjusted: the peak scales with the deposit, 10000 * 10600 / 9600; d stays 400 / 10000
    assert s.peak_equity == D(10000) * D(10600) / D(9600) and s.drawdown == D("0.04")
    assert s.net_transfers == D(1000)


def test_max_drawdown_locks_then_releases_with_a_rebased_peak_and_max_penalty() -> None:
    start = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    s = update_state(FRESH, D(10000), start, S)
    for day in range(1, 4):  # lose 4% a day: no daily lock, drawdown grows
        s = update_state(s, D(10000) - D(400) * day, start + day * 24 * H, S)
    s = update_state(s, D(8500), start + 4 * 24 * H, S)  # 400 more would be 16%; 8500 = 15% exactly
    assert s.lock_reason == "max_drawdown" and s.drawdown == D("0.15")
    locked_at = start + 4 * 24 * H
    assert s.locked_until == locked_at + 24 * H
    assert trading_state(s, locked_at, S) is TradingState.LOCKED
    s = update_state(s, D(8700), locked_at + 23 * H, S)
    assert s.lock_reason == "max_drawdown"
    s = update_state(s, D(8600), locked_at + 24 * H, S)  # released: peak 8600, penalty back to 0.75
    assert s.lock_reason is None and s.locked_until is None
    assert (s.peak_equity, s.drawdown, s.penalty) == (D(8600), D(0), D("0.75"))
    assert status(s, locked_at + 24 * H, S).multiplier == D("0.25")
    s = update_state(s, D(8600), locked_at + 48 * H, S)
    assert s.penalty == D("0.375")


def test_daily_loss_locks_until_midnight_net_of_transfers() -> None:
    s = update_state(FRESH, D(10000), NOW, S)
    s2 = update_state(s, D(9400), NOW + H, S, transfers=[D(-600)])  # withdrew 600: no loss
    assert s2.lock_reason is None
    s = update_state(s, D(9500), NOW + H, S)  # lost 500 = 5% of 10000
    assert s.lock_reason == "daily_loss"
    assert s.locked_until == datetime(2026, 3, 3, tzinfo=UTC)
    s = update_state(s, D(9500), datetime(2026, 3, 2, 23, 59, tzinfo=UTC), S)
    assert s.lock_reason == "daily_loss"
    s = update_state(s, D(9500), datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC), S)
    assert s.lock_reason is None and s.day_start_equity == D(9500)


def test_cooldown_after_consecutive_losses() -> None:
    s = update_state(FRESH, D(10000), NOW, S)
    s = update_state(s, D(9990), NOW + H, S, closed_trades=[D(-5), D(2), D(-3)])
    assert s.losing_streak == 1 and s.cooldown_until is None
    s = update_state(s, D(9985), NOW + 2 * H, S, closed_trades=[D(-3), D(-2)])
    assert s.cooldown_until == NOW + 2 * H + timedelta(minutes=60) and s.losing_streak == 0
    assert status(s, NOW + 2 * H, S).cooldown_until == s.cooldown_until
    s = update_state(s, D(9985), NOW + 3 * H + timedelta(seconds=1), S)
    assert s.cooldown_until is None


def test_kill_switch_and_human_unlock() -> None:
    s = halt(update_state(FRESH, D(10000), NOW, S), NOW, "agent")
    assert trading_state(s, NOW, S) is TradingState.HALTED
    assert "agent" in (status(s, NOW, S).reason or "")
    assert halt(s, NOW + H, "human").halted_at == NOW  # idempotent
    assert trading_state(resume(s, NOW), NOW, S) is TradingState.ACTIVE

    s = update_state(FRESH, D(10000), NOW, S)
    s = update_state(s, D(9000), NOW + H, S)  # daily 10% loss: daily lock
    s = unlock(s, D(9000), NOW + 2 * H, S)
    assert s.lock_reason is None and s.day_start_equity == D(9000)
    s = update_state(s, D(9000), NOW + 3 * H, S)
    assert s.lock_reason is None  # the same loss does not lock again today

    s = RiskState(
        peak_equity=D(10000),
        equity=D(8400),
        drawdown=D("0.16"),
        penalty=D("0.75"),
        updated_at=NOW,
        locked_until=NOW + 20 * H,
        lock_reason="max_drawdown",
    )
    s = unlock(s, D(8400), NOW + H, S)
    assert (s.peak_equity, s.penalty, s.updated_at, s.locked_until) == (D(8400), D("0.75"), NOW + H, None)
    assert unlock(FRESH, D(1), NOW) is FRESH


def test_note_order_sent_keeps_one_minute() -> None:
    s = note_order_sent(FRESH, NOW)
    s = note_order_sent(s, NOW + timedelta(seconds=30))
    s = note_order_sent(s, NOW + timedelta(seconds=61))
    assert s.recent_orders == (NOW + timedelta(seconds=30), NOW + timedelta(seconds=61))


def test_state_round_trips_through_json() -> None:
    s = update_state(FRESH, D(10000), NOW, S)
    s = note_order_sent(update_state(s, D(9000), NOW + 25 * H, S, closed_trades=[D(-1)]), NOW + 25 * H)
    assert RiskState.model_validate_json(s.model_dump_json()) == s
