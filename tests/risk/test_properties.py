"""Property tests: caps hold for any sequence of approved trades; locks refuse new risk; protective
actions always pass; the penalty is monotone and halves every half-life; everything is on the grid."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.risk import (
    AccountView,
    ClosePosition,
    EnsureStop,
    ModifyStop,
    OpenTrade,
    PositionView,
    RestingEntry,
    RiskSettings,
    RiskState,
    SetLeverage,
    evaluate,
    halt,
    is_on_lot,
    is_on_tick,
    note_order_sent,
    position_after_fill,
    risk_usage,
    target_penalty,
    update_state,
)
from tests.risk.builders import DEFAULT_MARKETS, NOW, market

D = Decimal
S = RiskSettings()
TIGHT = RiskSettings(
    max_portfolio_risk_usd=D(60), max_market_risk_pct=D(50)
)  # caps 60 / 30 / 25: often reached
MARKETS = ("BTC", "ETH", "SOL", "DOGE")
EPSILON = D("1e-12")  # weighted averages of merged fills are exact to 28 digits, not beyond

pcts = st.decimals(min_value=D("0.002"), max_value=D("0.1"), places=4)
risks = st.decimals(min_value=D("0.5"), max_value=D("30"), places=2)
penalties = st.decimals(min_value=D(0), max_value=D("0.75"), places=3)


@st.composite
def open_intents(draw: st.DrawFn) -> OpenTrade:
    name = draw(st.sampled_from(MARKETS))
    mark = DEFAULT_MARKETS[name].mark_px
    direction = draw(st.sampled_from((1, -1)))
    limit = draw(st.booleans())
    entry = (
        mark * (1 - direction * draw(st.decimals(min_value=0, max_value=D("0.03"), places=4)))
        if limit
        else None
    )
    base = entry if entry is not None else mark
    stop = base * (1 - direction * draw(pcts))
    return OpenTrade(
        market=name,
        side="long" if direction > 0 else "short",
        origin="human",
        entry_px=entry,
        stop_px=stop,
        risk_usd=draw(risks),
    )


def _view(positions: dict[str, PositionView], entries: list[RestingEntry]) -> AccountView:
    return AccountView(
        equity=D(1_000_000),
        available_margin=D(1_000_000),
        positions=tuple(positions.values()),
        entries=tuple(entries),
        markets=DEFAULT_MARKETS,
    )


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(open_intents(), st.booleans()), min_size=1, max_size=25),
    penalty=penalties,
)
def test_approved_trades_filled_at_their_prices_never_exceed_the_caps(
    steps: list[tuple[OpenTrade, bool]], penalty: Decimal
) -> None:
    state = RiskState(penalty=penalty, updated_at=NOW)
    positions: dict[str, PositionView] = {}
    entries: list[RestingEntry] = []
    for intent, rest in steps:
        view = _view(positions, entries)
        v = evaluate(intent, view, TIGHT, state, NOW)
        if not v.approved:
            continue
        assert v.size is not None and v.price is not None and v.stop_px is not None and v.risk_usd is not None
        szd = DEFAULT_MARKETS[intent.market].sz_decimals
        assert v.size > 0 and is_on_lot(v.size, szd)
        assert is_on_tick(v.price, szd) and is_on_tick(v.stop_px, szd)
        assert v.risk_usd <= intent.risk_usd
        if rest and intent.entry_px is not None:
            entries.append(
                RestingEntry(
                    market=intent.market,
                    side=intent.side,
                    size=v.size,
                    limit_px=v.price,
                    stop_px=v.stop_px,
                    risk_usd=v.risk_usd,
                )
            )
        else:
            # an add fills and the whole position moves to the add's stop (the gateway consolidates)
            positions[intent.market] = position_after_fill(
                positions.get(intent.market), market=intent.market, side=intent.side, size=v.size,
                price=v.price, stop_px=v.stop_px, mark_px=DEFAULT_MARKETS[intent.market].mark_px,
                leverage=v.leverage or D(1))
        usage = risk_usage(_view(positions, entries), TIGHT, state, NOW)
        assert usage.total_open_risk_usd <= usage.portfolio_cap_usd + EPSILON
        for row in usage.markets:
            assert row.open_risk_usd <= usage.market_cap_usd + EPSILON


locked_states = st.sampled_from(
    [
        RiskState(locked_until=NOW + timedelta(hours=2), lock_reason="max_drawdown"),
        RiskState(locked_until=NOW + timedelta(minutes=1), lock_reason="daily_loss"),
        halt(RiskState(), NOW, "agent"),
        halt(RiskState(locked_until=NOW + timedelta(hours=2), lock_reason="max_drawdown"), NOW, "human"),
    ]
)


@st.composite
def risk_increasing(draw: st.DrawFn) -> tuple[Any, AccountView]:
    kind = draw(st.sampled_from(("open", "loosen", "leverage")))
    held = PositionView(
        market="BTC", size=D("0.01"), entry_px=D(60000), mark_px=D(60000), stop_px=D(59000), leverage=D(2)
    )
    view = _view({"BTC": held}, [])
    if kind == "open":
        return draw(open_intents()), _view({}, [])
    if kind == "loosen":
        further = D(59000) - draw(st.integers(min_value=1, max_value=5000))
        return ModifyStop(market="BTC", stop_px=D(further)), view
    return SetLeverage(market="BTC", leverage=D(draw(st.integers(min_value=3, max_value=5)))), view


@settings(max_examples=150, deadline=None)
@given(case=risk_increasing(), state=locked_states)
def test_nothing_risk_increasing_passes_when_locked_or_halted(
    case: tuple[Any, AccountView], state: RiskState
) -> None:
    intent, view = case
    v = evaluate(intent, view, S, state, NOW)
    assert not v.approved
    assert {"locked", "halted"} & set(v.codes)


@st.composite
def any_state(draw: st.DrawFn) -> RiskState:
    state = RiskState(
        penalty=draw(penalties),
        updated_at=NOW,
        locked_until=NOW + timedelta(hours=1) if draw(st.booleans()) else None,
        lock_reason="max_drawdown",
        cooldown_until=NOW + timedelta(minutes=5) if draw(st.booleans()) else None,
    )
    for _ in range(draw(st.integers(min_value=0, max_value=40))):
        state = note_order_sent(state, NOW)
    return halt(state, NOW, "agent") if draw(st.booleans()) else state


@st.composite
def held_positions(draw: st.DrawFn) -> tuple[AccountView, str]:
    name = draw(st.sampled_from(MARKETS))
    rules = DEFAULT_MARKETS[name]
    move = draw(st.decimals(min_value=D("-0.3"), max_value=D("0.3"), places=3))
    mark = rules.mark_px * (1 + move)
    lots = draw(st.integers(min_value=1, max_value=100_000))
    size = D(lots).scaleb(-rules.sz_decimals) * draw(st.sampled_from((1, -1)))
    stop = rules.mark_px * (1 - D(1).copy_sign(size) * draw(pcts)) if draw(st.booleans()) else None
    stale = draw(st.booleans())
    markets = {
        **DEFAULT_MARKETS,
        name: market(
            name,
            sz_decimals=rules.sz_decimals,
            max_leverage=rules.max_leverage,
            mark=str(mark),
            price_time=NOW - timedelta(hours=1 if stale else 0),
        ),
    }
    held = PositionView(
        market=name, size=size, entry_px=rules.mark_px, mark_px=mark, stop_px=stop, leverage=D(3)
    )
    phase = draw(st.sampled_from(("consistent", "reconciling", "failed")))
    view = AccountView(
        equity=D(1000), available_margin=D(0), positions=(held,), markets=markets, sync_phase=phase
    )
    return view, name


@settings(max_examples=200, deadline=None)
@given(
    case=held_positions(),
    state=any_state(),
    fraction=st.decimals(min_value=D("0.001"), max_value=D(1), places=3),
    planned=st.booleans(),
)
def test_reduce_only_close_and_protective_stop_always_pass(
    case: tuple[AccountView, str], state: RiskState, fraction: Decimal, planned: bool
) -> None:
    view, name = case
    held = view.positions[0]
    szd = view.markets[name].sz_decimals
    v = evaluate(ClosePosition(market=name, fraction=fraction, origin="agent"), view, S, state, NOW)
    assert v.approved and v.reduce_only, v.explain()
    assert v.size is not None and v.price is not None
    assert 0 < v.size <= abs(held.size) and is_on_lot(v.size, szd) and is_on_tick(v.price, szd)
    assert v.size >= abs(held.size) * fraction  # a close never leaves more than asked
    stop_px = view.markets[name].mark_px * (1 - D(1).copy_sign(held.size) * D("0.05")) if planned else None
    v = evaluate(EnsureStop(market=name, stop_px=stop_px, origin="system"), view, S, state, NOW)
    if not v.approved:  # only an explicit stop looser than the live one is refused (modify_stop loosens)
        assert stop_px is not None and held.stop_px is not None and v.codes == ["stop_looser"], v.explain()
        assert (held.stop_px - stop_px) * held.direction > 0
        return
    assert v.reduce_only, v.explain()
    assert v.stop_px is not None and is_on_tick(v.stop_px, szd)
    assert v.size == abs(held.size)


drawdowns = st.decimals(min_value=0, max_value=1, places=6)


@settings(max_examples=200, deadline=None)
@given(a=drawdowns, b=drawdowns)
def test_target_penalty_is_monotone_in_drawdown(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert target_penalty(low, S) <= target_penalty(high, S)
    assert 0 <= target_penalty(low, S) <= 1 - S.penalty_floor


@settings(max_examples=200, deadline=None)
@given(
    e1=st.decimals(min_value=1, max_value=10000, places=2),
    e2=st.decimals(min_value=1, max_value=10000, places=2),
    prior=penalties,
)
def test_update_penalty_is_monotone_in_equity(e1: Decimal, e2: Decimal, prior: Decimal) -> None:
    base = RiskState(
        peak_equity=D(10000), equity=D(10000), penalty=prior, updated_at=NOW - timedelta(hours=3)
    )
    high, low = max(e1, e2), min(e1, e2)
    p_high = update_state(base, high, NOW, S).penalty
    p_low = update_state(base, low, NOW, S).penalty
    assert p_low >= p_high


@settings(max_examples=200, deadline=None)
@given(
    p0=st.decimals(min_value=D("0.001"), max_value=D("0.75"), places=4),
    k=st.integers(min_value=1, max_value=6),
    offset_s=st.integers(min_value=0, max_value=86_400),
)
def test_penalty_halves_every_half_life_at_zero_drawdown(p0: Decimal, k: int, offset_s: int) -> None:
    hl = S.penalty_half_life
    start = RiskState(peak_equity=D(5000), equity=D(5000), penalty=p0, updated_at=NOW)
    later = update_state(start, D(5000), NOW + k * hl, S)
    assert later.drawdown == 0
    assert later.penalty == p0 / 2**k
    # from any point, one more half-life halves it again (binary floating point decay: 1e-15 relative)
    t = NOW + timedelta(seconds=offset_s)
    s1 = update_state(start, D(5000), t, S)
    s2 = update_state(s1, D(5000), t + hl, S)
    assert abs(s2.penalty - s1.penalty / 2) <= s1.penalty * D("1e-15")
