"""The snapshot remembers the sorted active watchers and their rendered lines between builds, the
prompt its notes layer: the text is the same as a build from scratch whatever changed (a watcher
replaced, fired, added; a note edited or removed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.engine.prompt import notes_layer
from revagent.engine.snapshot import SnapshotInputs, build_snapshot
from revagent.models import LegDirection, LegStatus, Note, TimeAlert, WatcherLeg, WatcherPair
from revagent.risk import RiskSettings, RiskState

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def pair(i: int, level: int = 0, status: LegStatus = LegStatus.ARMED) -> WatcherPair:
    return WatcherPair(id=f"w_{i:03d}", market=f"M{i % 3}",
                       upper=WatcherLeg(level=Decimal(100 + i + level), direction=LegDirection.ABOVE,
                                        thesis=f"thesis {i}", status=status),
                       created_at=NOW - timedelta(minutes=i))


def text(watchers: list[WatcherPair], alerts: list[TimeAlert] | None = None) -> str:
    return build_snapshot(SnapshotInputs(now=NOW, settings=RiskSettings(), risk_state=RiskState(),
                                         watchers=watchers, time_alerts=alerts or [])).text()


def copied(watchers: list[WatcherPair]) -> list[WatcherPair]:
    """The same watchers as new objects (what a fresh parse gives): nothing remembered applies."""
    return [w.model_copy(deep=True) for w in watchers]


def test_a_replaced_watcher_renders_its_new_level_and_a_fired_one_leaves() -> None:
    watchers = [pair(i) for i in range(6)]
    first = text(watchers)
    assert text(watchers) == first == text(copied(watchers))
    moved = [*watchers[:2], pair(2, level=50), *watchers[3:]]
    assert "above 152" in text(moved) and "above 102" not in text(moved)
    fired = [*watchers[:4], pair(4, status=LegStatus.FIRED), watchers[5]]
    assert "[w_004]" not in text(fired) and "[w_004]" in first
    assert text(watchers) == first  # back to the original objects


def test_time_alert_lines_follow_a_changed_prompt() -> None:
    alert = TimeAlert(id="t_1", fire_at=NOW + timedelta(hours=1), prompt="check funding", created_at=NOW)
    assert "check funding" in text([], [alert])
    changed = alert.model_copy(update={"prompt": "check open interest"})
    assert "check open interest" in text([], [changed]) and "check funding" not in text([], [changed])


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["add", "drop", "move", "fire", "same"])),
                      min_size=1, max_size=8))
def test_remembered_builds_equal_builds_from_scratch(steps: list[tuple[int, str]]) -> None:
    current = {i: pair(i) for i in range(0, 12, 2)}
    for i, op in steps:
        if op == "add" or op == "move":
            current[i] = pair(i, level=len(steps) + i if op == "move" else 0)
        elif op == "drop":
            current.pop(i, None)
        elif op == "fire":
            current[i] = pair(i, status=LegStatus.FIRED)
        watchers = list(current.values())
        assert text(watchers) == text(copied(watchers))


def test_the_notes_layer_follows_a_changed_or_removed_note() -> None:
    notes = [Note(id=f"n_{i}", text=f"note {i}", created_at=NOW + timedelta(minutes=i), updated_at=NOW)
             for i in range(4)]
    first = notes_layer(notes)
    assert notes_layer(notes) == first == notes_layer([n.model_copy() for n in notes[::-1]])
    edited = [*notes[:1], notes[1].model_copy(update={"text": "edited", "tags": ["risk"]}), *notes[2:]]
    assert "- [n_1] edited #risk" in notes_layer(edited) and "note 1" not in notes_layer(edited)
    assert "n_3" not in notes_layer(notes[:3])
    assert notes_layer([]).endswith("(none yet; add_note keeps one)")
    assert notes_layer(notes) == first


def test_a_remembered_watcher_line_follows_the_mid_and_the_atr() -> None:
    """The same parsed watchers under another mid or ATR render their new distance (a watcher's line is
    remembered per object, mid and ATR), and the first figures again when the price comes back."""
    from revagent.engine.snapshot import MarketConditions

    watchers = [pair(i) for i in range(6)]

    def at(mid: str, atr: str | None) -> str:
        return build_snapshot(SnapshotInputs(
            now=NOW, settings=RiskSettings(), risk_state=RiskState(), watchers=watchers,
            markets={m: MarketConditions(market=m, mark_px=Decimal(mid), mid_px=Decimal(mid))
                     for m in ("M0", "M1", "M2")},
            atr={m: Decimal(atr) for m in ("M0", "M1", "M2")} if atr else {})).text()

    first = at("100", "2")
    assert "dist +0.00% +0.0ATR" in first  # w_000: level 100 at mid 100
    moved = at("110", "2")
    assert moved != first and "dist -9.09% -5.0ATR" in moved and "dist +0.00%" not in moved
    assert "dist -9.09%" in at("110", None) and "ATR" not in at("110", None).split("WATCHERS")[-1].split("\n#")[0]
    assert at("100", "2") == first
