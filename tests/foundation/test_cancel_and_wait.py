"""`tasks.cancel_and_wait`: the one way parts cancel their own tasks and wait for them."""

from __future__ import annotations

import asyncio

import pytest

from revagent.tasks import cancel_and_wait


async def test_cancels_running_tasks_and_collects_failures() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    async def boom() -> None:
        raise RuntimeError("died before the stop")

    running = asyncio.create_task(forever(), name="test:forever")
    failed = asyncio.create_task(boom(), name="test:boom")
    await started.wait()
    await asyncio.sleep(0)
    assert failed.done()
    await asyncio.wait_for(cancel_and_wait([running, None, failed]), 5)
    assert running.cancelled()
    assert isinstance(failed.exception(), RuntimeError)


async def test_a_cancellation_of_the_caller_propagates() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # takes its time to end
            raise

    child = asyncio.create_task(slow_to_stop(), name="test:slow")
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait([child]), name="test:stopper")
    await asyncio.sleep(0.01)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await child
