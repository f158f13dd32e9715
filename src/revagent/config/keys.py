"""Private keys: where they come from, how they are kept, and how they never leak.

An agent key comes from an env var or from a key file that only its owner can read (mode 0600).
Paper wallets get a generated master key and agent key in the data dir at first use. A `SecretKey`
never shows its value in `repr`, `str`, logs or JSON; `reveal()` is the one door, used by signing.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revagent.errors import ConfigError

if TYPE_CHECKING:
    from revagent.config import ResolvedWallet

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class SecretKey:
    """A secp256k1 private key that refuses to be printed."""

    __slots__ = ("_hex",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not _HEX_KEY.match(value):
            raise ValueError("a private key is 64 hex digits, optionally prefixed with 0x")
        self._hex = "0x" + value.removeprefix("0x").lower()

    def reveal(self) -> str:
        return self._hex

    def address(self) -> str:
        """The lowercase 0x address of this key."""
        from eth_keys.datatypes import PrivateKey

        return str(PrivateKey(bytes.fromhex(self._hex[2:])).public_key.to_checksum_address()).lower()

    def account(self) -> Any:
        """An `eth_account` LocalAccount for the SDK's signing helpers."""
        from eth_account import Account

        return Account.from_key(self._hex)

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(secrets.token_hex(32))

    def __repr__(self) -> str:
        return "SecretKey(***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a SecretKey cannot be pickled")


def read_key_file(path: Path, what: str = "key file") -> SecretKey:
    """Read a key file, refusing one that anyone but its owner can read or write."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(
            f"{what} {path} is accessible by other users (mode {mode:04o}); "
            f"refusing to use it. Fix with: chmod 600 {path}"
        )
    try:
        return SecretKey(path.read_text())
    except ValueError:
        raise ConfigError(f"{what} {path} does not hold a private key (64 hex digits)") from None


def write_key_file(path: Path, key: SecretKey) -> None:
    """Create a key file with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.reveal() + "\n")


@dataclass(frozen=True)
class PaperKeys:
    master_address: str
    agent_address: str
    master_key_file: Path
    agent_key_file: Path


def wallet_dir(data_dir: Path, name: str) -> Path:
    return data_dir / "wallets" / name


def paper_keys(data_dir: Path, name: str) -> PaperKeys:
    """The paper wallet's generated keys, created at first use (master and agent, both mode 0600).

    The addresses are kept beside the keys in plain files so that reading them is cheap. Processes
    that start together on a fresh wallet (a daemon, a TUI, shell commands) make one set of keys: the
    creation runs under a lock on the wallet's folder, and `addresses` is written last, whole (a
    rename), so a process that finds it finds complete keys.
    """
    folder = wallet_dir(data_dir, name)
    master_file, agent_file = folder / "master.key", folder / "agent.key"
    addresses = folder / "addresses"
    if not (_read_addresses(addresses) and master_file.exists() and agent_file.exists()):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not master_file.exists():
                    write_key_file(master_file, SecretKey.generate())
                if not agent_file.exists():
                    write_key_file(agent_file, SecretKey.generate())
                if not _read_addresses(addresses):
                    master = read_key_file(master_file, "paper master key file").address()
                    agent = read_key_file(agent_file, "paper agent key file").address()
                    partial = folder / f".addresses.{os.getpid()}"
                    partial.write_text(f"{master}\n{agent}\n")
                    os.replace(partial, addresses)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    found = _read_addresses(addresses)
    if not found:
        raise ConfigError(f"paper wallet addresses file {addresses} is empty or damaged: delete it to rebuild it")
    return PaperKeys(found[0], found[1], master_file, agent_file)


def _read_addresses(path: Path) -> tuple[str, str] | None:
    try:
        parts = path.read_text().split()
    except FileNotFoundError:
        return None
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def master_address(wallet: ResolvedWallet, data_dir: Path) -> str:
    if wallet.master_address:
        return wallet.master_address
    if wallet.network == "paper":
        return paper_keys(data_dir, wallet.name).master_address
    raise ConfigError(f"wallet {wallet.name!r} has no master_address")


def agent_key(wallet: ResolvedWallet, data_dir: Path, environ: dict[str, str] | None = None) -> SecretKey:
    """The wallet's agent (API) key: env var, key file, or the generated paper key."""
    env = os.environ if environ is None else environ
    if wallet.agent_key_env:
        value = env.get(wallet.agent_key_env)
        if not value:
            raise ConfigError(f"wallet {wallet.name!r}: env var {wallet.agent_key_env} (agent_key_env) is not set")
        try:
            return SecretKey(value)
        except ValueError:
            raise ConfigError(
                f"wallet {wallet.name!r}: env var {wallet.agent_key_env} does not hold a private key"
            ) from None
    if wallet.agent_key_file:
        return read_key_file(Path(wallet.agent_key_file).expanduser(), f"wallet {wallet.name!r} agent key file")
    if wallet.network == "paper":
        return read_key_file(paper_keys(data_dir, wallet.name).agent_key_file, "paper agent key file")
    raise ConfigError(f"wallet {wallet.name!r} has no agent key configured")
