"""Errors that reach the trader, each with the exit code ARCHITECTURE.md assigns to it."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2
    NOT_FOUND = 3
    CONFIG = 4
    REDIS_UNREACHABLE = 5
    REFUSED = 6
    OWNER_BUSY = 7
    EXCHANGE_UNREACHABLE = 8
    OUTCOME_UNKNOWN = 9
    LEASE_LOST = 10
    """A running daemon lost its lease (another process took the wallet, or Redis forgot it): it
    stopped so as never to be a second owner; a supervisor restarts it."""


class RevagentError(Exception):
    """An error with a one-line message meant for the trader, a stable code and an exit code."""

    exit_code: ExitCode = ExitCode.USAGE
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UsageError(RevagentError):
    exit_code = ExitCode.USAGE
    code = "usage"


class NotFoundError(RevagentError):
    exit_code = ExitCode.NOT_FOUND
    code = "not_found"


class ConfigError(RevagentError):
    exit_code = ExitCode.CONFIG
    code = "config"


class RedisUnavailableError(RevagentError):
    exit_code = ExitCode.REDIS_UNREACHABLE
    code = "redis_unreachable"


class RefusedError(RevagentError):
    exit_code = ExitCode.REFUSED
    code = "refused"


class OwnerBusyError(RevagentError):
    """The wallet is owned by another process (or its owner did not answer a command)."""

    exit_code = ExitCode.OWNER_BUSY
    code = "owner_busy"


class NotRunError(RevagentError):
    """A command that was not run (its sender's deadline passed before it started): nothing was done,
    so sending it again is safe."""

    exit_code = ExitCode.OWNER_BUSY
    code = "not_run"


class OutcomeUnknownError(RevagentError):
    """A command that may have run (an order was sent, or its owner started it) whose outcome is not
    known yet: check the exchange (`revagent orders`, `revagent positions`) before acting again."""

    exit_code = ExitCode.OUTCOME_UNKNOWN
    code = "outcome_unknown"


class ExchangeUnavailableError(RevagentError):
    exit_code = ExitCode.EXCHANGE_UNREACHABLE
    code = "exchange_unreachable"


class LeaseLostError(RevagentError):
    """This process no longer owns the wallet: it must not perform any side effect."""

    exit_code = ExitCode.OWNER_BUSY
    code = "lease_lost"
