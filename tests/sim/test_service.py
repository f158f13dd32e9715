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


def test_a_running_venue_with_another_price_source_is_not_reused(tmp_path: Path) -> None:
    """Issue 17: `[paper] prices` / `upstream` changed while the venue runs: refused, naming both and the fix,
    instead of silently trading on the old source; the same source (however spelled) is reused."""
    state_dir = tmp_path / "paper"
    replay = tmp_path / "ticks.csv"
    replay.write_text("time,coin,px\n1000,BTC,50000\n2000,BTC,50100\n")
    try:
        url = service.ensure_running(state_dir, prices="synthetic")
        with pytest.raises(service.VenueUnavailable) as refused:
            service.ensure_running(state_dir, prices=f"replay:{replay}")
        text = str(refused.value)
        assert "synthetic" in text and f"replay:{replay}" in text and "revagent server stop --only venue" in text
        assert service.status(state_dir).url == url  # left running, untouched
        assert service.ensure_running(state_dir, prices="synthetic") == url
        assert service.stop(state_dir)
        url = service.ensure_running(state_dir, prices="live", upstream="http://127.0.0.1:9")  # unreachable
        assert service.ensure_running(state_dir, prices="live", upstream="http://127.0.0.1:9/") == url
        with pytest.raises(service.VenueUnavailable, match=r"upstream http://127\.0\.0\.1:9.*http://127\.0\.0\.1:8"):
            service.ensure_running(state_dir, prices="live", upstream="http://127.0.0.1:8")
        with pytest.raises(service.VenueUnavailable, match="synthetic"):
            service.ensure_running(state_dir, prices="synthetic")
    finally:
        service.stop(state_dir)
