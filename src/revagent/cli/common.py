"""What every command shares: options, error handling with exit codes, JSON or rich output.

Command modules import only typer and this module at the top; everything heavy is imported inside
the command functions, so `revagent --help` stays fast.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from revagent.config import Config, ResolvedWallet
    from revagent.store.repos import SessionStore

T = TypeVar("T")

WalletOpt = Annotated[
    str | None, typer.Option("--wallet", "-w", help="Wallet name from the config (default: default_wallet).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: $REVAGENT_CONFIG or ~/.config/revagent).")
]


def to_jsonable(value: Any) -> Any:
    """Decimals as exact strings, times as ISO 8601 UTC, models as dicts."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        from revagent.models import format_duration

        return format_duration(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(doc), indent=2) + "\n")


def fail(message: str, *, code: str, exit_code: int, json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps({"error": {"code": code, "message": message}}) + "\n")
    else:
        sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(exit_code)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command: run it (awaiting it if async) and turn revagent errors into exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from revagent.errors import RevagentError

        json_out = bool(kwargs.get("json_out", False))
        try:
            result = fn(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return result
        except RevagentError as exc:
            fail(exc.message, code=exc.code, exit_code=int(exc.exit_code), json_out=json_out)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:
            # Redis errors that escaped a repository: unreachable is exit 5, anything else 1.
            from revagent.store.connection import UNAVAILABLE

            if isinstance(exc, UNAVAILABLE):
                fail(f"Redis is unreachable: {exc}", code="redis_unreachable", exit_code=5, json_out=json_out)
            raise
        return None

    return wrapper


DECLINED = 11
"""The exit code of a command whose confirmation prompt was answered no (or not answered): nothing was done."""


def confirm(question: str, *, yes: bool, err: bool = False) -> None:
    """Ask before acting, unless `--yes`; a no, an end of input or Ctrl-C at the prompt exits DECLINED."""
    if yes:
        return
    try:
        answered = typer.confirm(question, default=False, err=err)
    except typer.Abort:
        answered = False
    if not answered:
        sys.stderr.write("declined: nothing was done\n")
        raise typer.Exit(DECLINED)


def load(config_path: Path | None = None) -> Config:
    from revagent.config import load_config

    return load_config(config_path)


def wallet_of(config: Config, name: str | None) -> ResolvedWallet:
    return config.wallet(name)


@asynccontextmanager
async def session_store(config: Config, wallet: ResolvedWallet) -> AsyncIterator[SessionStore]:
    """The wallet's store for reading and for writes that go through the store (notes, watchers,
    time alerts), which publish invalidations so a running owner picks them up."""
    from revagent.runtime.session import open_redis, resolve_session_id
    from revagent.store.repos import SessionStore

    redis = await open_redis(config)
    try:
        yield SessionStore(redis, await resolve_session_id(config, wallet))
    finally:
        await redis.aclose()


def usage_error(message: str) -> Exception:
    from revagent.errors import UsageError

    return UsageError(message)


def run_coro(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*row)
    Console().print(t)


def say(message: str) -> None:
    from rich.console import Console

    Console().print(message, highlight=False)


async def remove_record(config_path: Path | None, wallet: str | None, repo: str, record_id: str, what: str,
                        json_out: bool) -> None:
    """`<group> rm ID` for notes, watchers and time alerts: delete through the store (which publishes
    the invalidation) or exit 3 when there is no such record."""
    from revagent.errors import NotFoundError

    cfg = load(config_path)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        if not await getattr(store, repo).delete(record_id):
            raise NotFoundError(f"no {what} with id {record_id!r}")
    if json_out:
        print_json({"removed": record_id})
    else:
        say(f"removed {what} {record_id}")
