"""Adding a wallet section to the config file without disturbing anything else in it.

The file is edited as text: everything already in it (comments, order, formatting) stays byte for
byte; the new `[wallets.NAME]` table is appended at the end. An existing section is never
overwritten. The result must parse and validate as a whole before it replaces the file (atomically,
keeping the file's mode), under a lock so two `revagent wallet new` runs cannot interleave.

Two rules keep the existing wallets working:
- a config with no wallets has an implicit paper wallet named "paper"; adding the first wallet
  also writes `[wallets.paper]` so that wallet (and its data) stays where it was;
- a config with exactly one wallet and no `default_wallet` uses that wallet by default; adding a
  second one prepends `default_wallet = "<it>"` so the default does not change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from revagent.config import DEFAULT_WALLET, load_config
from revagent.errors import ConfigError, UsageError


def toml_value(value: str | bool | int) -> str:
    """A TOML literal for a string, bool or int (JSON string escapes are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def wallet_section(name: str, values: Mapping[str, str | bool | int], comment: str = "") -> str:
    """The text of one `[wallets.NAME]` table (with an optional comment line above it)."""
    lines = [f"# {line}" for line in comment.splitlines()] if comment else []
    lines.append(f"[wallets.{name}]")
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_wallet(path: Path, name: str, values: Mapping[str, str | bool | int], *, comment: str = "") -> str:
    """Append `[wallets.NAME]` with `values` to the config file at `path` (created if missing).

    Raises UsageError if the wallet exists (in the file, or as the implicit "paper" wallet of a
    config without wallets) and ConfigError if the file does not parse, or would not parse or
    validate afterwards. Returns the text that was added.
    """
    with _locked(path):
        text = path.read_text() if path.exists() else ""
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix it before adding a wallet") from None
        wallets = data.get("wallets") or {}
        if not isinstance(wallets, dict):
            raise ConfigError(f"{path}: 'wallets' is not a table")
        if name in wallets or (not wallets and name == DEFAULT_WALLET):
            raise UsageError(f"wallet {name!r} already exists in {path}: refusing to overwrite it")
        prefix = ""
        added = ""
        if not wallets:
            added += wallet_section(DEFAULT_WALLET, {"network": "paper"},
                                    "the paper wallet revagent used while no wallet was configured") + "\n"
        elif len(wallets) == 1 and "default_wallet" not in data:
            prefix = f"default_wallet = {toml_value(next(iter(wallets)))}\n"
        added += wallet_section(name, values, comment)
        body = text if not text or text.endswith("\n") else text + "\n"
        new_text = prefix + body + ("\n" if body else "") + added
        _validate(path, new_text, name, values)
        _replace(path, new_text)
        return added


def _validate(path: Path, new_text: str, name: str, values: Mapping[str, str | bool | int]) -> None:
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: the wallet section cannot be appended to this file as written ({exc}); "
                          f"add [wallets.{name}] by hand") from None
    section = parsed.get("wallets", {}).get(name, {})
    if any(section.get(k) != v for k, v in values.items()):
        raise ConfigError(f"{path}: appending [wallets.{name}] would not give the intended values; add it by hand")
    probe = path.with_name(f".{path.name}.check-{os.getpid()}")
    try:
        probe.write_text(new_text)
        load_config(probe, environ={}).wallet(name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: with the new wallet the config would not validate: {exc.message}") from None
    finally:
        probe.unlink(missing_ok=True)


def _replace(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
