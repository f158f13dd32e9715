"""The session's pool: a run takes the ready spare, a new spare starts behind it, nothing of one run
reaches the next (a worker runs one job), and closing the pool ends the spare's process."""

from __future__ import annotations

import asyncio
import time

import pytest

from revagent.worker import WorkerPool
from revagent.worker import sandbox as sandbox_mod

pytestmark = [pytest.mark.usefixtures("confinement"), pytest.mark.timeout(90)]


async def test_a_warm_spare_serves_the_next_run_and_ends_with_the_pool() -> None:
    pool = WorkerPool()
    try:
        assert await pool.prewarm()
        first = await pool.run("x = 41\nx + 1")
        assert first.ok and first.value == "42" and first.warm
        assert await pool.prewarm()  # the spare started behind the first run is ready
        spare = pool._spare
        assert spare is not None and spare.task.done() and spare.worker is not None
        worker = spare.worker
        second = await pool.run("x")
        assert not second.ok and "NameError" in (second.error or "")  # a fresh process: no state carried over
        assert second.warm and worker.proc.returncode is not None  # that run was the spare's one job
        third_spare = pool._spare
        assert third_spare is not None
    finally:
        await pool.aclose()
    assert third_spare.task.done()
    assert third_spare.worker is not None and third_spare.worker.proc.returncode is not None  # ended with the pool


async def test_start_warms_a_spare_in_the_background_and_the_first_run_uses_it() -> None:
    pool = WorkerPool()
    try:
        began = time.monotonic()
        assert pool.start()  # the engine's start: never waits for the worker
        assert time.monotonic() - began < 0.25
        spare = pool._spare
        assert spare is not None and spare.task.get_name() == "worker:spare" and not spare.task.done()
        await asyncio.wait_for(asyncio.shield(spare.task), 60)  # ready in the background, nobody asked
        assert spare.worker is not None and spare.worker._ready
        first = await pool.run("1 + 1")
        assert first.ok and first.value == "2" and first.warm  # the first run of the session was warm
    finally:
        await pool.aclose()


async def test_closing_right_after_start_ends_the_importing_spare_at_once() -> None:
    pool = WorkerPool()
    assert pool.start()
    spare = pool._spare
    assert spare is not None
    while spare.worker is None:  # spawned (a few ms), now importing numpy and pandas
        await asyncio.sleep(0.005)
    began = time.monotonic()
    await pool.aclose()
    assert time.monotonic() - began < 2.5  # not a wait for the imports (seconds under load)
    assert spare.task.done() and spare.worker.proc.returncode is not None
    assert not spare.worker.tmp.exists()


async def test_start_starts_nothing_where_no_sandbox_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_mod, "detect", lambda: "no `unshare` here")
    pool = WorkerPool()
    assert pool.start() is False and pool._spare is None
    await pool.aclose()


async def test_a_cold_workers_imports_do_not_count_against_the_jobs_wall_time() -> None:
    """Under load a cold worker's imports take seconds (20 s and more at load 40 here): the wall time
    limits the job, from the ready byte, not the imports (those have their own bound)."""
    worker = await sandbox_mod.Worker.start(sandbox_mod.Limits(wall_s=0.3))
    result = await worker.run("6 * 7")
    assert result.ok and result.value == "42", result.error
    assert not result.warm
