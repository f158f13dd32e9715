"""What the TUI needs from a session: one small typed Protocol (the adapter pattern).

The app renders from bus events and the values returned here, and acts only through these methods;
it never touches the exchange or Redis. `session_port.SessionAdapter` implements it over a real
`Session` (the owner); a viewer of a daemon's session can implement the same Protocol over the
command channel. Everything here is plain data: no Textual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from revagent.bus import Subscription
from revagent.models import Network, Note, TimeAlert, WatcherPair
from revagent.risk import AccountView, RiskStatus, RiskUsage
from revagent.tui.slash import OpenTradeCmd, SlashCommand

ThreadKind = Literal["chat", "alert"]
ThreadStatus = Literal["idle", "queued", "running", "done", "failed"]


@dataclass(frozen=True)
class Identity:
    """Who the screen is about: the wallet's config name, its network and master address."""

    wallet: str
    network: Network
    address: str
    role: Literal["owner", "viewer"] = "owner"


@dataclass(frozen=True)
class PanelSnapshot:
    """Everything the account panel shows, read at one moment (cold start, reconnect, every few s).

    `account` / `status` / `usage` are None when they cannot be read yet (no trading parts, the
    exchange unreachable); `problem` then says why, in the trader's words. `equity_history` is
    oldest first (USD). `sync_phase` and `ws_up` are None when unknown. `stored_at`: the account,
    status and usage are the last stored view (painted dimmed, with its age, before the session is
    live), from that moment; None when they are live.
    """

    account: AccountView | None = None
    status: RiskStatus | None = None
    usage: RiskUsage | None = None
    watchers: tuple[WatcherPair, ...] = ()
    time_alerts: tuple[TimeAlert, ...] = ()
    notes: tuple[Note, ...] = ()
    equity_history: tuple[Decimal, ...] = ()
    sync_phase: str | None = None
    ws_up: bool | None = None
    problem: str = ""
    modes: Mapping[str, str] = field(default_factory=dict)  # approval mode per thread kind (chat, alert)
    stored_at: datetime | None = None


@dataclass(frozen=True)
class ThreadInfo:
    """A conversation thread: a chat the trader opened, or an alert thread the alert queue opened."""

    id: str
    kind: ThreadKind
    title: str
    status: ThreadStatus = "idle"


@dataclass(frozen=True)
class HistoryEntry:
    """One past message of a thread, for re-opening it: role `user`, `assistant` or `notice`."""

    role: Literal["user", "assistant", "notice"]
    text: str


@dataclass(frozen=True)
class CommandOutcome:
    """The answer to a command: `ok`, one line for the trader, the reasons of a refusal, the raw data."""

    ok: bool
    message: str
    reasons: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


class SessionPort(Protocol):
    """The session as the TUI sees it. All coroutines run on the app's event loop and never block.

    Errors the trader must see come back as `CommandOutcome(ok=False, ...)`; the methods raise only
    on programming errors.
    """

    @property
    def identity(self) -> Identity: ...

    def subscribe(self) -> Subscription:
        """A bounded subscription to every bus event (the app closes it on exit)."""
        ...

    async def connect(self) -> CommandOutcome:
        """Bring up the trading parts (the exchange link; may take seconds). The app calls it once,
        after the first paint, in the background; until it succeeds the snapshot's `problem` says
        what is missing and why."""
        ...

    async def load_snapshot(self, *, fresh: bool = False) -> PanelSnapshot:
        """Read the panel's state now (called before the first paint, on reconnect, on a timer);
        `fresh`: read the account from the exchange, not the live view (after a fill or a flatten,
        whose equity the live view only catches up with at its next reconcile)."""
        ...

    async def threads(self) -> Sequence[ThreadInfo]:
        """Open threads, chat and alert, oldest first."""
        ...

    async def history(self, thread_id: str) -> Sequence[HistoryEntry]: ...

    async def new_thread(self, title: str) -> ThreadInfo: ...

    async def rename_thread(self, thread_id: str, title: str) -> None: ...

    async def close_thread(self, thread_id: str) -> None: ...

    async def send_chat(self, thread_id: str, text: str) -> CommandOutcome:
        """Start (or queue) a turn; its output arrives as `TurnEvent`s on the bus."""
        ...

    async def interrupt(self, thread_id: str) -> bool:
        """Interrupt the thread's running turn; False when none ran."""
        ...

    async def answer_proposal(self, proposal_id: str, approve: bool) -> CommandOutcome: ...

    async def preview(self, cmd: OpenTradeCmd) -> CommandOutcome:
        """The risk engine's preview of an open (size, notional, risk, R:R, fees, liq), nothing sent."""
        ...

    async def run_slash(self, cmd: SlashCommand, action_id: str) -> CommandOutcome:
        """Execute a parsed slash command. `action_id` is minted once per typed command: a retry of
        the same command reuses it, so it never places an order twice."""
        ...
