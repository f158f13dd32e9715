"""Session plumbing: store writes from any process reach the bus; approval modes set at runtime."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.errors import UsageError
from revagent.events import StoreChanged
from revagent.models import Note, utc_now
from revagent.runtime.session import Session
from revagent.store.connection import connect
from revagent.store.repos import SessionStore


async def test_a_write_from_another_process_reaches_the_bus(revagent_home: Path, redis_url: str) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start()
    sub = session.bus.subscribe(StoreChanged)
    try:
        other = await connect(redis_url)  # as the shell would: its own connection, no session
        now = utc_now()
        note = Note(text="from the shell", created_at=now, updated_at=now)
        await asyncio.sleep(0.2)  # the subscription is live
        await SessionStore(other, session.sid).notes.put(note)
        event = await asyncio.wait_for(sub.get(), 5)
        assert isinstance(event, StoreChanged)
        assert (event.what, event.id, event.op) == ("notes", note.id, "put")
        await other.aclose()
    finally:
        sub.close()
        await session.stop()


async def test_mode_set_and_show(revagent_home: Path) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start()

    async def emit(kind: str, data: object) -> None:
        return None

    try:
        shown = await session.handlers["mode.show"]({}, emit)
        assert shown == {"chat": "autonomous", "alert": "autonomous"}  # paper defaults
        changed = await session.handlers["mode.set"]({"scope": "chat", "mode": "copilot"}, emit)
        assert changed == {"chat": "copilot", "alert": "autonomous"}
        assert await session.handlers["mode.show"]({}, emit) == changed
        with pytest.raises(UsageError, match="MODE"):
            await session.handlers["mode.set"]({"scope": "chat", "mode": "yolo"}, emit)
    finally:
        await session.stop()
