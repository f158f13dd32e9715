"""Issue 23 item 19: a one-shot command imports only what it uses. `--help` needs no config, no
Redis client and no pydantic; a read forwarded to a running owner needs neither the exchange
bridge (its signing chain and aiohttp), nor the simulator's server, nor the model SDK, nor the TUI;
with no owner, a paper wallet's reads go straight to the venue and show what the owner would."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_trading.conftest import Daemon, ThreadedSim, ok_json

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
        assert "revagent.runtime.remote" in modules or args == ("status",)
        assert loaded(modules, *NEVER_FOR_A_READ) == [], args


FORWARDING_NEEDS_NONE_OF = ("revagent.runtime.session", "revagent.runtime.commands", "revagent.events",
                            "revagent.risk.evaluate", "revagent.risk.corrections", "revagent.risk.exposure")


def test_a_read_sent_to_the_owner_imports_no_session_stack_nor_the_risk_engine(daemon: Daemon,
                                                                                tmp_path: Path) -> None:
    """Forwarding a read is: the config, one Redis client, the lease holder, the command channel."""
    for args in (("positions",), ("orders",), ("risk", "show"), ("status",)):
        modules = modules_of(tmp_path, *args)
        assert loaded(modules, *FORWARDING_NEEDS_NONE_OF) == [], args


def test_a_read_with_no_owner_reads_the_venue_without_a_session(paper: ThreadedSim, tmp_path: Path) -> None:
    opened = ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--target", "5%", "--yes")
    assert opened["status"] == "done", opened
    for args in (("positions",), ("orders",), ("risk", "show")):
        modules = modules_of(tmp_path, *args)
        assert loaded(modules, *NEVER_FOR_A_READ) == [], args
    direct_view = ok_json("positions")["positions"], ok_json("orders")
    direct_risk = ok_json("risk", "show")
    view, risk = asyncio.run(_through_a_session())  # what these commands showed before: a one-shot session
    keys = ("market", "size", "entry_px", "stop_px", "target_px", "trade_id", "mark_px")
    positions = view["account"]["positions"]
    assert positions and positions[0]["stop_px"] is not None and positions[0]["trade_id"] is not None
    assert [{k: p[k] for k in keys} for p in direct_view[0]] == [{k: p[k] for k in keys} for p in positions]
    assert direct_view[1] == {"entries": view["account"]["entries"], "triggers": view["account"]["triggers"]}
    assert direct_risk["settings"] == risk["settings"] and direct_risk["status"] == risk["status"]
    assert direct_risk["usage"]["total_open_risk_usd"] == risk["usage"]["total_open_risk_usd"]


async def _through_a_session() -> tuple[Any, Any]:
    from revagent.config import load_config
    from revagent.runtime.remote import call_once

    cfg = load_config()
    view, _ = await call_once(cfg, cfg.wallet(None), "account.view", {})
    risk, _ = await call_once(cfg, cfg.wallet(None), "risk.show", {})
    return view, risk
