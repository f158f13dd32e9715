"""The price trigger index: crossings, the gap rule, refusals, generations, expiry, rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from revagent.alerts.levels import LOWER, UPPER, EntryKey
from revagent.alerts.trade_alerts import ManagedTrade, trade_levels
from revagent.alerts.triggers import (
    Fired,
    LegCorrection,
    LevelAlreadyPassed,
    PriceTriggerIndex,
    StaleGeneration,
    build_index,
)
from revagent.models import LegDirection, LegStatus, Side, WatcherLeg, WatcherPair
from revagent.store.alert_events import level_trigger_key

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ABOVE, BELOW = LegDirection.ABOVE, LegDirection.BELOW
UP = EntryKey("w_1", UPPER)
LO = EntryKey("w_1", LOWER)


def D(x: str | int) -> Decimal:
    return Decimal(x)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pair_index(price: str = "100", upper: str = "110", lower: str = "90", **kw: object) -> PriceTriggerIndex:
    """An index with BTC at `price` and the pair w_1 armed at `upper` / `lower`."""
    ix = PriceTriggerIndex()
    assert ix.on_price("BTC", D(price), T0) == []
    ix.arm(UP, "BTC", ABOVE, D(upper), exclusive=True, **kw)  # type: ignore[arg-type]
    ix.arm(LO, "BTC", BELOW, D(lower), exclusive=True, **kw)  # type: ignore[arg-type]
    return ix


def keys(fired: list[Fired]) -> list[EntryKey]:
    return [f.key for f in fired]


def test_crossing_up_fires_the_upper_leg_and_consumes_the_pair() -> None:
    ix = pair_index()
    assert ix.on_price("BTC", D("109.99"), at(1)) == []
    fired = ix.on_price("BTC", D("110.5"), at(2))
    assert keys(fired) == [UP]
    f = fired[0]
    assert f.price == D("110.5")
    assert f.previous_price == D("109.99")
    assert f.fired_at == at(2)
    assert f.trigger_key == "w_1#upper:g1"
    assert [d.key for d in f.disarmed] == [LO]
    assert len(ix) == 0
    assert ix.on_price("BTC", D("80"), at(3)) == []  # the lower leg was disarmed with the pair


def test_crossing_down_fires_the_lower_leg() -> None:
    ix = pair_index()
    assert ix.on_price("BTC", D("95"), at(1)) == []
    fired = ix.on_price("BTC", D("89"), at(2))
    assert keys(fired) == [LO]
    assert [d.key for d in fired[0].disarmed] == [UP]


@pytest.mark.parametrize(("price", "key"), [("110", UP), ("90", LO)])
def test_exact_touch_fires(price: str, key: EntryKey) -> None:
    ix = pair_index()
    assert keys(ix.on_price("BTC", D(price), at(1))) == [key]


def test_gap_through_both_legs_fires_only_the_leg_crossed_first() -> None:
    # up gap from between the legs to far above both: the upper fires, the lower never does
    ix = pair_index()
    fired = ix.on_price("BTC", D("500"), at(1))
    assert keys(fired) == [UP]
    assert ix.on_price("BTC", D("1"), at(2)) == []
    # down gap to far below both
    ix = pair_index()
    fired = ix.on_price("BTC", D("1"), at(1))
    assert keys(fired) == [LO]
    assert ix.on_price("BTC", D("500"), at(2)) == []


def test_gap_rule_between_exclusive_levels_on_the_same_side() -> None:
    """Two exclusive levels of one alert crossed by one tick: the first met from the previous price fires."""
    ix = PriceTriggerIndex()
    ix.on_price("ETH", D("100"), T0)
    a, b = EntryKey("g", "a"), EntryKey("g", "b")
    ix.arm(b, "ETH", ABOVE, D("110"), exclusive=True)
    ix.arm(a, "ETH", ABOVE, D("105"), exclusive=True)
    fired = ix.on_price("ETH", D("120"), at(1))
    assert keys(fired) == [a]
    assert [d.key for d in fired[0].disarmed] == [b]
    # down move: the highest level is met first
    ix = PriceTriggerIndex()
    ix.on_price("ETH", D("100"), T0)
    ix.arm(a, "ETH", BELOW, D("95"), exclusive=True)
    ix.arm(b, "ETH", BELOW, D("90"), exclusive=True)
    assert keys(ix.on_price("ETH", D("50"), at(1))) == [a]


def test_non_exclusive_levels_all_fire_in_crossing_order() -> None:
    ix = PriceTriggerIndex()
    ix.on_price("ETH", D("100"), T0)
    for i, lvl in enumerate(["104", "102", "103", "200"]):
        ix.arm(EntryKey(f"x{i}", "s"), "ETH", ABOVE, D(lvl))
    fired = ix.on_price("ETH", D("150"), at(1))
    assert [f.level.level for f in fired] == [D("102"), D("103"), D("104")]
    assert len(ix) == 1
    ix.on_price("ETH", D("120"), at(2))
    for i, lvl in enumerate(["110", "115", "90"]):
        ix.arm(EntryKey(f"y{i}", "s"), "ETH", BELOW, D(lvl))
    assert [f.level.level for f in ix.on_price("ETH", D("50"), at(3))] == [D("115"), D("110"), D("90")]


@pytest.mark.parametrize(("direction", "level"), [(ABOVE, "99"), (ABOVE, "100"), (BELOW, "101"), (BELOW, "100")])
def test_a_level_already_reached_is_refused_with_the_current_price(direction: LegDirection, level: str) -> None:
    ix = PriceTriggerIndex()
    ix.on_price("BTC", D("100"), T0)
    with pytest.raises(LevelAlreadyPassed, match=r"already 100") as err:
        ix.arm(UP, "BTC", direction, D(level))
    assert err.value.price == D("100")
    assert len(ix) == 0


def test_explicit_price_is_checked_and_unknown_price_accepts() -> None:
    ix = PriceTriggerIndex()
    ix.arm(UP, "BTC", ABOVE, D("110"))  # no price known for BTC yet: accepted, the first tick decides
    with pytest.raises(LevelAlreadyPassed, match="already 95"):
        ix.arm(LO, "BTC", BELOW, D("96"), price=D("95"))
    assert keys(ix.on_price("BTC", D("111"), T0)) == [UP]


def test_trade_levels_can_be_armed_past_and_fire_on_recheck() -> None:
    ix = PriceTriggerIndex()
    ix.on_price("BTC", D("100"), T0)
    key = EntryKey("tr_1", "early_warning")
    ix.arm(key, "BTC", BELOW, D("101"), check_passed=False)
    assert keys(ix.recheck("BTC", at(1))) == [key]
    assert ix.recheck("NOPE", at(1)) == []


def test_double_ticks_never_fire_one_generation_twice() -> None:
    ix = pair_index()
    assert len(ix.on_price("BTC", D("111"), at(1))) == 1
    for i in range(2, 6):  # same tick again, and oscillation across the level
        assert ix.on_price("BTC", D("111") if i % 2 else D("100"), at(i)) == []
    with pytest.raises(StaleGeneration, match="already fired at generation 1"):
        ix.arm(UP, "BTC", ABOVE, D("120"), exclusive=True)
    with pytest.raises(StaleGeneration):
        ix.rearm(UP, D("120"), generation=1, book="BTC", direction=ABOVE)


def test_rearm_with_a_new_generation_fires_again_with_a_new_trigger_key() -> None:
    ix = pair_index()
    first = ix.on_price("BTC", D("111"), at(1))
    assert first[0].trigger_key == "w_1#upper:g1"
    ix.rearm(UP, D("120"), generation=2, book="BTC", direction=ABOVE, exclusive=True)
    ix.rearm(LO, D("100"), generation=2, book="BTC", direction=BELOW, exclusive=True)
    second = ix.on_price("BTC", D("125"), at(2))
    assert [f.trigger_key for f in second] == ["w_1#upper:g2"]
    assert [d.trigger_key for d in second[0].disarmed] == ["w_1#lower:g2"]


def test_rearm_of_an_armed_entry_moves_it_and_needs_a_later_generation() -> None:
    ix = pair_index()
    with pytest.raises(StaleGeneration):
        ix.rearm(UP, D("120"), generation=1)
    with pytest.raises(StaleGeneration):
        ix.arm(UP, "BTC", ABOVE, D("120"))
    with pytest.raises(LevelAlreadyPassed):
        ix.rearm(UP, D("99"), generation=2)
    kept = ix.get(UP)
    assert kept is not None
    assert kept.level == D("110")
    ix.rearm(UP, D("120"), generation=2)
    assert ix.on_price("BTC", D("115"), at(1)) == []
    assert [f.trigger_key for f in ix.on_price("BTC", D("120"), at(2))] == ["w_1#upper:g2"]
    with pytest.raises(ValueError, match="give book and direction"):
        ix.rearm(EntryKey("nope", UPPER), D("1"), generation=2)


def test_disarm_and_disarm_alert() -> None:
    ix = pair_index()
    ix.arm(EntryKey("w_2", UPPER), "BTC", ABOVE, D("105"))
    assert ix.disarm(UP) is not None
    assert ix.disarm(UP) is None
    assert [v.key for v in ix.disarm_alert("w_1")] == [LO]
    assert keys(ix.on_price("BTC", D("200"), at(1))) == [EntryKey("w_2", UPPER)]
    ix.forget("w_2")
    ix.arm(EntryKey("w_2", UPPER), "BTC", ABOVE, D("205"))  # generation 1 again after forget


def test_books_are_independent() -> None:
    ix = PriceTriggerIndex()
    ix.on_price("BTC", D("100"), T0)
    ix.on_price("ETH", D("10"), T0)
    ix.arm(EntryKey("a", "s"), "BTC", ABOVE, D("110"))
    ix.arm(EntryKey("b", "s"), "ETH", ABOVE, D("11"))
    assert keys(ix.on_price("ETH", D("500"), at(1))) == [EntryKey("b", "s")]
    assert ix.last_price("BTC") == D("100")
    assert [v.key for v in ix.armed("BTC")] == [EntryKey("a", "s")]


def test_expiry_reports_the_pair_and_an_expired_leg_never_fires() -> None:
    ix = pair_index(expires_at=at(60))
    assert ix.next_expiry() == at(60)
    assert ix.expire_due(at(59)) == []
    # a tick after the expiry, before the scheduler asked: nothing fires, the pair is expired
    assert ix.on_price("BTC", D("500"), at(61)) == []
    expired = ix.expire_due(at(61))
    assert sorted(e.level.key for e in expired) == sorted([UP, LO])
    assert all(e.expired_at == at(60) for e in expired)
    assert ix.next_expiry() is None
    assert len(ix) == 0


def test_expire_due_by_timer() -> None:
    ix = pair_index(expires_at=at(60))
    ix.arm(EntryKey("w_2", UPPER), "BTC", ABOVE, D("150"), expires_at=at(30))
    assert [e.level.key for e in ix.expire_due(at(30))] == [EntryKey("w_2", UPPER)]
    assert ix.next_expiry() == at(60)
    assert len(ix.expire_due(at(90))) == 2


def test_expiry_heap_stays_bounded_under_churn() -> None:
    ix = PriceTriggerIndex()
    ix.on_price("BTC", D("100"), T0)
    for gen in range(1, 2000):
        ix.rearm(UP, D(200 + gen), generation=gen, book="BTC", direction=ABOVE, expires_at=at(gen))
    assert len(ix._expiry_heap) <= 2 * 1 + 64 + 1
    assert ix.next_expiry() == at(1999)


def test_invalid_levels_and_generations() -> None:
    ix = PriceTriggerIndex()
    with pytest.raises(ValueError, match="positive"):
        ix.arm(UP, "BTC", ABOVE, D("0"))
    with pytest.raises(ValueError, match="starts at 1"):
        ix.arm(UP, "BTC", ABOVE, D("1"), generation=0)


# --- rebuild after a restart -------------------------------------------------------------------


def _pair(
    pid: str,
    upper: str | None,
    lower: str | None,
    *,
    up_status: LegStatus = LegStatus.ARMED,
    lo_status: LegStatus = LegStatus.ARMED,
    up_gen: int = 1,
    lo_gen: int = 1,
    expires_at: datetime | None = None,
) -> WatcherPair:
    return WatcherPair(
        id=pid,
        market="BTC",
        upper=None
        if upper is None
        else WatcherLeg(level=D(upper), direction=ABOVE, status=up_status, generation=up_gen),
        lower=None
        if lower is None
        else WatcherLeg(level=D(lower), direction=BELOW, status=lo_status, generation=lo_gen),
        expires_at=expires_at,
        created_at=T0,
    )


def test_rebuild_arms_only_live_legs_and_fires_what_was_crossed_while_down() -> None:
    now = at(3600)
    pairs = [
        _pair("w_live", "110", "90"),
        _pair("w_crossed", "105", "95"),  # BTC moved to 106 while the process was down
        _pair("w_consumed", "120", "80", up_status=LegStatus.FIRED, lo_status=LegStatus.DISARMED),
        # crash between saving the fired leg and disarming its sibling: the sibling is stale
        _pair("w_half", "130", "70", up_status=LegStatus.FIRED),
        # re-armed after firing: the lower leg is a later generation and must be armed
        _pair("w_rearmed", "101", "60", up_status=LegStatus.FIRED, lo_gen=2),
        # the queue saw this key but the store never saved FIRED
        _pair("w_seen", "140", "50"),
        _pair("w_old", "150", "40", expires_at=at(60)),
    ]
    trade = ManagedTrade(
        "tr_1", "BTC", Side.LONG, entry=D("100"), stop=D("90"), size=D("1"), target=D("130"), liquidation_px=D("80")
    )
    rebuilt = build_index(
        pairs,
        trade_levels(trade),
        {"BTC": D("106")},
        marks={"BTC": D("105")},
        now=now,
        already_fired={"w_seen#upper:g1", level_trigger_key("tr_1", "profit_target", 1)},
    )
    ix = rebuilt.index
    assert [(f.key, f.trigger_key) for f in rebuilt.fired] == [(EntryKey("w_crossed", UPPER), "w_crossed#upper:g1")]
    assert [d.key for d in rebuilt.fired[0].disarmed] == [EntryKey("w_crossed", LOWER)]
    assert sorted(v.key for v in rebuilt.expired) == [EntryKey("w_old", LOWER), EntryKey("w_old", UPPER)]
    assert sorted(rebuilt.corrections, key=lambda c: (c.pair_id, c.slot)) == [
        LegCorrection("w_half", LOWER, 1, LegStatus.DISARMED),
        LegCorrection("w_seen", LOWER, 1, LegStatus.DISARMED),
        LegCorrection("w_seen", UPPER, 1, LegStatus.FIRED),
    ]
    armed = sorted(v.trigger_key for v in ix.armed())
    assert armed == sorted(
        [
            "w_live#upper:g1",
            "w_live#lower:g1",
            "w_rearmed#lower:g2",
            "tr_1#early_warning:g1",
            "tr_1#liquidation_warning:g1",
        ]
    )
    # consumed legs never fire again, whatever the price does
    assert [f.trigger_key for f in ix.on_price("BTC", D("1000"), at(3601))] == ["w_live#upper:g1"]
    assert [f.trigger_key for f in ix.on_price("BTC", D("1"), at(3602))] == [
        "tr_1#early_warning:g1",
        "w_rearmed#lower:g2",
    ]
    assert [f.trigger_key for f in ix.on_price("BTC:mark", D("1"), at(3603))] == ["tr_1#liquidation_warning:g1"]
    assert len(ix) == 0
    with pytest.raises(StaleGeneration):
        ix.arm(EntryKey("w_consumed", UPPER), "BTC", ABOVE, D("2000"))
    with pytest.raises(StaleGeneration):
        ix.arm(EntryKey("tr_1", "profit_target"), "BTC", ABOVE, D("2000"))


def test_rebuild_fires_an_adverse_trade_level_on_the_mark_book() -> None:
    trade = ManagedTrade("tr_2", "ETH", Side.SHORT, entry=D("100"), stop=D("110"), size=D("1"), liquidation_px=D("150"))
    rebuilt = build_index([], trade_levels(trade), {"ETH": D("101")}, marks={"ETH": D("140")}, now=T0)
    assert [(f.key.slot, f.level.book, f.price) for f in rebuilt.fired] == [
        ("liquidation_warning", "ETH:mark", D("140"))
    ]
    assert rebuilt.index.last_price("ETH:mark") == D("140")


def test_rearm_keeps_expiry_and_payload_unless_told_otherwise() -> None:
    ix = pair_index(expires_at=at(60))
    kept = ix.rearm(UP, D("120"), generation=2)
    assert kept.expires_at == at(60)
    cleared = ix.rearm(LO, D("80"), generation=2, expires_at=None, payload="thesis")
    assert cleared.expires_at is None
    assert cleared.payload == "thesis"
    # the upper leg's expiry expires the pair: its exclusive sibling goes with it
    assert [e.level.key for e in ix.expire_due(at(60))] == [UP, LO]


def test_on_mids_feeds_every_market_and_marks_books() -> None:
    ix = PriceTriggerIndex()
    ix.on_mids({"BTC": D("100"), "ETH": D("10"), "SOL": D("1")}, T0)
    ix.arm(EntryKey("a", "s"), "BTC", ABOVE, D("110"))
    ix.arm(EntryKey("b", "s"), "ETH:mark", BELOW, D("9"))
    with pytest.raises(LevelAlreadyPassed, match="already 1"):
        ix.arm(EntryKey("c", "s"), "SOL", ABOVE, D("1"))
    assert keys(ix.on_mids({"BTC": D("111"), "ETH": D("5")}, at(1))) == [EntryKey("a", "s")]
    assert keys(ix.on_mids({"ETH": D("8")}, at(2), source="mark")) == [EntryKey("b", "s")]
