"""TUI fixtures: a fixed paper wallet address so screens are the same on every run."""

from __future__ import annotations

from pathlib import Path

import pytest

MASTER = "0x3f2a000000000000000000000000000000009c1d"
AGENT = "0x0a9e00000000000000000000000000000000beef"


@pytest.fixture
def tui_home(revagent_home: Path) -> Path:
    """`revagent_home` with the paper wallet's addresses fixed (its keys are still generated)."""
    folder = revagent_home / "data" / "wallets" / "paper"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "addresses").write_text(f"{MASTER}\n{AGENT}\n")
    return revagent_home
