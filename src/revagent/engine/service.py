"""The turn engine as one object a Session builds: provider, tools, threads, runner, proposals, and
the command handlers other processes reach through the command channel.

    engine = TurnEngine.build(wallet=..., store=..., threads=ThreadStore(...), gateway=..., ...)
    await engine.start()                              # imports the SDK off the loop
    for name, handler in engine.command_handlers().items():
        session.register_command(name, handler)
    alert_runner = AlertRunner(..., handler=engine.alert_handler)
    ...
    await engine.aclose()

Command handlers (`async handler(args, emit) -> result`, the Session's `CommandHandler` shape):

- `chat` {thread?, message}: runs one chat turn; every `TurnEvent` is emitted as `(kind, data)` while
  it streams (`thread` first, then `text`, `tool_call`, `tool_result`, `proposal`, `usage`, `notice`,
  and `turn_error`: the channel reserves `error` for a failed command); the result is the
  `TurnOutcome` as a dict. `revagent ask` uses it.
- `proposal.decide` {id, approve, by?}: approve (execute) or reject a copilot proposal.
- `proposal.list` {status?}: the proposals.
- `thread.interrupt` {thread}: interrupt a running turn.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from revagent.bus import Bus
from revagent.engine.caches import SnapshotCaches
from revagent.engine.prompt import PromptLayers
from revagent.engine.proposals import ProposalService
from revagent.engine.providers.base import Provider
from revagent.engine.runner import TurnRunner
from revagent.engine.settings import EngineSettings
from revagent.engine.snapshot import SnapshotSource
from revagent.engine.threads import AlertTurnHandler, Threads
from revagent.engine.tools import ToolServices, default_tools
from revagent.engine.tools.base import MarketData
from revagent.engine.tools.read import MarketConditionsSource
from revagent.errors import UsageError
from revagent.events import TurnEvent
from revagent.models import CommandHandler, Emit, utc_now
from revagent.store.threads import ParsedHashCache, ThreadStore
from revagent.worker import WorkerPool
from revagent.worker.figures import FigureStore

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal
    from pathlib import Path

    from revagent.config import LLMSettings, ResolvedWallet
    from revagent.gateway import Gateway
    from revagent.risk import AccountView
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.store.repos import SessionStore
    from revagent.store.risk import RiskStore

log = logging.getLogger(__name__)

STREAMED_KINDS = ("thinking", "text", "tool_call", "tool_result", "proposal", "usage", "notice", "error")


def build_provider(llm: LLMSettings, env: Mapping[str, str] | None = None) -> Provider:
    """The provider the `[llm]` config asks for: the offline one when `provider = "offline"` or no key
    is set; else Anthropic with turn-start retries, falling back to `llm.fallback` (`offline`, another
    model name then offline, or '' for none)."""
    from revagent.engine.providers.anthropic import AnthropicProvider
    from revagent.engine.providers.fallback import FallbackProvider
    from revagent.engine.providers.offline import OfflineProvider
    from revagent.engine.providers.retry import with_retries

    env = os.environ if env is None else env
    if llm.provider == "offline":
        return OfflineProvider()
    anthropic = AnthropicProvider.from_settings(llm, env, max_retries=llm.max_retries)
    if not anthropic.has_key:
        log.info("no API key in $%s: the offline provider answers", llm.api_key_env)
        return OfflineProvider()
    primary: Provider = with_retries(anthropic)
    fallback = llm.fallback.strip()
    if not fallback:
        return primary
    if fallback == "offline":
        return FallbackProvider(primary, OfflineProvider())
    second = FallbackProvider(primary, with_retries(anthropic), fallback_model=fallback)
    return FallbackProvider(second, OfflineProvider())


@dataclass(frozen=True)
class ThreadSummary:
    """A thread for a list (the TUI's ThreadInfo has the same fields)."""

    id: str
    kind: str
    title: str
    status: str


@dataclass(frozen=True)
class HistoryItem:
    """One past message for re-opening a thread: role `user`, `assistant` or `notice`."""

    role: str
    text: str


class TurnEngine:
    """One session's turn engine (see the module docstring)."""

    def __init__(self, *, threads: Threads, runner: TurnRunner, proposals: ProposalService,
                 caches: SnapshotCaches | None = None, bus: Bus | None = None) -> None:
        self.thread_ops = threads
        self.runner = runner
        self.proposals = proposals
        self.snapshot_caches = caches
        self.caches: dict[str, ParsedHashCache[Any]] = caches.by_name if caches is not None else {}
        self.bus = bus
        self.alert_handler = AlertTurnHandler(runner, threads)

    def invalidate(self, what: str, record_id: str | None = None) -> None:
        """Tell the snapshot caches about a `store.changed` (`what`: watchers, notes, time_alerts, or
        `*` after a missed stretch). Built with `live_caches=True`, the engine follows the bus's
        `StoreChanged` events itself once started; this is for a caller with another source."""
        if self.snapshot_caches is not None:
            self.snapshot_caches.invalidate(what, record_id)

    @classmethod
    def build(cls, *, wallet: ResolvedWallet, store: SessionStore, gateway: Gateway, plans: TradePlans,
              journal: OrderJournal, risk: RiskStore, bus: Bus, account: Callable[[], Awaitable[AccountView | None]],
              market: MarketData | None = None, snapshot: SnapshotSource | None = None,
              provider: Provider | None = None, settings: EngineSettings | None = None,
              layers: PromptLayers | None = None, clock: Callable[[], datetime] = utc_now,
              env: Mapping[str, str] | None = None, live_caches: bool = False,
              trades: Callable[[], Sequence[Any]] | None = None,
              early_warning_fraction: Decimal | None = None, figures_dir: Path | None = None) -> TurnEngine:
        """Wire the engine from a session's parts. `layers` default: read `llm.strategy_file` (a
        blocking read of a small file; call `build` before the loop is busy, or pass `layers`).
        `live_caches=True`: the snapshot re-reads watchers, notes and time alerts only after a
        `store.changed` of them, which `start()` follows on `bus` (the Session re-publishes every
        store write there), or every 30 s; False: every turn. `trades`: the ledger's trade book
        (performance and funding paid in the snapshot); the websocket's state follows `bus`.
        `figures_dir`: where `run_python` keeps its figures as PNGs (None: not kept)."""
        settings = settings or EngineSettings.from_wallet(wallet)
        thread_store = ThreadStore(store.redis, store.keys)
        proposals = ProposalService(thread_store, clock=clock, timeout=settings.proposal_timeout, bus=bus)
        caches: SnapshotCaches | None = None
        if snapshot is None:
            from decimal import Decimal

            from revagent.engine.links import LinkHealth
            from revagent.engine.market_atr import AtrSource

            caches = SnapshotCaches(store, live=live_caches)
            snapshot = SnapshotSource(clock=clock, settings=risk.settings, risk_state=risk.get, account=account,
                                      plans=plans.open_trades, watchers=caches.watchers.all,
                                      time_alerts=caches.time_alerts.all, notes=caches.notes.all,
                                      wallet=str(store.sid),
                                      markets=MarketConditionsSource(market) if market is not None else None,
                                      links=LinkHealth(bus, clock), trades=trades,
                                      atr=AtrSource(market, clock=clock) if market is not None else None,
                                      early_warning_fraction=early_warning_fraction or Decimal("0.5"))
        services = ToolServices(gateway=gateway, plans=plans, journal=journal, risk=risk, store=store, clock=clock,
                                snapshot=snapshot, market=market, proposals=proposals, account=account,
                                python=WorkerPool(warm=wallet.llm.python_spare,
                                                   figures=FigureStore(figures_dir) if figures_dir else None))
        registry = default_tools()
        proposals.attach(registry, services)
        runner = TurnRunner(threads=thread_store, provider=provider or build_provider(wallet.llm, env),
                            tools=registry, services=services, settings=settings,
                            layers=layers or PromptLayers.from_strategy_file(wallet.llm.strategy_file), bus=bus)
        return cls(threads=Threads(thread_store, clock), runner=runner, proposals=proposals,
                   caches=caches, bus=bus)

    async def start(self) -> None:
        """Import the SDK off the loop; with live caches, follow the bus's store invalidations
        (task `engine:invalidations`, ended by `aclose`); warm the python worker in the background
        where a sandbox works (task `worker:spare`, ended by `aclose`; never waited for)."""
        await self.runner.warm_up()
        if self.snapshot_caches is not None and self.bus is not None:
            self.snapshot_caches.follow(self.bus)
        if self.runner.services.python is not None:  # the first run_python is warm (task `worker:spare`)
            self.runner.services.python.start()

    async def aclose(self) -> None:
        await self.runner.aclose()
        if self.runner.services.python is not None:  # the warm python worker ends with the engine
            await self.runner.services.python.aclose()
        links = getattr(self.runner.services.snapshot, "links", None)
        if links is not None:  # the snapshot's websocket state: its bus subscription ends here
            links.close()
        if self.snapshot_caches is not None:
            await self.snapshot_caches.aclose()

    # -- chat (the TUI's ChatEngine protocol, field-compatible types) -------------------------------
    async def threads(self) -> list[ThreadSummary]:
        """Open threads (chat and alert) with a display status: running, failed (budget-stopped), idle."""
        out = []
        for t in await self.thread_ops.store.all():
            if t.status == "closed":
                continue
            busy = self.runner.busy(t.id)
            out.append(ThreadSummary(t.id, t.kind, t.title, "running" if busy else ("failed" if t.status == "stopped"
                                                                                      else "idle")))
        return out

    async def history(self, thread_id: str, limit: int = 200) -> list[HistoryItem]:
        items: list[HistoryItem] = []
        for e in await self.thread_ops.store.transcript(thread_id):
            if e.kind == "user":
                items.append(HistoryItem("user", e.text))
            elif e.kind == "assistant":
                text = "".join(b.get("text", "") for b in e.blocks if b.get("type") == "text")
                calls = [b["name"] for b in e.blocks if b.get("type") == "tool_use"]
                if text:
                    items.append(HistoryItem("assistant", text + (" [interrupted]" if e.interrupted else "")))
                if calls:
                    items.append(HistoryItem("notice", "tools: " + ", ".join(calls)))
            elif e.kind in ("notice", "summary"):
                items.append(HistoryItem("notice", e.text if e.kind == "notice" else "summary of earlier turns:\n"
                                         + e.text))
            elif e.kind == "turn_end" and e.status not in ("done", ""):
                items.append(HistoryItem("notice", f"turn {e.status}: {e.data.get('error', '')}".rstrip(": ")))
        return items[-limit:]

    async def new_thread(self, title: str) -> ThreadSummary:
        t = await self.thread_ops.create_chat(title)
        return ThreadSummary(t.id, t.kind, t.title, "idle")

    async def rename_thread(self, thread_id: str, title: str) -> None:
        await self.thread_ops.rename(thread_id, title)

    async def close_thread(self, thread_id: str) -> None:
        await self.thread_ops.close(thread_id)

    async def send(self, thread_id: str, text: str) -> None:
        """Queue a message; the turn streams as `TurnEvent`s on the bus (use `runner.submit` for its future)."""
        self.runner.submit(thread_id, text)

    async def interrupt(self, thread_id: str) -> bool:
        return self.runner.interrupt(thread_id)

    async def answer_proposal(self, proposal_id: str, approve: bool, by: str = "tui") -> dict[str, Any]:
        return (await self.proposals.decide(proposal_id, approve, by=by)).model_dump(mode="json")

    # -- commands ------------------------------------------------------------------------------
    def command_handlers(self) -> dict[str, CommandHandler]:
        return {"chat": self._chat_command, "proposal.decide": self._decide_command,
                "proposal.list": self._list_command, "thread.interrupt": self._interrupt_command}

    async def _chat_command(self, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
        message = str(args.get("message", "")).strip()
        if not message:
            raise UsageError("MESSAGE: say something")
        thread = await self.thread_ops.chat(args.get("thread") or None)
        await emit("thread", {"id": thread.id, "title": thread.title})
        queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()
        future = self.runner.submit(thread.id, message, listener=queue.put_nowait)
        future.add_done_callback(lambda _f: queue.put_nowait(None))
        while (event := await queue.get()) is not None:
            if event.kind in STREAMED_KINDS:
                # the command channel reserves `error` for a failed command: a turn's error streams as turn_error
                await emit("turn_error" if event.kind == "error" else event.kind, event.data)
        return (await future).as_dict()

    async def _decide_command(self, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
        pid = str(args.get("id", ""))
        if not pid:
            raise UsageError("ID: which proposal?")
        decided = await self.proposals.decide(pid, bool(args.get("approve")), by=str(args.get("by", "cli")))
        return decided.model_dump(mode="json")

    async def _list_command(self, args: dict[str, Any], emit: Emit) -> list[dict[str, Any]]:
        return await self.proposals.list(args.get("status"))

    async def _interrupt_command(self, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
        thread = await self.thread_ops.store.find(str(args.get("thread", "")))
        if thread is None:
            raise UsageError("THREAD: no such thread")
        return {"interrupted": self.runner.interrupt(thread.id), "thread_id": thread.id}


def jsonl_event(kind: str, data: Any) -> dict[str, Any]:
    """An `ask --json` line: `{"type": kind, ...data}` (data fields inlined when it is an object)."""
    if isinstance(data, dict):
        return {"type": kind, **data}
    return {"type": kind, "data": data}

