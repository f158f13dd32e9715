"""The engine's start warms the session's python worker in the background: the first `run_python`
of a session meets a ready worker (not a 2-5 s cold start), the start never waits for it, and the
engine's close ends it."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.service import TurnEngine
from revagent.engine.tools import default_tools
from revagent.engine.tools.base import ToolContext
from revagent.worker import WorkerPool
from tests.engine_turns.conftest import Harness
from tests.worker.conftest import confinement_reason

pytestmark = pytest.mark.timeout(120)


async def test_the_first_run_python_after_engine_start_uses_a_ready_worker(harness: Harness) -> None:
    reason = await asyncio.to_thread(confinement_reason)
    if reason is not None:
        pytest.skip(f"no confinement on this machine: {reason}")
    pool = WorkerPool()
    harness.services = dataclasses.replace(harness.services, python=pool)
    runner = harness.runner(OfflineProvider())
    engine = TurnEngine(threads=harness.thread_ops, runner=runner, proposals=harness.proposals)
    try:
        await engine.start()
        spare = pool._spare
        assert spare is not None and spare.task.get_name() == "worker:spare"  # started with the engine
        await asyncio.wait_for(asyncio.shield(spare.task), 60)  # as during the model's first reply
        ctx = ToolContext("th_warm", "toolu_warm", "chat", "autonomous", runner.services)
        result = await default_tools().execute("run_python", {"code": "6 * 7"}, ctx)
        assert not result.is_error, result.content
        assert json.loads(result.content)["value"] == "42"
        assert result.data["warm"] is True  # the worker was ready before the code was handed over
    finally:
        await engine.aclose()
    behind = pool._spare
    assert behind is None  # the pool is closed; the spare started behind the run is gone with it
    assert spare.worker is not None and spare.worker.proc.returncode is not None
