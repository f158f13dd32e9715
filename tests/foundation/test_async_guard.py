"""The suite's own async discipline: every async test runs on a debug loop with a slow-callback limit."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.conftest import SLOW_CALLBACK_SECONDS, _SlowCallbackCatcher


async def test_async_tests_run_on_a_debug_loop_with_the_slow_callback_threshold() -> None:
    loop = asyncio.get_running_loop()
    assert loop.get_debug()
    assert loop.slow_callback_duration == SLOW_CALLBACK_SECONDS


async def test_a_blocking_callback_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "slow_callback_duration", 0.01)
    catcher = _SlowCallbackCatcher(threshold=0.01)
    logging.getLogger("asyncio").addHandler(catcher)
    try:
        loop.call_soon(time.sleep, 0.05)  # blocks the loop on purpose
        await asyncio.sleep(0.1)
    finally:
        logging.getLogger("asyncio").removeHandler(catcher)
    assert catcher.slow and "took" in catcher.slow[0]
