"""Issue 23 item 19: a one-shot command imports only what it uses. `--help` needs no config, no
Redis client and no pydantic; a read forwarded to a running owner needs neither the exchange
bridge (its signing chain and aiohttp), nor the simulator's server, nor the model SDK, nor the TUI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_trading.conftest import Daemon

pytestmark = pytest.mark.timeout(300)

PROBE = """
import json, sys
out = sys.argv.pop(1)
from revagent.cli.main import run
try:
    run()
except SystemExit:
    pass
json.dump(sorted(sys.modules), open(out, "w"))
"""


def modules_of(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                          timeout=120)
    assert out.exists(), done.stderr[-2000:]
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], *prefixes: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


NEVER_FOR_A_READ = ("anthropic", "matplotlib", "textual", "revagent.tui", "revagent.engine",
                    "revagent.exchange.sim.server", "revagent.exchange.hyperliquid.bridge", "eth_account", "aiohttp")


def test_help_imports_no_config_redis_or_sdk(tmp_path: Path) -> None:
    modules = modules_of(tmp_path, "--help")
    assert loaded(modules, "revagent.config", "pydantic", "redis", "rich", *NEVER_FOR_A_READ) == []


def test_a_read_sent_to_the_owner_imports_no_exchange_stack(daemon: Daemon, tmp_path: Path) -> None:
    for args in (("positions",), ("orders",), ("risk", "show"), ("status",)):
        modules = modules_of(tmp_path, *args)
        assert "revagent.remote" in modules or args == ("status",)
        assert loaded(modules, *NEVER_FOR_A_READ) == [], args
