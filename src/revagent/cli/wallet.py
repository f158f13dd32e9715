"""`revagent wallet ...`: the configured wallets."""

from __future__ import annotations

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, command, load, print_json, table

app = typer.Typer(help="Wallets: one agent wallet per session.", no_args_is_help=True)


@app.command("list")
@command
def list_(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List the configured wallets (a paper wallet named 'paper' exists with no config)."""
    from revagent.keys import master_address

    cfg = load(config)
    rows = []
    for name in cfg.wallet_names():
        w = cfg.wallet(name)
        address = master_address(w, cfg.data_path)
        key_source = (f"env {w.agent_key_env}" if w.agent_key_env else w.agent_key_file
                      or ("generated (data dir)" if w.network == "paper" else "-"))
        rows.append({"name": name, "network": w.network, "master_address": address, "agent_key": key_source,
                     "default": name == cfg.default_wallet})
    if json_out:
        print_json({"wallets": rows})
        return
    table("Wallets", ["", "name", "network", "master address", "agent key"],
          [["*" if r["default"] else "", str(r["name"]), str(r["network"]).upper(), str(r["master_address"]),
            str(r["agent_key"])] for r in rows])
