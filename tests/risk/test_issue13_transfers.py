"""Issue 13 items 2 and 3: drawdown and the daily loss are measured on a transfer-adjusted (unit
value) basis, so a deposit or a withdrawal alone never changes drawdown, penalty or lock state."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.risk import RiskSettings, RiskState, update_state
from tests.risk.builders import NOW

D = Decimal
H = timedelta(hours=1)
S = RiskSettings()


def test_a_withdrawal_does_not_raise_the_drawdown() -> None:
    s = RiskSettings(max_daily_loss_pct=D(100))
    st_ = update_state(update_state(RiskState(), D(10000), NOW - H, s), D(8600), NOW, s)
    assert st_.drawdown == D("0.14") and st_.lock_reason is None
    after = update_state(st_, D(7600), NOW, s, transfers=[D(-1000)])
    assert after.drawdown == D("0.14")
    assert after.penalty == update_state(st_, D(8600), NOW, s).penalty
    assert after.lock_reason is None


def test_a_withdrawal_does_not_trip_the_daily_loss_lock() -> None:
    st_ = update_state(update_state(RiskState(), D(10000), NOW - H, S), D(9600), NOW, S)
    assert st_.lock_reason is None
    after = update_state(st_, D(7600), NOW, S, transfers=[D(-2000)])
    assert after.lock_reason is None and after.locked_until is None
    # the day's return compounds on the unit value: 0.96 * 0.99 = 0.9504 (4.96%) does not lock,
    # 0.96 * 0.985 = 0.9456 (5.44%) does
    assert update_state(after, D(7524), NOW + H, S).lock_reason is None
    assert update_state(after, D(7486), NOW + H, S).lock_reason == "daily_loss"


def test_a_deposit_does_not_hide_a_drawdown() -> None:
    st_ = update_state(update_state(RiskState(), D(10000), NOW - H, S), D(9000), NOW, S)
    after = update_state(st_, D(19000), NOW, S, transfers=[D(10000)])
    assert after.drawdown == st_.drawdown == D("0.1")


equities = st.decimals(min_value=D(100), max_value=D(100000), places=2)


@settings(max_examples=150, deadline=None)
@given(
    path=st.lists(st.tuples(equities, st.integers(min_value=1, max_value=600)), min_size=1, max_size=12),
    transfer=st.decimals(min_value=D(-0.95), max_value=D(5), places=3),
    cfg=st.sampled_from([S, RiskSettings(max_daily_loss_pct=D(100)), RiskSettings(max_drawdown_pct=D(8))]),
)
def test_a_transfer_alone_never_changes_drawdown_penalty_or_lock(
    path: list[tuple[Decimal, int]], transfer: Decimal, cfg: RiskSettings
) -> None:
    state, t = RiskState(), NOW
    for equity, minutes in path:
        t += timedelta(minutes=minutes)
        state = update_state(state, equity, t, cfg)
    assert state.equity is not None
    amount = (state.equity * transfer).quantize(D("0.01"))
    if state.equity + amount <= 0 or amount == 0:
        return
    t += timedelta(seconds=5)
    without = update_state(state, state.equity, t, cfg)
    moved = update_state(state, state.equity + amount, t, cfg, transfers=[amount])
    assert moved.drawdown == without.drawdown
    assert moved.penalty == without.penalty
    assert (moved.locked_until, moved.lock_reason) == (without.locked_until, without.lock_reason)
