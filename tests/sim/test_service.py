"""The paper venue as a shared background service: start on demand, reuse, status, stop, restart keeps state."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from revagent.exchange.sim import service
from revagent.exchange.sim.controls import SimControls


async def test_start_reuse_stop_and_restart_keeps_the_account(tmp_path: Path) -> None:
    state_dir = tmp_path / "paper"
    try:
        url = await asyncio.to_thread(service.ensure_running, state_dir, controls=True, balance="2500")
        assert url.startswith("http://127.0.0.1:")
        assert await asyncio.to_thread(service.ensure_running, state_dir) == url  # reused, not respawned
        st = await asyncio.to_thread(service.status, state_dir)
        assert st.running and st.url == url and st.started_by_revagent and st.pid != os.getpid()
        user = "0x" + "d4" * 20
        async with SimControls(url) as ctl:
            await ctl.deposit(user, "100")
            await ctl.flush()
        assert await asyncio.to_thread(service.stop, state_dir)
        assert not (await asyncio.to_thread(service.status, state_dir)).running
        assert not await asyncio.to_thread(service.stop, state_dir)  # nothing of ours runs any more
        saved = json.loads((state_dir / service.STATE_NAME).read_text())
        assert [a["balance"] for a in saved["accounts"]] == ["2600"]
        url2 = await asyncio.to_thread(service.ensure_running, state_dir, controls=True)
        async with SimControls(url2) as ctl:
            assert (await ctl.state()).accounts == 1
    finally:
        await asyncio.to_thread(service.stop, state_dir)


def test_stop_refuses_a_process_it_did_not_start(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / service.PID_NAME).write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:1"}))
    assert service.stop(tmp_path) is False  # our own pid: not a simulator for this directory
    assert not service.status(tmp_path).running


def test_a_venue_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(service.VenueUnavailable, match="exited with code"):
        service.ensure_running(tmp_path, prices="replay:/does/not/exist.csv", timeout=20)
