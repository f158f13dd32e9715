"""TUI fixtures: a fixed paper wallet address so screens are the same on every run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _SlowCallbackCatcher

MASTER = "0x3f2a000000000000000000000000000000009c1d"
AGENT = "0x0a9e00000000000000000000000000000000beef"


@pytest.fixture
def tui_home(revagent_home: Path) -> Path:
    """`revagent_home` with the paper wallet's addresses fixed (its keys are still generated)."""
    folder = revagent_home / "data" / "wallets" / "paper"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "addresses").write_text(f"{MASTER}\n{AGENT}\n")
    return revagent_home


TUI_SLOW_CALLBACK_SECONDS = 2.0


@pytest.fixture(autouse=True)
def _fail_on_slow_callbacks() -> Iterator[None]:
    """The suite's slow-callback guard, with a 2 s threshold for the TUI tests.

    Textual paints the whole screen in one callback on the loop (its compositor is synchronous by
    design); under asyncio debug mode on a busy 2-core runner a 160x48 repaint with Markdown takes
    0.5-0.8 s, which would fail the suite's 0.5 s guard without any blocking code of ours. Anything
    over 2 s still fails: that is not a repaint.
    """
    catcher = _SlowCallbackCatcher(TUI_SLOW_CALLBACK_SECONDS)
    logger = logging.getLogger("asyncio")
    logger.addHandler(catcher)
    try:
        yield
    finally:
        logger.removeHandler(catcher)
    if catcher.slow:
        pytest.fail(f"the event loop was blocked longer than {TUI_SLOW_CALLBACK_SECONDS}s:\n"
                    + "\n".join(catcher.slow), pytrace=False)
