"""Running a Session headless: logging, signals, and a clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime

from revagent.config import Config, ResolvedWallet
from revagent.session import Session


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


def setup_logging(level: str, *, log_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


async def run_daemon(config: Config, wallet: ResolvedWallet, *, log_json: bool) -> None:
    setup_logging(config.log_level, log_json=log_json)
    session = Session(config, wallet, role="daemon")
    await session.start()
    loop = asyncio.get_running_loop()

    stopping: list[asyncio.Task[None]] = []

    def on_signal(sig: signal.Signals) -> None:
        stopping.append(loop.create_task(session.stop(f"signal {sig.name}"), name="daemon:stop"))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    logging.getLogger("revagent.daemon").info("daemon running for %s (%s)", wallet.name, session.sid)
    await session.stopped.wait()
