"""A session's engine follows store writes made by another process (the shell): a note added from a
separate connection is in the very next turn's runtime snapshot, with no per-turn re-read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.exchange.sim import SimServer
from revagent.models import Note
from revagent.runtime.session import Session, open_redis
from revagent.store.repos import SessionStore
from tests.paper_venue import paper_venue


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    async with paper_venue(monkeypatch, seed=9, history_minutes=0) as server:
        yield server


async def test_a_note_added_from_the_shell_is_in_the_next_snapshot(sim: SimServer) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    shell = await open_redis(cfg)
    try:
        engine = await session.start_engine()
        snapshot = engine.runner.services.snapshot
        assert snapshot is not None
        before = await snapshot.build()
        assert "fomc at 18:00" not in before.text()

        other = SessionStore(shell, session.sid)  # another process's view of the same wallet
        at = datetime.now(UTC)
        await other.notes.put(Note(text="fomc at 18:00, no new risk before", created_at=at, updated_at=at))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "fomc at 18:00" in (await snapshot.build()).text():
                break
        assert "fomc at 18:00, no new risk before" in (await snapshot.build()).text()

        await other.notes.delete((await other.notes.all())[0].id)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "fomc at 18:00" not in (await snapshot.build()).text():
                break
        assert "fomc at 18:00" not in (await snapshot.build()).text()
    finally:
        await shell.aclose()
        await session.stop("test finished")
