"""Seeds of a replay: levels relative to the start mid, ids from the file, clear errors on bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.bus import Bus
from revagent.events import MidsUpdated, StoreChanged
from revagent.replay.seeds import SeedError, Seeds

NOW = datetime(2026, 1, 5, tzinfo=UTC)
MIDS = {"BTC": Decimal("95000"), "ETH": Decimal("3300")}


def test_levels_are_prices_or_percentages_of_the_start_mid_and_ids_come_from_the_file() -> None:
    notes, watchers, alerts = Seeds({
        "notes": [{"text": "range"}],
        "watchers": [{"market": "BTC", "upper": "+1%", "lower": "94000"},
                     {"id": "eth", "market": "ETH", "lower": "-2%"}],
        "time_alerts": [{"after": "2h", "every": "1h", "prompt": "review"}]}).resolve(MIDS, NOW)
    assert [n.id for n in notes] == ["n1"]
    assert [(w.id, w.upper.level if w.upper else None, w.lower.level if w.lower else None) for w in watchers] == [
        ("w1", Decimal("95950"), Decimal("94000")), ("eth", None, Decimal("3234.0"))]
    assert alerts[0].fire_at == NOW + timedelta(hours=2) and alerts[0].every == timedelta(hours=1)


@pytest.mark.parametrize(("doc", "message"), [
    ({"watchers": [{"market": "NOPE", "upper": "1"}]}, "unknown market 'NOPE'"),
    ({"watchers": [{"market": "BTC", "upper": "lots"}]}, "a level is a price or +X% / -X%"),
    ({"watchers": [{"market": "BTC", "upper": "90000", "lower": "95000"}]}, "must be under the upper level"),
    ({"watchers": {"market": "BTC"}}, "watchers must be a list of objects"),
    ({"alerts": []}, "unknown section(s) ['alerts']"),
    ({"time_alerts": [{"after": "soon", "prompt": "x"}]}, "duration"),
])
def test_bad_seeds_are_a_clear_error(doc: dict[str, object], message: str) -> None:
    with pytest.raises(SeedError, match=None) as err:
        Seeds(doc).resolve(MIDS, NOW)
    assert message in err.value.message


def test_a_seed_file_that_is_not_json_or_toml_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "seeds.json"
    bad.write_text("{not json")
    with pytest.raises(SeedError, match="cannot read the seed file"):
        Seeds.load(bad)


async def test_the_bus_backlog_counts_events_not_yet_taken_by_type() -> None:
    bus = Bus()
    prices = bus.subscribe(MidsUpdated)
    everything = bus.subscribe()
    bus.publish(MidsUpdated(mids={"BTC": Decimal(1)}, at=NOW))
    bus.publish(StoreChanged(what="notes"))
    assert bus.backlog() == 3 and bus.backlog(MidsUpdated) == 2 and bus.backlog(StoreChanged) == 1
    await prices.get()
    await everything.get()
    assert bus.backlog(MidsUpdated) == 0 and bus.backlog() == 1
