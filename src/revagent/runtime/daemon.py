"""Running a Session headless: logging (stderr and a rotating file in the data dir), signals, a clean stop.

SIGTERM or SIGINT: the alert runner stops taking alerts and the running alert turn finishes (up to
`DRAIN_SECONDS`), then the session stops. SIGKILL loses nothing: an alert taken and not acknowledged
is redelivered at the next start, a fired level not yet recorded is corrected from the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revagent.config import Config, ResolvedWallet
from revagent.runtime.session import Session

if TYPE_CHECKING:
    from revagent.alerts.service import AlertService


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


DRAIN_SECONDS = 30.0
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5


def log_path(config: Config, wallet: ResolvedWallet) -> Path:
    """The daemon's log file: `<data dir>/logs/daemon-<wallet>.log` (rotated at 10 MB, 5 kept)."""
    return config.data_path / "logs" / f"daemon-{wallet.name}.log"


def setup_logging(level: str, *, log_json: bool, log_file: Path | None = None) -> None:
    formatter = _JsonFormatter() if log_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handlers = [handler]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = RotatingFileHandler(log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
        rotating.setFormatter(formatter)
        handlers.append(rotating)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, RotatingFileHandler):
            old.close()
    root.handlers[:] = handlers
    root.setLevel(level.upper())


async def run_daemon(config: Config, wallet: ResolvedWallet, *, log_json: bool, log_to_file: bool = True) -> int:
    """Run until SIGTERM/SIGINT (returns 0) or until the session must stop: returns
    ExitCode.LEASE_LOST (10) when the lease was lost, 1 when a task died (see README, exit codes).
    Errors at start-up raise (config 4, Redis unreachable 5, owned by another process 7)."""
    setup_logging(config.log_level, log_json=log_json, log_file=log_path(config, wallet) if log_to_file else None)
    log = logging.getLogger("revagent.daemon")
    session = Session(config, wallet, role="daemon")
    await session.start()
    from revagent.runtime.owner_status import publish_owner_status

    session.tasks.spawn("owner-status", publish_owner_status(session))
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []
    alerts: Any = None

    async def drain_then_stop(reason: str) -> None:
        if alerts is not None:
            await alerts.drain(DRAIN_SECONDS)
        await session.stop(reason)

    def on_signal(sig: signal.Signals) -> None:
        if stopping:
            return
        log.info("%s: finishing the running alert turn, then stopping", sig.name)
        stopping.append(loop.create_task(drain_then_stop(f"signal {sig.name}"), name="daemon:stop"))

    # Signals are handled from here on, so a SIGTERM during start-up still stops cleanly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    starting = loop.create_task(_start_runtime(session, log), name="daemon:start-runtime")
    stopped = loop.create_task(session.stopped.wait(), name="daemon:stopped")
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not starting.done():
        starting.cancel()
        await asyncio.wait({starting})
        return session.exit_code
    starting.result()
    alerts, owned = await _alerts_of(session)
    session.phase("running")
    log.info("daemon running for %s (%s)", wallet.name, session.sid)
    if alerts is not None:
        alerts.notifier.notify("daemon", f"revagent daemon started: {wallet.name}", str(session.sid))
    try:
        await session.stopped.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if alerts is not None:
            reason = session.stop_reason or "stopped"
            died = not reason.startswith("signal")
            alerts.notifier.notify("daemon", f"revagent daemon {'died' if died else 'stopped'}: {wallet.name}",
                                   reason, urgent=died)
            await alerts.notifier.flush(5.0)
            if owned:
                await alerts.aclose()
        log.info("daemon stopped: %s (exit code %d)", session.stop_reason, session.exit_code)
    return session.exit_code


async def _start_runtime(session: Session, log: logging.Logger) -> None:
    """The session's runtime, started again with backoff while Redis is unreachable (its parts'
    start-ups are idempotent), so an outage during start-up is ridden out like one after it."""
    from revagent.store.connection import UNAVAILABLE

    delay = 0.2
    while True:
        try:
            await session.start_runtime()
            return
        except UNAVAILABLE as exc:
            log.warning("Redis unreachable during start-up, trying again in %.1fs: %s", delay, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def _alerts_of(session: Session) -> tuple[AlertService, bool]:
    """The session's alert service; built and started here while the Session does not build one."""
    existing = session.alerts
    if existing is not None:
        return existing, False
    from revagent.alerts.service import AlertService

    service = AlertService.for_session(session)
    await service.start(session.tasks)
    return service, True
