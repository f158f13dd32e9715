"""The python worker's tests: `confinement` says (once per run) whether this machine confines a worker;
tests that need one skip with the reason where none works (the tool refuses there too)."""

from __future__ import annotations

import asyncio

import pytest

from revagent.worker import probe

_REASON: list[str | None] = []


def confinement_reason() -> str | None:
    """None when a confined worker starts here, else why not (probed once per test run)."""
    if not _REASON:
        _REASON.append(asyncio.run(probe()))
    return _REASON[0]


@pytest.fixture(scope="session")
def confinement() -> None:
    reason = confinement_reason()
    if reason is not None:
        pytest.skip(f"no confinement on this machine: {reason}")
