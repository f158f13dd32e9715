"""Acting on a wallet from a process that may not own it.

`call(...)` sends a command to the wallet's owner when one runs (and waits for its reply), or,
with no owner, runs a short-lived `cli` Session that takes the lease for its own run, executes
the command in-process, and lets go. Either way the caller gets the same replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from revagent.config import Config, ResolvedWallet
from revagent.errors import NotRunError, OwnerBusyError, RevagentError
from revagent.store import commands as cmdchan
from revagent.store.connection import open_redis, resolve_session_id
from revagent.store.keys import Keyspace
from revagent.store.lease import current_holder


class CommandFailedError(RevagentError):
    """The owner answered with an error; carries its code and exit code."""

    def __init__(self, message: str, code: str, exit_code: int) -> None:
        super().__init__(message, code=code)
        self.exit_code = exit_code  # type: ignore[assignment]


SETTLE_SECONDS = 30.0  # past its deadline, how long a sender still waits for a started command's outcome


async def call(config: Config, wallet: ResolvedWallet, name: str, args: dict[str, Any], *,
               timeout: float = 10.0, via: list[str] | None = None,
               settle: float = SETTLE_SECONDS) -> AsyncIterator[dict[str, Any]]:
    """Yield reply entries (`{"type", "data"}`) for one command, the last being `done`.

    An `error` reply raises CommandFailedError. `via`, if given, receives "owner" or "local".
    Sent to an owner, the command carries its deadline (`timeout` from now): past it, an owner that
    has not started it does not run it. A sender whose deadline passes keeps reading the (durable)
    reply stream for `settle` more seconds, then raises NotRunError (exit 7: nothing was done) or,
    if the owner had started the command, OutcomeUnknownError (exit 9: check before acting again).
    """
    redis = await open_redis(config)
    try:
        sid = await resolve_session_id(config, wallet)
        keys = Keyspace(sid)
        holder = await current_holder(redis, keys)
        if holder is not None:
            if via is not None:
                via.append("owner")
            command_id = await cmdchan.send(redis, keys, name, args, timeout=timeout)
            async for entry in cmdchan.replies(redis, keys, command_id, timeout=timeout, settle=settle):
                _raise_if_error(entry)
                yield entry
            return
    finally:
        await redis.aclose()
    if via is not None:
        via.append("local")
    from revagent.runtime.session import Session  # only with no owner: forwarding needs none of the session stack

    session = Session(config, wallet, role="cli")
    try:
        await session.start(serve_commands=False)
    except OwnerBusyError:
        raise
    try:
        entries: list[dict[str, Any]] = []

        async def emit(type_: str, data: Any) -> None:
            entries.append({"type": type_, "data": data})

        final = await session.run_command(name, args, emit)
        for entry in entries:
            yield entry
        done = {"type": final[0], "data": final[1]}
        _raise_if_error(done)
        yield done
    finally:
        await session.stop("one-shot command finished")


def _raise_if_error(entry: dict[str, Any]) -> None:
    if entry["type"] == "error":
        data = entry["data"] or {}
        if data.get("code") == NotRunError.code:  # the owner did not run it: nothing was done
            raise NotRunError(str(data.get("message", "not run")))
        raise CommandFailedError(str(data.get("message", "the command failed")), str(data.get("code", "error")),
                                 int(data.get("exit_code", 1)))


async def call_once(config: Config, wallet: ResolvedWallet, name: str, args: dict[str, Any], *,
                    timeout: float = 10.0, settle: float = SETTLE_SECONDS) -> tuple[Any, str]:
    """The final result of a command and where it ran ("owner" or "local")."""
    via: list[str] = []
    result: Any = None
    async for entry in call(config, wallet, name, args, timeout=timeout, via=via, settle=settle):
        if entry["type"] == "done":
            result = entry["data"]
    return result, via[0] if via else "local"
