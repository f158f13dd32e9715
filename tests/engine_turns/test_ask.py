"""`revagent ask` and `revagent proposals` through the wallet owner's command channel.

An owner session (role daemon, in a thread with its own loop) registers the engine's command
handlers; the CLI commands (typer, in the main thread) reach it through Redis like another process."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from revagent.bus import Bus
from revagent.cli import ask as ask_cli
from revagent.config import load_config
from revagent.engine.providers.offline import OfflineProvider
from revagent.engine.service import TurnEngine
from revagent.engine.settings import EngineSettings
from revagent.gateway import Gateway
from revagent.risk import AccountView
from revagent.runtime.session import Session
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.risk import RiskStore
from revagent.store.threads import Proposal
from tests.engine_turns.conftest import NOW


@dataclass
class Owner:
    loop: asyncio.AbstractEventLoop
    session: Session
    engine: TurnEngine
    stop: asyncio.Event

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


@pytest.fixture
def owner(revagent_home: Path) -> Iterator[Owner]:
    cfg = load_config()
    wallet = cfg.wallet(None)
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        session = Session(cfg, wallet, role="daemon")
        await session.start()
        store = session.store
        risk = RiskStore(store.redis, store.keys, wallet.risk)
        plans, journal = TradePlans(store.redis, store.keys), OrderJournal(store.redis, store.keys)

        async def account() -> AccountView:
            return AccountView(equity=Decimal(10000), available_margin=Decimal(10000))

        bus = Bus()
        gateway = Gateway(exchange=None, journal=journal, plans=plans, account=account, settings=risk.settings,
                          risk_state=risk, bus=bus, lease=None)
        engine = TurnEngine.build(wallet=wallet, store=store, gateway=gateway, plans=plans, journal=journal, risk=risk,
                                  bus=bus, account=account, provider=OfflineProvider(),
                                  settings=EngineSettings(chat_mode="copilot"))
        for name, handler in engine.command_handlers().items():
            session.register_command(name, handler)
        stop = asyncio.Event()
        holder["owner"] = Owner(asyncio.get_running_loop(), session, engine, stop)
        ready.set()
        await stop.wait()
        await engine.aclose()
        await session.stop("test over")

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="owner-loop", daemon=True)
    thread.start()
    assert ready.wait(30), "the owner session did not start"
    own: Owner = holder["owner"]
    try:
        yield own
    finally:
        own.loop.call_soon_threadsafe(own.stop.set)
        thread.join(30)


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("ask")(ask_cli.ask)
    app.add_typer(ask_cli.proposals_app, name="proposals")
    return app


def test_ask_json_lines_through_the_owner_and_the_thread_persists(owner: Owner) -> None:
    runner = CliRunner()
    result = runner.invoke(cli(), ["ask", "--json", "--thread", "desk", "hello there"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    types = [line["type"] for line in lines]
    assert types[0] == "thread" and types[-1] == "done" and "text" in types
    assert lines[-1]["status"] == "done" and "No language model is configured" in lines[-1]["text"]
    thread_id = lines[0]["id"]
    again = runner.invoke(cli(), ["ask", "--json", "--thread", "desk", "second"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.splitlines()[0])["id"] == thread_id
    users = [e.text for e in owner.run(owner.engine.thread_ops.store.transcript(thread_id)) if e.kind == "user"]
    assert users == ["hello there", "second"]
    plain = runner.invoke(cli(), ["ask", "--thread", "desk", "plain text please"])
    assert plain.exit_code == 0 and "No language model is configured" in plain.stdout


def test_proposals_list_and_decide_from_the_shell(owner: Owner) -> None:
    store = owner.engine.thread_ops.store
    proposal = Proposal(thread_id="th_x", tool_call_id="toolu_1", tool="cancel_order",
                        arguments={"market": "BTC", "oid": 1}, summary="cancel_order(market=BTC, oid=1)",
                        created_at=NOW, expires_at=None)
    owner.run(store.put_proposal(proposal))
    runner = CliRunner()
    listed = runner.invoke(cli(), ["proposals", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [p["id"] for p in json.loads(listed.stdout)] == [proposal.id]
    rejected = runner.invoke(cli(), ["proposals", "reject", proposal.id, "--json"])
    assert rejected.exit_code == 0, rejected.output
    doc = json.loads(rejected.stdout)
    assert doc["status"] == "rejected" and doc["via"] == "owner" and doc["decided_by"] == "cli"
    again = runner.invoke(cli(), ["proposals", "approve", proposal.id, "--json"])
    assert again.exit_code == 2 and json.loads(again.stdout)["error"]["code"] == "usage"
    missing = runner.invoke(cli(), ["proposals", "approve", "p_nope", "--json"])
    assert missing.exit_code == 3


def test_jsonl_inlines_event_fields() -> None:
    assert json.loads(ask_cli.jsonl("text", {"text": "hi"})) == {"type": "text", "text": "hi"}
    assert json.loads(ask_cli.jsonl("done", [1])) == {"type": "done", "data": [1]}
