"""Session commands that trade or change risk: run by the wallet's owner, whoever asked.

The shell (`revagent trade ...`, `revagent risk ...`), slash commands and a viewer TUI send these
through the command channel (or run them under a one-shot lease when no owner runs). Each handler
takes JSON arguments, validates them (a UsageError changes nothing) and answers with JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, cast

from revagent.errors import NotRunError, UsageError
from revagent.models import CommandHandler, Emit, utc_now

if TYPE_CHECKING:
    from revagent.config import ApprovalMode, ResolvedWallet
    from revagent.engine.service import TurnEngine
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.gateway import Gateway
    from revagent.risk import AccountView
    from revagent.store.commands import Command
    from revagent.store.repos import SessionStore
    from revagent.store.risk import RiskStore

log = logging.getLogger(__name__)


class CommandHost(Protocol):
    """What the commands use of the session that registers them (`session.Session` implements it),
    so the commands never import the session that imports them."""

    wallet: ResolvedWallet
    bridge: HyperliquidBridge | None
    gateway: Gateway | None
    risk: RiskStore | None
    engine: TurnEngine | None

    @property
    def store(self) -> SessionStore: ...
    def register_command(self, name: str, handler: CommandHandler) -> None: ...
    async def start_trading(self) -> None: ...
    async def account(self) -> AccountView: ...
    async def fresh_account(self) -> AccountView: ...
    async def run_command(self, name: str, args: dict[str, Any], emit: Emit) -> tuple[str, Any]: ...


Session = CommandHost  # the handlers below are written against the session's port


# --------------------------------------------------------------------- the command's deadline
class CommandTicket:
    """One command from the channel as its owner runs it: `go()` is the last "still wanted?" check
    before anything irreversible (the gateway calls it just before it journals an order; the risk
    handlers before they write). Before the sender's deadline it marks the command started (and
    says so on the reply stream), after which it always passes: a started command is finished.
    Past the deadline, before the start, it raises NotRunError: nothing was done."""

    def __init__(self, command: Command, emit: Emit) -> None:
        self.command = command
        self.emit = emit
        self.started = False

    async def go(self) -> None:
        if self.started:
            return
        late = time.time() - self.command.deadline
        if late > 0:
            log.info("not running command %s (%s): its deadline passed %.1f s before it could start",
                     self.command.id, self.command.name, late)
            raise NotRunError(f"not run: command {self.command.id} ({self.command.name}) reached its deadline "
                              f"{late:.1f} s before the owner could start it (it was waiting for the account's "
                              "sync or the request budget); nothing was done")
        self.started = True
        await self.emit("started", {"at": time.time()})


_ticket: ContextVar[CommandTicket | None] = ContextVar("revagent_command_ticket", default=None)


async def still_wanted() -> None:
    """The current channel command's last check before an irreversible step (a no-op outside one:
    an in-process caller or a one-shot shell command waits for its own result)."""
    ticket = _ticket.get()
    if ticket is not None:
        await ticket.go()


def channel_check() -> Callable[[], Awaitable[None]] | None:
    """The current channel command's deadline check, for an `Action` built outside `_action()`."""
    ticket = _ticket.get()
    return ticket.go if ticket is not None else None


# Commands whose handlers call `still_wanted()` themselves, at the last moment (or never: reads).
# Every other command (a chat message, an approval) starts as soon as the owner takes it.
_CHECKED_LATE = {"trade.preview", "trade.open", "trade.close", "trade.stop", "trade.target", "trade.cancel",
                 "trade.leverage", "trade.margin", "trade.flatten", "account.view", "account.mids", "risk.show",
                 "risk.set", "risk.reset", "risk.halt", "risk.resume", "risk.unlock", "mode.show", "mode.set", "ping",
                 "doctor.probe_order"}


class TypedRetries:
    """One prompt's memory of typed trading commands whose outcome was not final (the owner did not
    answer in time, the exchange's answer was lost): typing the same command again (same name and
    arguments) within `ttl` seconds reuses its action id, so the gateway finds the first attempt's
    orders by their client ids and the command runs once."""

    def __init__(self, ttl: float = 600.0) -> None:
        self.ttl = ttl
        self._ids: dict[str, tuple[str, float]] = {}

    @staticmethod
    def _key(name: str, args: dict[str, Any]) -> str:
        from revagent.store.commands import PendingCommands

        return PendingCommands.fingerprint(name, args)

    def action_id(self, name: str, args: dict[str, Any], fresh: str) -> str:
        """The id to send with: a pending one for the same command, else `fresh`."""
        pending = self._ids.get(self._key(name, args))
        if pending is not None and pending[1] > time.monotonic():
            return pending[0]
        return fresh

    def settle(self, name: str, args: dict[str, Any], action_id: str, *, final: bool) -> None:
        key = self._key(name, args)
        if final:
            self._ids.pop(key, None)
        else:
            self._ids[key] = (action_id, time.monotonic() + self.ttl)

    @staticmethod
    def is_final(data: dict[str, Any]) -> bool:
        """False for an outcome that may still change: a gateway `unknown`, an owner that started the
        command and did not answer, or a flatten with an unknown part."""
        if data.get("status") == "unknown" or data.get("code") == "outcome_unknown":
            return False
        return not any(isinstance(r, dict) and r.get("status") == "unknown" for r in data.get("results") or [])


async def execute_channel_command(session: Session, command: Command) -> None:
    """Run one command taken from the channel and write its outcome on its reply stream: `accepted`
    at once, `started` when it passes its last check, then `done`/`error` (`not_run` for one whose
    deadline passed before it started: skipped, and the sender is told)."""
    from revagent.store import commands as cmdchan

    redis, keys = session.store.redis, session.store.keys

    async def emit(type_: str, data: Any) -> None:
        await cmdchan.reply(redis, keys, command.id, type_, data)

    if command.expired:
        log.info("skipping command %s (%s): its deadline passed before it was taken", command.id, command.name)
        await emit("error", cmdchan.not_run_reply(command))
        return
    await emit("accepted", {"at": time.time()})
    ticket = CommandTicket(command, emit)
    token = _ticket.set(ticket)
    try:
        if command.name not in _CHECKED_LATE:
            try:
                await ticket.go()
            except NotRunError as exc:
                await emit("error", {"code": exc.code, "message": exc.message, "exit_code": int(exc.exit_code)})
                return
        result = await session.run_command(command.name, command.args, emit)
    finally:
        _ticket.reset(token)
    await emit(*result)


def register_trading_commands(session: Session) -> None:
    """Add the trade, account and risk commands to a session."""
    handlers = {
        "trade.preview": _trade_preview,
        "trade.open": _trade_open,
        "trade.close": _order("trade.close"),  # an order action: its model reads and resolves it
        "trade.stop": _order("trade.stop"),
        "trade.target": _order("trade.target"),
        "trade.cancel": _order("trade.cancel"),
        "trade.leverage": _order("trade.leverage"),
        "trade.margin": _order("trade.margin"),
        "trade.flatten": _trade_flatten,
        "account.view": _account_view,
        "account.mids": _account_mids,
        "risk.show": _risk_show,
        "risk.set": _risk_set,
        "risk.reset": _risk_reset,
        "risk.halt": _risk_halt,
        "risk.resume": _risk_resume,
        "risk.unlock": _risk_unlock,
    }
    for name, fn in handlers.items():
        session.register_command(name, _bind(session, fn))
    for name, fn in (("mode.show", _mode_show), ("mode.set", _mode_set)):
        session.register_command(name, _bind(session, fn, trading=False))
    for name in ("watch.add", "watch.modify", "alert.add", "note.add"):
        session.register_command(name, _bind(session, _memory(name), trading=False))


def _memory(name: str) -> Callable[[Session, dict[str, Any]], Awaitable[Any]]:
    """The handler of the memory action `name`: its model reads the arguments; the record it
    resolves to is written through the session's store (which publishes the invalidation)."""

    async def run(session: Session, args: dict[str, Any]) -> Any:
        from revagent.actions import MEMORY_ACTIONS, NewNote, NewTimeAlert, NewWatcher, WatcherEdit
        from revagent.errors import NotFoundError
        from revagent.models import utc_now

        action = MEMORY_ACTIONS[name].from_channel(args)  # a mistake is refused before anything is read
        change, now, store = action.resolve(None), utc_now(), session.store
        if isinstance(change, NewWatcher):
            pair = change.build(now)
            await store.watchers.put(pair)
            return {"id": pair.id, "watcher": pair.model_dump(mode="json")}
        if isinstance(change, WatcherEdit):
            found = await store.watchers.get(change.edit.id)
            if found is None:
                raise NotFoundError(f"no watcher {change.edit.id!r}")
            pair = change.apply(found, now)
            await store.watchers.put(pair)
            return {"id": pair.id, "watcher": pair.model_dump(mode="json")}
        if isinstance(change, NewTimeAlert):
            alert = change.build(now)
            await store.time_alerts.put(alert)
            return {"id": alert.id, "time_alert": alert.model_dump(mode="json")}
        assert isinstance(change, NewNote)
        note = change.build(now)
        await store.notes.put(note)
        return {"id": note.id, "note": note.model_dump(mode="json")}

    return run


def _bind(session: Session, fn: Any, *, trading: bool = True) -> Any:
    async def handler(args: dict[str, Any], emit: Emit) -> Any:
        if trading:
            await session.start_trading()
        return await fn(session, args)

    return handler


# ------------------------------------------------------------------------------------ parsing
# Every action's JSON arguments are read by its model in `revagent.actions` (`from_channel`), and
# resolved against the account there (prices as a distance from the mark, the venue, the position).
def _action(args: dict[str, Any]) -> Any:
    from revagent.gateway import Action

    action_id = str(args.get("action_id") or "")
    if not action_id:
        raise UsageError("internal: the command carries no action id")
    ticket = _ticket.get()
    return Action.command(action_id, check=ticket.go if ticket is not None else None)


async def _open_intent(session: Session, args: dict[str, Any]) -> Any:
    from revagent.actions import Open

    action = Open.from_channel(args)  # a mistake is refused before the account is read
    return action.resolve(await session.fresh_account())


def _order(name: str) -> Callable[[Session, dict[str, Any]], Awaitable[Any]]:
    """The handler of the order action `name` (trade.close, .stop, .target, .cancel): its model
    reads the arguments and resolves them against a fresh account; the gateway runs the intent."""

    async def run(session: Session, args: dict[str, Any]) -> Any:
        from revagent.actions import ORDER_ACTIONS

        assert session.gateway is not None
        action = ORDER_ACTIONS[name].from_channel(args)  # a mistake is refused before the account is read
        intent = action.resolve(await session.fresh_account())
        result = await session.gateway.submit(intent, _action(args))
        return result.model_dump(mode="json")

    return run


# ------------------------------------------------------------------------------------ handlers
async def _trade_preview(session: Session, args: dict[str, Any]) -> Any:
    assert session.gateway is not None
    verdict = await session.gateway.preview(await _open_intent(session, args))
    return verdict.model_dump(mode="json")


async def _trade_open(session: Session, args: dict[str, Any]) -> Any:
    assert session.gateway is not None
    intent = await _open_intent(session, args)
    result = await session.gateway.submit(intent, _action(args), rationale=str(args.get("rationale") or ""))
    return result.model_dump(mode="json")


async def _trade_flatten(session: Session, args: dict[str, Any]) -> Any:
    assert session.gateway is not None
    results = await session.gateway.flatten(_action(args))
    return {"results": [r.model_dump(mode="json") for r in results],
            "ok": all(r.ok for r in results)}


async def _account_view(session: Session, args: dict[str, Any]) -> Any:
    from revagent.risk import risk_usage, status

    assert session.risk is not None
    # the live view (a viewer asks every few seconds); `fresh`: the exchange's figures, after a fill or
    # a flatten the viewer saw (the live view's equity lags them until its next reconcile)
    account = await (session.fresh_account() if args.get("fresh") else session.account())
    settings = await session.risk.settings()
    state = await session.risk.get()
    now = utc_now()
    return {"account": account.model_dump(mode="json"),
            "risk": status(state, now, settings).model_dump(mode="json"),
            "usage": risk_usage(account, settings, state, now).model_dump(mode="json")}


async def _account_mids(session: Session, args: dict[str, Any]) -> Any:
    """The live mid prices (what a viewer's panel follows between snapshots, about once a second)."""
    account = await session.account()
    return {"mids": {m: str(r.mid_px) for m, r in account.markets.items() if r.mid_px is not None}}


async def _risk_show(session: Session, args: dict[str, Any]) -> Any:
    from revagent.risk import risk_usage, status

    assert session.risk is not None
    settings = await session.risk.settings()
    sources = await session.risk.sources()
    state = await session.risk.get()
    now = utc_now()
    doc: dict[str, Any] = {
        "settings": {k: {"value": v, "source": sources[k]} for k, v in settings.model_dump(mode="json").items()},
        "status": status(state, now, settings).model_dump(mode="json"),
    }
    try:
        doc["usage"] = risk_usage(await session.account(), settings, state, now).model_dump(mode="json")
    except Exception as exc:  # the settings and state are still worth showing
        doc["usage_error"] = str(exc)
    return doc


async def _risk_set(session: Session, args: dict[str, Any]) -> Any:
    assert session.risk is not None
    key, value = str(args.get("key") or ""), str(args.get("value") or "")
    await still_wanted()
    settings = await session.risk.set(key, value)
    return {"key": key, "value": settings.model_dump(mode="json")[key]}


async def _risk_reset(session: Session, args: dict[str, Any]) -> Any:
    assert session.risk is not None
    key = str(args.get("key") or "")
    await still_wanted()
    return {"key": key, "reset": await session.risk.reset(key),
            "value": (await session.risk.settings()).model_dump(mode="json")[key]}


async def _risk_halt(session: Session, args: dict[str, Any]) -> Any:
    from revagent.actions import Halt

    assert session.risk is not None
    change = Halt.from_channel(args).resolve(None)
    await still_wanted()
    state = await session.risk.update(lambda current: change.apply(current, utc_now()))
    return {"halted": True, "by": state.halted_by}


async def _risk_resume(session: Session, args: dict[str, Any]) -> Any:
    from revagent.actions import Resume

    assert session.risk is not None
    change = Resume.from_channel(args).resolve(None)
    await still_wanted()
    await session.risk.update(lambda current: change.apply(current, utc_now()))
    return {"halted": False}


async def _risk_unlock(session: Session, args: dict[str, Any]) -> Any:
    from revagent.risk import unlock

    assert session.risk is not None
    if args.get("by") != "human":
        raise UsageError("only a human can lift a lockout")
    account = await session.fresh_account()
    settings = await session.risk.settings()
    await still_wanted()
    state = await session.risk.update(lambda current: unlock(current, account.equity, utc_now(), settings))
    return {"locked": False, "peak_equity": str(state.peak_equity)}


# -------------------------------------------------------------------------------------- modes
MODES = ("autonomous", "copilot", "readonly")


async def effective_modes(session: Session) -> dict[str, ApprovalMode]:
    """The approval mode per thread type: a runtime choice (`/mode`) over the wallet's config."""
    overrides = await session.store.settings.overrides()
    chat, alert = overrides.get("mode.chat"), overrides.get("mode.alert")
    return {"chat": cast("ApprovalMode", chat) if chat in MODES else session.wallet.chat_mode(),
            "alert": cast("ApprovalMode", alert) if alert in MODES else session.wallet.alert_mode()}


async def _mode_show(session: Session, args: dict[str, Any]) -> Any:
    return await effective_modes(session)


async def _mode_set(session: Session, args: dict[str, Any]) -> Any:
    import dataclasses

    from revagent.actions import SetMode

    change = SetMode.from_channel(args).resolve(None)
    await still_wanted()
    await session.store.settings.set(change.key, change.mode)
    modes = await effective_modes(session)
    if session.engine is not None:
        runner = session.engine.runner
        runner.settings = dataclasses.replace(runner.settings, chat_mode=modes["chat"], alert_mode=modes["alert"])
    return modes
