"""Running the TUI for one wallet: start the Session, cold-load the snapshot, run the app, stop.

`run_tui(config, wallet)` is what `revagent tui` calls (and `python -m revagent.tui`). When a daemon
already owns the wallet, the screen opens as a viewer of the daemon's session instead (`run_viewer`). The Session
starts (store, lease) and the cold snapshot is read before the app, so the first frame already
shows what is known; the exchange link comes up in the background after the first paint (the panel
says "connecting…" until then, or why it failed: never blank, never a guess). Logs go to
`<data>/logs/tui.log`, never to the terminal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from logging.handlers import RotatingFileHandler

from revagent.bus import Event
from revagent.config import Config, ResolvedWallet
from revagent.errors import OwnerBusyError
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.session_port import SessionAdapter

log = logging.getLogger(__name__)
VIEWER_REFRESH_SECONDS = 2.0


def setup_file_logging(config: Config) -> None:
    """Log to a rotating file in the data dir: the terminal belongs to the app."""
    folder = config.data_path / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(folder / "tui.log", maxBytes=5_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(config.log_level).upper(), logging.INFO))


async def run_tui(config: Config, wallet: ResolvedWallet) -> None:
    """Run the main screen until the trader quits. Raises OwnerBusyError when a daemon owns the wallet."""
    await asyncio.to_thread(setup_file_logging, config)
    session = Session(config, wallet, role="tui")
    try:
        await session.start()
    except OwnerBusyError as exc:
        log.info("%s: opening as a viewer of the owner's session", exc.message)
        await run_viewer(config, wallet)
        return
    try:
        adapter = SessionAdapter(session)
        initial = await adapter.load_snapshot()
        app = RevagentApp(adapter, initial=initial)
        await app.run_async()
    finally:
        await session.stop("the TUI closed")


async def run_viewer(config: Config, wallet: ResolvedWallet) -> None:
    """The screen of a wallet a daemon owns: it renders the shared state and sends everything to the
    owner (see `viewer_port`). Raises OwnerBusyError, saying why, when the owner does not answer."""
    from revagent.tui.viewer_port import ViewerPort

    port = await ViewerPort.open(config, wallet)

    def live_events() -> AsyncIterator[Event]:
        # The owner's mirrored events, live (its turns reach this screen through the chat command,
        # so they are left out here: they would show twice).
        from revagent.events import TurnEvent
        from revagent.store.invalidations import SessionEventFeed

        return aiter(SessionEventFeed(port.store.redis, port.store.keys.events,
                                      exclude=frozenset({TurnEvent.type})))

    port.events = live_events
    try:
        initial = await port.load_snapshot()
        if initial.account is None:
            raise OwnerBusyError(f"wallet {wallet.name!r} is owned by another process that does not answer "
                                 f"({initial.problem}); the TUI cannot open as its viewer")
        app = RevagentApp(port, initial=initial, refresh_interval=VIEWER_REFRESH_SECONDS)
        await app.run_async()
    finally:
        await port.aclose()
