"""The session's pool: a run takes the ready spare, a new spare starts behind it, nothing of one run
reaches the next (a worker runs one job), and closing the pool ends the spare's process."""

from __future__ import annotations

import pytest

from revagent.worker import WorkerPool

pytestmark = [pytest.mark.usefixtures("confinement"), pytest.mark.timeout(90)]


async def test_a_warm_spare_serves_the_next_run_and_ends_with_the_pool() -> None:
    pool = WorkerPool()
    try:
        assert await pool.prewarm()
        first = await pool.run("x = 41\nx + 1")
        assert first.ok and first.value == "42"
        assert await pool.prewarm()  # the spare started behind the first run is ready
        spare = pool._spare
        assert spare is not None and spare.done()
        worker = spare.result()
        second = await pool.run("x")
        assert not second.ok and "NameError" in (second.error or "")  # a fresh process: no state carried over
        assert worker.proc.returncode is not None  # that run was the spare's one job
        third_spare = pool._spare
        assert third_spare is not None
    finally:
        await pool.aclose()
    assert third_spare.done() and not third_spare.cancelled()
    assert third_spare.result().proc.returncode is not None  # the idle spare's process ended with the pool
