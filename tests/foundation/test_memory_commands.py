"""The command channel's door of the memory actions (issue 22.1 for 16.4): `watch.add`,
`watch.modify`, `alert.add` and `note.add` read their JSON with the action models of
`revagent.actions` and write through the session's store; a mistake is a UsageError, nothing written."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.errors import NotFoundError, UsageError
from revagent.runtime.session import Session

pytestmark = pytest.mark.timeout(60)


async def emit(kind: str, data: object) -> None:
    return None


async def test_memory_commands_write_through_the_store(revagent_home: Path) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start()
    try:
        run = session.handlers
        made = await run["watch.add"]({"market": "ETH", "upper": {"level": "5000", "thesis": "range high",
                                                                  "entry": "5010", "stop": "4900", "conviction": 60},
                                       "expires_in": 3600}, emit)
        pair = await session.store.watchers.get(made["id"])
        assert pair is not None and pair.upper is not None and pair.upper.setup.conviction == 60
        assert pair.upper.setup.side is not None and pair.upper.setup.side.value == "long"
        moved = await run["watch.modify"]({"id": pair.id, "lower": {"level": "2000", "thesis": "range low"}}, emit)
        after = await session.store.watchers.get(pair.id)
        assert after is not None and after.lower is not None and after.lower.level == Decimal(2000)
        assert moved["id"] == pair.id and after.upper == pair.upper
        alert = await run["alert.add"]({"prompt": "check funding", "after": 1800}, emit)
        assert (await session.store.time_alerts.get(alert["id"])) is not None
        note = await run["note.add"]({"text": "ETH wicks the Asia low", "tags": ["ETH"]}, emit)
        stored = await session.store.notes.get(note["id"])
        assert stored is not None and stored.tags == ["eth"]
        before = (len(await session.store.watchers.all()), len(await session.store.notes.all()))
        with pytest.raises(UsageError, match="lower level"):
            await run["watch.add"]({"market": "ETH", "upper": {"level": "100"}, "lower": {"level": "200"}}, emit)
        with pytest.raises(UsageError, match="text"):
            await run["note.add"]({"text": "  "}, emit)
        with pytest.raises(NotFoundError):
            await run["watch.modify"]({"id": "w_nope", "lower": {"level": "10"}}, emit)
        assert (len(await session.store.watchers.all()), len(await session.store.notes.all())) == before
    finally:
        await session.stop()
