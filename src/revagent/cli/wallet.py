"""`revagent wallet ...`: the configured wallets, and creating one (agent key + approval).

The master key never needs to live on the machine: `wallet new` generates only the agent key (a
mode-0600 file in the data dir) and approves it either with the master key typed once at a hidden
prompt (used for one signature, never stored, never logged) or, with `--print-approval`, by printing
what to approve in Hyperliquid's own UI. Paper wallets approve automatically with their generated
master key. `approve_with_master_key` and `approval_status` are plain async functions (tests drive
them against the simulator).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, command, load, print_json, say, table

if TYPE_CHECKING:
    from revagent.config import Config, ResolvedWallet
    from revagent.config.keys import SecretKey

app = typer.Typer(help="Wallets: one agent wallet per session.", no_args_is_help=True)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
APPROVAL_TIMEOUT_S = 10.0


def agent_name_for(wallet: str) -> str:
    """The name the agent is approved under. Hyperliquid replaces an agent approved under the same
    name, so each wallet gets its own ("rv-" + the wallet name, at most 16 characters)."""
    return ("rv-" + wallet)[:16]


@app.command("list")
@command
def list_(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List the configured wallets (a paper wallet named 'paper' exists with no config)."""
    from revagent.config.keys import master_address

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


# ------------------------------------------------------------------------------------------ show
async def approval_status(config: Config, wallet: ResolvedWallet, master: str, agent: str) -> dict[str, Any]:
    """Ask the venue whether `agent` is approved for `master`: {"status": approved|not_approved|unknown, ...}.

    Read-only (no signer); never raises: an unreachable venue is status "unknown" with the reason.
    """
    from revagent.errors import RevagentError
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.exchange.hyperliquid.http import RetryPolicy
    from revagent.venue import venue_url

    try:
        base_url = await venue_url(config, wallet)
        async with HyperliquidBridge(network=wallet.network, base_url=base_url, master=master,
                                     policy=RetryPolicy(attempts=2, timeout_s=5.0, base_delay_s=0.2)) as bridge:
            check = await bridge.check_agent(master, agent)
    except RevagentError as exc:
        return {"status": "unknown", "problem": exc.message}
    except Exception as exc:  # a paper venue that does not start, an unreadable answer
        return {"status": "unknown", "problem": f"{type(exc).__name__}: {exc}"}
    if check.ok:
        return {"status": "approved", "agent_name": check.agent_name, "valid_until_ms": check.valid_until_ms}
    return {"status": "not_approved", "problem": check.problem}


@app.command("show")
@command
async def show(
    name: Annotated[str | None, typer.Argument(help="Wallet name (default: default_wallet).")] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Ask the venue about the approval.")] = True,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Network, master and agent addresses, the agent key's source and file mode, approval status.
    Never the key itself."""
    import asyncio

    from revagent.config.keys import agent_key, master_address
    from revagent.errors import ConfigError
    from revagent.runtime.doctor import describe_key_source, file_mode

    cfg = load(config)
    w = cfg.wallet(name)
    master = await asyncio.to_thread(master_address, w, cfg.data_path)
    source, path = describe_key_source(w, cfg.data_path)
    doc: dict[str, Any] = {"name": w.name, "network": w.network, "default": w.name == cfg.default_wallet,
                           "master_address": master, "agent_address": None,
                           "agent_key": {"source": source, "path": str(path) if path else None,
                                         "mode": file_mode(path) if path else None, "problem": None},
                           "approval": {"status": "not_checked"}}
    try:
        doc["agent_address"] = (await asyncio.to_thread(agent_key, w, cfg.data_path)).address()
    except ConfigError as exc:
        doc["agent_key"]["problem"] = exc.message
    if check and doc["agent_address"]:
        doc["approval"] = await approval_status(cfg, w, master, doc["agent_address"])
    if json_out:
        print_json(doc)
        return
    key = doc["agent_key"]
    approval = doc["approval"]
    lines = [f"[bold]{w.name}[/bold]  {w.network.upper()}" + ("  (default)" if doc["default"] else ""),
             f"master   {master}",
             f"agent    {doc['agent_address'] or '[red]unavailable[/red]'}",
             f"key      {key['source']}" + (f"  mode {key['mode']}" if key["mode"] else "")
             + (f"  [red]{key['problem']}[/red]" if key["problem"] else ""),
             f"approval {approval['status']}" + (f": {approval['problem']}" if approval.get("problem") else "")]
    say("\n".join(lines))


# ------------------------------------------------------------------------------------------- new
async def approve_with_master_key(base_url: str, network: str, master: SecretKey, agent_address: str,
                                  name: str) -> dict[str, Any]:
    """Sign `approveAgent` with the master key and confirm it with the venue (`check_agent`).

    Used once by `wallet new`; the key object is the caller's to drop. RefusedError if the exchange
    refuses, ExchangeUnavailableError if it cannot be reached.
    """
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.exchange.onboarding import approve_agent

    await approve_agent(base_url, master, agent_address, name, is_mainnet=network == "mainnet",
                        timeout_s=APPROVAL_TIMEOUT_S)
    async with HyperliquidBridge(network="mainnet" if network == "mainnet" else "testnet", base_url=base_url,
                                 master=master.address()) as bridge:
        check = await bridge.check_agent(master.address(), agent_address)
    return {"status": "approved" if check.ok else "not_approved", "problem": check.problem,
            "agent_name": check.agent_name, "valid_until_ms": check.valid_until_ms}


def _approval_instructions(network: str, master: str, agent: str, name: str) -> str:
    site = "https://app.hyperliquid.xyz/API" if network == "mainnet" else "https://app.hyperliquid-testnet.xyz/API"
    return (f"Approve the agent in Hyperliquid's own UI, connected as the master account {master}:\n"
            f"  1. open {site}\n"
            f"  2. API wallet name: {name}\n"
            f"  3. API wallet address: {agent}   (do not generate a new one there)\n"
            f"  4. Authorize, choose the validity, and sign with the master wallet.\n"
            f"Then check it with: revagent wallet show")


def _load_for_new(config: Path | None) -> Config:
    """The config, where an explicit --config that does not exist yet is fine: `wallet new` creates it."""
    import os

    from revagent.config import load_config

    if config is not None and not config.exists():
        return load_config(None, environ={**os.environ, "REVAGENT_CONFIG": str(config)})
    return load(config)


def _config_path(config: Path | None) -> Path:
    from revagent.config import default_config_path

    return config if config is not None else default_config_path()


@app.command("new")
@command
async def new(
    name: Annotated[str, typer.Argument(help="The new wallet's name (letters, digits, '.', '_', '-').")],
    network: Annotated[str, typer.Option("--network", help="paper, testnet or mainnet.")] = "paper",
    master_address: Annotated[str | None, typer.Option(
        "--master-address", help="The master account (0x...). Needed with --print-approval.")] = None,
    print_approval: Annotated[bool, typer.Option(
        "--print-approval", help="Do not ask for the master key: print what to approve in Hyperliquid's UI.")]
    = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Create a wallet: generate its agent key (mode 0600), add it to the config, approve the agent.

    Exit 0 when created (and approved, or the approval printed); 6 or 8 when created but the exchange
    refused or could not be reached for the approval (retry in Hyperliquid's UI, as printed)."""
    from revagent.config.keys import SecretKey, wallet_dir
    from revagent.errors import UsageError

    if not _NAME.match(name):
        raise UsageError(f"NAME: {name!r}: a wallet name is 1-40 letters, digits, '.', '_' or '-'")
    if network not in ("paper", "testnet", "mainnet"):
        raise UsageError(f"--network: paper, testnet or mainnet (got {network!r})")
    if master_address is not None and not _ADDRESS.match(master_address):
        raise UsageError(f"--master-address: {master_address!r} is not a 0x-prefixed 40-hex-digit address")
    cfg = _load_for_new(config)
    if name in cfg.wallet_names():
        raise UsageError(f"wallet {name!r} already exists: refusing to overwrite it")
    path = _config_path(config)
    folder = wallet_dir(cfg.data_path, name)
    if network == "paper":
        doc = await _new_paper(cfg, path, name)
    else:
        if (folder / "agent.key").exists():
            raise UsageError(f"{folder / 'agent.key'} already exists: refusing to overwrite an agent key "
                             "(move it away first)")
        master_key: SecretKey | None = None
        if print_approval:
            if master_address is None:
                raise UsageError("--print-approval needs --master-address (the account the agent trades for)")
            master = master_address.lower()
        else:
            typed = typer.prompt(f"master private key for {network} (hidden; used once, never stored)",
                                 hide_input=True, err=True)
            try:
                master_key = SecretKey(typed)
            except ValueError:
                raise UsageError("the master key is 64 hex digits (optionally 0x-prefixed)") from None
            finally:
                del typed
            master = master_key.address()
            if master_address is not None and master_address.lower() != master:
                raise UsageError(f"the typed key belongs to {master}, not --master-address {master_address.lower()}")
        doc = await _new_live(cfg, path, name, network, master, master_key)
        del master_key
    failed = int(doc["approval"].pop("exit_code", 0))
    if json_out:
        print_json(doc)
    else:
        _describe_new(doc, path)
    if failed:
        raise typer.Exit(failed)  # the wallet exists; the approval failed (6 refused, 8 unreachable)


def _describe_new(doc: dict[str, Any], path: Path) -> None:
    name, network = doc["name"], doc["network"]
    say(f"[green]created[/green] wallet {name} ({network}) in {path}\n"
        f"master   {doc['master_address']}\nagent    {doc['agent_address']}\n"
        f"key      {doc['agent_key_file']} (mode 0600)\napproval {doc['approval']['status']}"
        + (f": {doc['approval']['problem']}" if doc["approval"].get("problem") else ""))
    if doc.get("instructions"):
        say(doc["instructions"])


async def _new_paper(cfg: Config, path: Path, name: str) -> dict[str, Any]:
    """Generate (or reuse, if the data dir already holds them) the paper keys, add the section, and
    approve the agent with the generated master key when the venue answers."""
    import asyncio

    from revagent.config.keys import paper_keys, read_key_file
    from revagent.config.write import add_wallet
    from revagent.errors import RevagentError
    from revagent.exchange.onboarding import approve_paper_agent

    keys = await asyncio.to_thread(paper_keys, cfg.data_path, name)
    await asyncio.to_thread(add_wallet, path, name, {"network": "paper"},
                            comment=f"paper wallet made by `revagent wallet new`; keys in {keys.agent_key_file.parent}")
    cfg = load(path)
    wallet = cfg.wallet(name)
    approval = await approval_status(cfg, wallet, keys.master_address, keys.agent_address)
    if approval["status"] == "not_approved":
        from revagent.venue import venue_url

        try:
            master = await asyncio.to_thread(read_key_file, keys.master_key_file, "paper master key file")
            await approve_paper_agent(await venue_url(cfg, wallet), master, keys.agent_address, "revagent",
                                      timeout_s=APPROVAL_TIMEOUT_S)
            approval = await approval_status(cfg, wallet, keys.master_address, keys.agent_address)
        except RevagentError as exc:
            approval = {"status": "unknown", "problem": exc.message}
    if approval["status"] == "unknown":
        approval["problem"] = f"{approval.get('problem')}; the agent is approved at the wallet's first trading use"
    return {"name": name, "network": "paper", "config": str(path), "master_address": keys.master_address,
            "agent_address": keys.agent_address, "agent_key_file": str(keys.agent_key_file), "approval": approval}


async def _new_live(cfg: Config, path: Path, name: str, network: str, master: str,
                    master_key: SecretKey | None) -> dict[str, Any]:
    import asyncio

    from revagent.config.keys import SecretKey, wallet_dir, write_key_file
    from revagent.config.write import add_wallet
    from revagent.errors import RevagentError
    from revagent.exchange.hyperliquid.bridge import MAINNET_API_URL, TESTNET_API_URL

    agent = SecretKey.generate()
    key_file = wallet_dir(cfg.data_path, name) / "agent.key"
    await asyncio.to_thread(write_key_file, key_file, agent)
    agent_address = agent.address()
    try:
        await asyncio.to_thread(add_wallet, path, name, {"network": network, "master_address": master,
                                                         "agent_key_file": str(key_file)},
                                comment=f"{network} wallet made by `revagent wallet new`; agent {agent_address}")
    except BaseException:
        key_file.unlink(missing_ok=True)  # nothing refers to it: do not leave a stray key behind
        raise
    agent_name = agent_name_for(name)
    doc: dict[str, Any] = {"name": name, "network": network, "config": str(path), "master_address": master,
                           "agent_address": agent_address, "agent_name": agent_name,
                           "agent_key_file": str(key_file)}
    if master_key is None:
        doc["approval"] = {"status": "pending", "problem": "approve it in Hyperliquid's UI"}
        doc["instructions"] = _approval_instructions(network, master, agent_address, agent_name)
        return doc
    base_url = MAINNET_API_URL if network == "mainnet" else TESTNET_API_URL
    try:
        doc["approval"] = await approve_with_master_key(base_url, network, master_key, agent_address, agent_name)
    except RevagentError as exc:
        doc["approval"] = {"status": "not_approved", "problem": exc.message, "exit_code": int(exc.exit_code)}
        doc["instructions"] = _approval_instructions(network, master, agent_address, agent_name)
    return doc
