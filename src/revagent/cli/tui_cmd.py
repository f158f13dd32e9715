"""`revagent tui`: the main screen (mount with `app.command("tui")(tui_cmd.tui)` in cli/main.py)."""

from __future__ import annotations

from revagent.cli.common import ConfigOpt, WalletOpt, command, load


@command
async def tui(wallet: WalletOpt = None, config: ConfigOpt = None) -> None:
    """The main screen: chat and alert threads, the live account panel, slash commands (ctrl+q quits)."""
    from revagent.tui.run import run_tui

    cfg = load(config)
    await run_tui(cfg, cfg.wallet(wallet))
