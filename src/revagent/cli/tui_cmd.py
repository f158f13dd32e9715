"""`revagent tui`: the main screen (mount with `app.command("tui")(tui_cmd.tui)` in cli/main.py)."""

from __future__ import annotations

from revagent.cli.common import ConfigOpt, WalletOpt, command, load


@command
async def tui(wallet: WalletOpt = None, config: ConfigOpt = None) -> None:
    """The main screen: chat and alert threads, the live account panel, slash commands (ctrl+q quits).
    With several wallets configured and no --wallet, a wallet switcher comes first."""
    from revagent.tui.run import run_screens

    cfg = load(config)
    if wallet is not None:
        cfg.wallet(wallet)  # an unknown name is refused here, before any screen
    await run_screens(cfg, wallet)
