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
from collections.abc import Awaitable, Callable
from logging.handlers import RotatingFileHandler

from revagent.config import Config, ResolvedWallet
from revagent.errors import OwnerBusyError
from revagent.runtime.session import Session
from revagent.tui.app import RevagentApp
from revagent.tui.session_port import SessionAdapter
from revagent.tui.wallets import WalletRow

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


async def run_screens(config: Config, wallet_name: str | None) -> None:
    """`revagent tui [--wallet W]`: with no `--wallet` while several wallets are configured, the
    wallet switcher comes first (quitting it opens nothing); a wallet chosen later from the palette
    ("Switch wallet") replaces the screen: its session, or a viewer of the daemon that owns it."""
    name = wallet_name
    if name is None:
        name = await pick_wallet(config) if len(config.wallets) > 1 else config.wallet().name
    while name is not None:
        name = await run_tui(config, config.wallet(name))


async def pick_wallet(config: Config, current: str | None = None) -> str | None:
    """The wallet switcher alone (no session runs): the chosen wallet's name, or None."""
    from revagent.tui.screens.wallets import WalletPickerApp
    from revagent.tui.wallets import wallet_rows

    return await WalletPickerApp(await wallet_rows(config)).run_async()


async def run_tui(config: Config, wallet: ResolvedWallet) -> str | None:
    """Run the main screen until the trader quits (None) or picks another wallet (its name). Opens
    as a viewer when a daemon owns the wallet; raises OwnerBusyError when that owner does not answer."""
    await asyncio.to_thread(setup_file_logging, config)
    session = Session(config, wallet, role="tui")
    try:
        await session.start()
    except OwnerBusyError as exc:
        log.info("%s: opening as a viewer of the owner's session", exc.message)
        return await run_viewer(config, wallet)
    try:
        adapter = SessionAdapter(session)
        initial = await adapter.load_snapshot()
        app = RevagentApp(adapter, initial=initial, wallets=_rows_of(config))
        await app.run_async()
        return app.switch_to
    finally:
        await session.stop("the TUI closed")


def _rows_of(config: Config) -> Callable[[], Awaitable[list[WalletRow]]] | None:
    """What the palette's wallet switcher lists (None with a single wallet: nothing to switch to)."""
    if len(config.wallets) < 2:
        return None
    from revagent.tui.wallets import wallet_rows

    return lambda: wallet_rows(config)


async def run_viewer(config: Config, wallet: ResolvedWallet) -> str | None:
    """The screen of a wallet a daemon owns: it renders the shared state and sends everything to the
    owner (see `viewer_port`). Raises OwnerBusyError, saying why, when the owner does not answer."""
    from revagent.tui.viewer_port import ViewerPort

    port = await ViewerPort.open(config, wallet)

    port.events = port.mirror_feed  # the owner's events, live
    try:
        initial = await port.load_snapshot()
        if initial.account is None:
            raise OwnerBusyError(f"wallet {wallet.name!r} is owned by another process that does not answer "
                                 f"({initial.problem}); the TUI cannot open as its viewer")
        app = RevagentApp(port, initial=initial, refresh_interval=VIEWER_REFRESH_SECONDS, wallets=_rows_of(config))
        await app.run_async()
        return app.switch_to
    finally:
        await port.aclose()
