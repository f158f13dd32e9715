"""The risk state machine: drawdown on a transfer-adjusted basis, the decaying penalty, lockouts,
the daily loss limit, the losing-streak cooldown, the kill switch and the order-rate window.

Pure functions over an immutable `RiskState` (a pydantic model: it is stored in Redis and shown in
the UI). The session owns the state: it calls `update_state` on every account change and at least
every 5 seconds, `note_order_sent` after each order leaves, and `halt` / `resume` / `unlock` on
command. `resume` and `unlock` are for humans only: the caller enforces that (the agent's tool can
only `halt`).

Formulas (percent settings used as fractions):
- drawdown `d = (peak - equity) / peak` on a transfer-adjusted (unit value) basis: a deposit or a
  withdrawal changes the peak in proportion to the equity (`peak *= equity_after / equity_before`),
  so it never changes `d`; only trading does. `peak` is the high-water mark of equity on that basis.
  Transfers seen in one `update_state` are taken as made just before its reading: `d` and the day's
  loss are judged on `equity - transfers`, then the peak and the day's base are scaled;
- daily loss: `(day_base - equity) / day_base` with `day_base` the day's starting equity scaled the
  same way by today's transfers (the day's return, compounded), against `max_daily_loss_pct`;
- target penalty `p*(d) = (1 - penalty_floor) * clamp((d - start) / (max_dd - start), 0, 1)`;
- penalty `p(t) = max(p*(d_t), p(t_prev) * 0.5 ** ((t - t_prev) / penalty_half_life))`;
- multiplier `m = 1 - p` scales the portfolio cap (hence the per-market cap) and the per-trade cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from revagent.models import UtcDateTime
from revagent.risk.settings import RiskSettings

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
RATE_WINDOW = timedelta(minutes=1)

LockReason = Literal["max_drawdown", "daily_loss"]


class TradingState(StrEnum):
    """What the UI shows everywhere. ACTIVE: m = 1; PENALIZED: m < 1; LOCKED: only risk-reducing and
    protective actions pass until the lock ends; HALTED: the kill switch, released only by a human."""

    ACTIVE = "active"
    PENALIZED = "penalized"
    LOCKED = "locked"
    HALTED = "halted"


class RiskState(BaseModel):
    """The engine's memory between calls (stored per wallet; times are aware UTC).

    - `peak_equity`: equity's high-water mark on the transfer-adjusted basis (scaled by each transfer
      in proportion to the equity; None before the first update);
    - `equity`, `updated_at`: equity and time of the last `update_state`;
    - `drawdown`: fraction 0..1 at the last update; `penalty`: p at the last update (fraction, at most
      `1 - penalty_floor`); it decays from `updated_at` with the half-life;
    - `locked_until`, `lock_reason`: a lockout (max drawdown, or the daily loss limit); `evaluate`
      and `trading_state` judge it released from `locked_until` on; `update_state` at or after that
      time (or `unlock`) clears it and re-bases;
    - `halted`, `halted_by`, `halted_at`: the kill switch;
    - `day`, `day_start_equity`, `day_transfers`: the current UTC day's baseline for the daily loss
      (`day_start_equity` is scaled by today's transfers like the peak; `day_transfers` is today's net
      transfers, for display);
    - `losing_streak`, `cooldown_until`: consecutive losing trades and the cooldown they caused
      (`cooldown_started`, `cooldown_streak`: when, and after how many losses; the settings in force
      now decide how long it lasts, see `active_cooldown`);
    - `recent_orders`: send times within the last minute (the orders-per-minute limit);
    - `net_transfers`: deposits minus withdrawals seen since the state began.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    peak_equity: Decimal | None = None
    equity: Decimal | None = None
    drawdown: Decimal = _ZERO
    penalty: Decimal = _ZERO
    updated_at: UtcDateTime | None = None
    locked_until: UtcDateTime | None = None
    lock_reason: LockReason | None = None
    halted: bool = False
    halted_by: str | None = None
    halted_at: UtcDateTime | None = None
    day: date | None = None
    day_start_equity: Decimal | None = None
    day_transfers: Decimal = _ZERO
    losing_streak: int = 0
    cooldown_until: UtcDateTime | None = None
    cooldown_started: UtcDateTime | None = None
    cooldown_streak: int = 0
    recent_orders: tuple[UtcDateTime, ...] = ()
    net_transfers: Decimal = _ZERO


class RiskStatus(BaseModel):
    """A small summary for display: state, multiplier, drawdown, lock, and why."""

    model_config = ConfigDict(frozen=True)

    state: TradingState
    multiplier: Decimal
    penalty: Decimal
    drawdown: Decimal
    peak_equity: Decimal | None
    locked_until: datetime | None
    cooldown_until: datetime | None
    reason: str | None


# ------------------------------------------------------------------------------------- penalty


def target_penalty(drawdown: Decimal, settings: RiskSettings) -> Decimal:
    """`p*(d)`: 0 up to `penalty_start_pct`, rising linearly to `1 - penalty_floor` at `max_drawdown_pct`."""
    start = settings.penalty_start_pct / _HUNDRED
    full = settings.max_drawdown_pct / _HUNDRED
    ramp = (drawdown - start) / (full - start)
    ramp = min(_ONE, max(_ZERO, ramp))
    return (_ONE - settings.penalty_floor) * ramp


def decay_factor(elapsed: timedelta, half_life: timedelta) -> Decimal:
    """`0.5 ** (elapsed / half_life)` (1 for elapsed <= 0). Computed in binary floating point: it is
    a multiplier, not money, and Decimal's non-integral power costs ~70 microseconds."""
    if elapsed <= timedelta(0):
        return _ONE
    return Decimal(repr(0.5 ** (elapsed / half_life)))


def current_penalty(state: RiskState, now: datetime, settings: RiskSettings) -> Decimal:
    """The penalty at `now`: the last one decayed since `updated_at`, never below the target of the
    last known drawdown."""
    if state.penalty == 0 or state.updated_at is None:
        return target_penalty(state.drawdown, settings) if state.drawdown else _ZERO
    decayed = state.penalty * decay_factor(now - state.updated_at, settings.penalty_half_life)
    return max(target_penalty(state.drawdown, settings), decayed)


def multiplier(state: RiskState, now: datetime, settings: RiskSettings) -> Decimal:
    """`m = 1 - p` at `now`: the factor applied to the portfolio, per-market and per-trade caps."""
    return _ONE - current_penalty(state, now, settings)


# ---------------------------------------------------------------------------------- transitions


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)


def _drawdown(peak: Decimal, equity: Decimal) -> Decimal:
    if peak <= 0:
        return _ZERO
    return min(_ONE, max(_ZERO, (peak - equity) / peak))


def update_state(
    state: RiskState,
    equity: Decimal,
    now: datetime,
    settings: RiskSettings,
    transfers: Iterable[Decimal] = (),
    closed_trades: Iterable[Decimal] = (),
) -> RiskState:
    """The state after seeing `equity` at `now`.

    `transfers`: signed USD amounts moved in (+, deposits) or out (-, withdrawals) since the last
    call; `closed_trades`: realized PnL (USD, fees included) of each trade closed since the last call,
    in order. Releases a lock whose time has come (a max-drawdown release re-bases the peak to
    `equity` and restarts the penalty at its maximum), then applies drawdown, penalty, the daily loss
    limit (the day's transfer-adjusted base minus equity, against `max_daily_loss_pct` of that base;
    locked until 00:00 UTC) and the losing-streak cooldown. Drawdown and the day's loss are measured
    on the transfer-adjusted basis of the module docstring: transfers alone never change them.
    """
    net = sum(transfers, _ZERO)
    # Transfer-adjusted basis: the transfers since the last call are taken as made just before this
    # reading, so `pre` is the equity the trading alone produced. Drawdown and the day's loss are
    # judged on `pre`; then the peak and the day's base are scaled by `equity / pre` (the unit value
    # is unchanged by a transfer), so a deposit or a withdrawal alone never moves either fraction.
    pre = equity - net
    today = now.astimezone(UTC).date()
    max_penalty = _ONE - settings.penalty_floor

    peak = state.peak_equity
    prev_penalty = state.penalty
    prev_time = state.updated_at or now
    peak = pre if peak is None else max(peak, pre)

    day, day_start, day_transfers = state.day, state.day_start_equity, state.day_transfers
    if day != today or day_start is None:
        day, day_start, day_transfers = today, pre, _ZERO
    day_transfers += net

    streak, cooldown_until = state.losing_streak, state.cooldown_until
    cooldown_started, cooldown_streak = state.cooldown_started, state.cooldown_streak
    for pnl in closed_trades:
        if pnl < 0:
            streak += 1
            if settings.cooldown_after_losses and streak >= settings.cooldown_after_losses:
                cooldown_until, cooldown_started, cooldown_streak = now + settings.cooldown, now, streak
                streak = 0
        else:
            streak = 0
    cooldown_until = active_cooldown(state.model_copy(update={
        "cooldown_until": cooldown_until, "cooldown_started": cooldown_started, "cooldown_streak": cooldown_streak}),
        now, settings)
    if cooldown_until is None:
        cooldown_started, cooldown_streak = None, 0

    locked_until, lock_reason = state.locked_until, state.lock_reason
    if locked_until is not None and now >= locked_until:
        if lock_reason == "max_drawdown":
            peak = pre
            prev_penalty, prev_time = max_penalty, now
        locked_until, lock_reason = None, None

    drawdown = _drawdown(peak, pre)
    decayed = (
        prev_penalty * decay_factor(now - prev_time, settings.penalty_half_life) if prev_penalty else _ZERO
    )
    penalty = max(target_penalty(drawdown, settings), decayed)

    if drawdown >= settings.max_drawdown_pct / _HUNDRED and lock_reason != "max_drawdown":
        until = now + settings.lockout
        locked_until = until if locked_until is None else max(locked_until, until)
        lock_reason = "max_drawdown"
    day_loss = day_start - pre  # the day's base is its starting equity, scaled by today's transfers
    if (
        locked_until is None
        and day_start > 0
        and day_loss >= settings.max_daily_loss_pct / _HUNDRED * day_start
    ):
        locked_until, lock_reason = _next_midnight(now), "daily_loss"

    if net != 0:
        if pre > 0:
            peak, day_start = peak * equity / pre, day_start * equity / pre
        else:  # nothing was left before the transfer: the basis restarts from what is there now
            peak, day_start = equity, equity

    cutoff = now - RATE_WINDOW
    recent = tuple(t for t in state.recent_orders if t > cutoff)
    return state.model_copy(
        update={
            "peak_equity": peak,
            "equity": equity,
            "drawdown": drawdown,
            "penalty": penalty,
            "updated_at": now,
            "locked_until": locked_until,
            "lock_reason": lock_reason,
            "day": day,
            "day_start_equity": day_start,
            "day_transfers": day_transfers,
            "losing_streak": streak,
            "cooldown_until": cooldown_until,
            "cooldown_started": cooldown_started,
            "cooldown_streak": cooldown_streak,
            "recent_orders": recent,
            "net_transfers": state.net_transfers + net,
        }
    )


def note_order_sent(state: RiskState, now: datetime) -> RiskState:
    """Record an order that left at `now` (for `max_orders_per_minute`); forgets sends older than a minute."""
    cutoff = now - RATE_WINDOW
    recent = (*tuple(t for t in state.recent_orders if t > cutoff), now)
    return state.model_copy(update={"recent_orders": recent})


def orders_in_last_minute(state: RiskState, now: datetime) -> int:
    cutoff = now - RATE_WINDOW
    return sum(1 for t in state.recent_orders if cutoff < t <= now)


def halt(state: RiskState, now: datetime, by: str) -> RiskState:
    """Engage the kill switch (agent or human). Idempotent: a second halt keeps the first time."""
    if state.halted:
        return state
    return state.model_copy(update={"halted": True, "halted_by": by, "halted_at": now})


def resume(state: RiskState, now: datetime) -> RiskState:
    """Release the kill switch. Human only (the caller enforces it). A lockout stays in force."""
    del now  # the release time is not recorded; kept for a uniform signature
    return state.model_copy(update={"halted": False, "halted_by": None, "halted_at": None})


def unlock(
    state: RiskState, equity: Decimal, now: datetime, settings: RiskSettings | None = None
) -> RiskState:
    """A human's early release of a lockout. Human only (the caller enforces it). No lock: unchanged.

    Like a timed release of a max-drawdown lock, the peak is re-based to `equity` and the penalty
    restarts at its maximum, `1 - penalty_floor` (of `settings`, default `RiskSettings()`), decaying
    from `now`. Releasing a daily-loss lock instead re-bases the day's start to `equity`, so the same
    loss does not lock again today.
    """
    if state.lock_reason is None and state.locked_until is None:
        return state
    floor = (settings or RiskSettings()).penalty_floor
    update: dict[str, object] = {"locked_until": None, "lock_reason": None}
    if state.lock_reason == "daily_loss":
        update.update(day=now.astimezone(UTC).date(), day_start_equity=equity, day_transfers=_ZERO)
    else:
        update.update(peak_equity=equity, equity=equity, drawdown=_ZERO, penalty=_ONE - floor, updated_at=now)
    return state.model_copy(update=update)


def trading_state(state: RiskState, now: datetime, settings: RiskSettings) -> TradingState:
    """HALTED over LOCKED over PENALIZED over ACTIVE."""
    if state.halted:
        return TradingState.HALTED
    if state.locked_until is not None and state.locked_until > now:  # expired: released at `now`
        return TradingState.LOCKED
    if current_penalty(state, now, settings) > 0:
        return TradingState.PENALIZED
    return TradingState.ACTIVE


def active_cooldown(state: RiskState, now: datetime, settings: RiskSettings) -> datetime | None:
    """When the losing-streak cooldown ends under the settings in force now (None: not cooling
    down). A lower `cooldown` shortens it (from when it started); a `cooldown_after_losses` of 0, or
    above the streak that caused it, ends it."""
    until = state.cooldown_until
    if until is None or until <= now:
        return None
    threshold = settings.cooldown_after_losses
    if not threshold or (state.cooldown_streak and state.cooldown_streak < threshold):
        return None
    if state.cooldown_started is not None:
        until = min(until, state.cooldown_started + settings.cooldown)
    return until if until > now else None


def cooldown_streak(state: RiskState, settings: RiskSettings) -> int:
    """The losing streak behind the current cooldown (the setting, for a state saved before it was kept)."""
    return state.cooldown_streak or settings.cooldown_after_losses


def status(state: RiskState, now: datetime, settings: RiskSettings) -> RiskStatus:
    """The display summary of `state` at `now`."""
    p = current_penalty(state, now, settings)
    ts = trading_state(state, now, settings)
    reason: str | None = None
    if ts is TradingState.HALTED:
        reason = f"kill switch engaged by {state.halted_by or 'unknown'}"
    elif ts is TradingState.LOCKED:
        reason = (
            f"drawdown reached max_drawdown_pct {settings.max_drawdown_pct}%"
            if state.lock_reason == "max_drawdown"
            else f"daily loss reached max_daily_loss_pct {settings.max_daily_loss_pct}%"
        )
    elif active_cooldown(state, now, settings) is not None:
        reason = f"cooldown after {cooldown_streak(state, settings)} consecutive losing trades"
    return RiskStatus(
        state=ts,
        multiplier=_ONE - p,
        penalty=p,
        drawdown=state.drawdown,
        peak_equity=state.peak_equity,
        locked_until=state.locked_until,
        cooldown_until=active_cooldown(state, now, settings),
        reason=reason,
    )
