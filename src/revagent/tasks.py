"""Owned background tasks: every task has a name and an owner, is cancelled on shutdown, and is
logged when it dies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

log = logging.getLogger(__name__)


class TaskSupervisor:
    """Starts named tasks and stops them in reverse order of start."""

    def __init__(self, owner: str, on_crash: Callable[[str, BaseException], None] | None = None) -> None:
        self.owner = owner
        self._tasks: list[asyncio.Task[Any]] = []
        self._on_crash = on_crash
        self._stopping = False

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.owner}:{name}")
        self._tasks.append(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            if not self._stopping:
                log.info("task %s was cancelled", task.get_name())
            return
        exc = task.exception()
        if exc is None:
            log.debug("task %s finished", task.get_name())
            return
        log.error("task %s died: %r", task.get_name(), exc, exc_info=exc)
        if self._on_crash is not None and not self._stopping:
            self._on_crash(task.get_name(), exc)

    @property
    def names(self) -> list[str]:
        return [t.get_name() for t in self._tasks if not t.done()]

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every task (newest first) and wait for each. A library may swallow a cancellation
        that lands while its call is finishing (redis-py can), so the cancel is repeated until the
        task ends or `timeout` passes."""
        self._stopping = True
        for task in reversed(self._tasks):
            if task.done():
                continue
            deadline = asyncio.get_running_loop().time() + timeout
            while not task.done() and asyncio.get_running_loop().time() < deadline:
                task.cancel()
                await asyncio.wait({task}, timeout=0.25)
            if not task.done():
                import io

                stack = io.StringIO()
                task.print_stack(file=stack)
                log.error("task %s did not stop within %.1fs:\n%s", task.get_name(), timeout, stack.getvalue())
        self._tasks.clear()


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel `tasks` (None is skipped; cancelling a finished task does nothing) and wait until each has
    ended. Their outcomes (a cancellation, an error) are collected, never raised here, so none is logged
    as "never retrieved"; a cancellation of the caller itself still propagates."""
    owned = [t for t in tasks if t is not None]
    for task in owned:
        task.cancel()
    if owned:
        await asyncio.gather(*owned, return_exceptions=True)


def raise_if_cancelling() -> None:
    """Call after an await that may have swallowed a cancellation (see TaskSupervisor.stop)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
