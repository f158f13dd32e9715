"""Configuration: the TOML file, `REVAGENT_*` environment overrides, and the resolved wallet.

Precedence (lowest first): built-in defaults < `[global]` sections of the file < a wallet's own
sections (`[wallets.NAME.risk]`, `[wallets.NAME.llm]`) < `REVAGENT_*` env vars (`__` nests:
`REVAGENT_RISK__MAX_LEVERAGE=3`, `REVAGENT_REDIS__URL=...`). Runtime changes made with
`revagent risk set` live in Redis and win over all of these until reset.

Every mistake (a typo, a wrong type, an unknown network, a missing key) becomes one `ConfigError`
naming the file, the setting and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from revagent.errors import ConfigError
from revagent.models import Duration, Network
from revagent.risk.settings import RiskSettings

ENV_PREFIX = "REVAGENT_"
DEFAULT_WALLET = "paper"
M = TypeVar("M", bound=BaseModel)
_WALLET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def default_config_path() -> Path:
    explicit = os.environ.get("REVAGENT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "revagent" / "config.toml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "revagent"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_CLUSTER_URL = re.compile(r"^redis\+cluster://([^@/]*@)?[^,:/@\s]+:\d{1,5}(,[^,:/@\s]+:\d{1,5})*/?$")


class RedisSettings(_Section):
    url: str = ""
    """Empty: revagent runs its own Redis (AOF on) under the data dir. Else redis://, rediss://, unix://,
    or redis+cluster://host:port,host:port for a Redis Cluster."""
    fsync: Literal["always", "everysec", "no"] = "everysec"
    cluster: bool = False
    """True: `url` (redis://host:port[,host:port]) names a Redis Cluster's start-up nodes."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
            raise ValueError(
                "expected a URL starting with redis://, rediss://, unix:// or redis+cluster:// (or empty)")
        if v.startswith("redis+cluster://") and not _CLUSTER_URL.match(v):
            raise ValueError("expected redis+cluster://[:password@]host:port[,host:port...]")
        return v


ApprovalMode = Literal["autonomous", "copilot", "readonly"]


ThinkingSetting = Literal["adaptive", "lowest", "off"]
EffortSetting = Literal["", "low", "medium", "high", "xhigh", "max"]
_PRICE = re.compile(r"^\s*\$?\d+(\.\d+)?\s*/\s*\$?\d+(\.\d+)?\s*$")


class LLMSettings(_Section):
    """`model`: default the newest Sonnet of the capability table (engine/providers/capabilities.py).
    `thinking` / `effort` apply to chat threads, `alert_thinking` / `alert_effort` to alert threads
    (see config.example.toml); `max_tokens` includes thinking and is capped at the model's max output.
    `unknown_model_price`: 'INPUT/OUTPUT' USD per million tokens for a model the table does not know;
    '' refuses turns on such a model while a budget is on."""

    provider: Literal["anthropic", "offline"] = "anthropic"
    model: str = "claude-sonnet-5-5"
    base_url: str = ""
    api_key_env: str = "ANTHROPIC_API_KEY"
    max_tokens: Annotated[int, Field(ge=256, le=128000)] = 16000
    temperature: Annotated[float, Field(ge=0, le=1)] = 0.3
    thinking: ThinkingSetting = "adaptive"
    alert_thinking: ThinkingSetting = "adaptive"
    effort: EffortSetting = ""
    alert_effort: EffortSetting = "medium"
    unknown_model_price: str = ""
    timeout: Duration = timedelta(seconds=120)
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    fallback: str = "offline"
    """'' (none), 'offline', or another model name to try when the primary is unreachable."""
    max_usd_per_alert_turn: Annotated[Decimal, Field(ge=0)] = Decimal("0.50")
    max_usd_per_day: Annotated[Decimal, Field(ge=0)] = Decimal("10")
    context_budget_tokens: Annotated[int, Field(ge=4000)] = 120000
    strategy_file: str = ""

    @field_validator("unknown_model_price")
    @classmethod
    def _price(cls, v: str) -> str:
        if v.strip() and not _PRICE.fullmatch(v):
            raise ValueError("expected 'INPUT/OUTPUT' USD per million tokens, e.g. '15/75'")
        return v.strip()


class ModeSettings(_Section):
    """Approval modes per thread type; empty means the network's default (see README)."""

    chat: ApprovalMode | Literal[""] = ""
    alerts: ApprovalMode | Literal[""] = ""
    proposal_timeout: Duration = timedelta(minutes=10)


class SyncSettings(_Section):
    snapshot_interval: Duration = timedelta(seconds=10)
    entry_wait: Duration = timedelta(seconds=20)  # a new entry waits this long for `consistent`, then is refused


class RateSettings(_Section):
    """Request-weight budgets per venue (see README, "Rate budget")."""

    weight_per_minute: Annotated[int, Field(ge=0)] = 1200  # per upstream host (mainnet, testnet); 0 = none
    paper_weight_per_minute: Annotated[int, Field(ge=0)] = 0  # the paper venue: 0 = no budget
    chunk: Annotated[int, Field(ge=1, le=1200)] = 40  # weight a process reserves per Redis round trip
    agent_check_ttl: Duration = timedelta(hours=6)  # a positive agent-approval check is reused this long
    egress: str = ""
    """The egress address (public IP) this host's exchange requests leave from: hosts behind one
    address set the same value and share one budget (and the 10-users-per-IP count). Empty: this host."""


class AlertSettings(_Section):
    concurrency: Annotated[int, Field(ge=1, le=8)] = 1
    early_warning_fraction: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.5")
    liquidation_warning_pct: Annotated[Decimal, Field(gt=0, le=50)] = Decimal("10")
    missed_horizon: Duration = timedelta(hours=6)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    max_trade_turns_per_hour: Annotated[int, Field(ge=1, le=120)] = 6
    """Alert turns one trade may start in a rolling hour; past it the scheduler sends one notification."""


class NotifySettings(_Section):
    webhook_url: str = ""
    desktop: bool = True
    kinds: list[str] = Field(
        default_factory=lambda: ["alert_started", "alert_finished", "alert_failed", "alert_throttled", "fill",
                                 "lockout", "daemon", "proposal", "health"]
    )


class PaperSettings(_Section):
    balance: Annotated[Decimal, Field(gt=0)] = Decimal("10000")
    venue_url: str = ""
    """Empty: revagent runs the local simulator as the shared paper venue. Else its base URL."""
    prices: str = "live"
    """Where the local paper venue's market comes from: "live" (the upstream's universe, books, trades,
    candles and funding; synthetic, and said so, when it cannot be reached), "synthetic" (a seeded random
    walk) or "replay:FILE"."""
    upstream: str = ""
    """With prices = "live": a Hyperliquid-compatible API's base URL; "" is Hyperliquid mainnet."""

    @field_validator("prices")
    @classmethod
    def _known_prices(cls, value: str) -> str:
        if value not in ("live", "synthetic") and not (value.startswith("replay:") and len(value) > 7):
            raise ValueError(f'must be "live", "synthetic" or "replay:FILE", not {value!r}')
        return value


class WalletConfig(_Section):
    """One named wallet section: `[wallets.NAME]`."""

    network: Network = "paper"
    master_address: str = ""
    agent_key_env: str = ""
    agent_key_file: str = ""
    risk: dict[str, Any] = Field(default_factory=dict)
    llm: dict[str, Any] = Field(default_factory=dict)
    modes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("master_address")
    @classmethod
    def _address(cls, v: str) -> str:
        if v and not re.fullmatch(r"0x[0-9a-fA-F]{40}", v):
            raise ValueError("expected a 0x-prefixed 40-hex-digit address")
        return v.lower()


class Config(_Section):
    default_wallet: str = DEFAULT_WALLET
    data_dir: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    redis: RedisSettings = RedisSettings()
    llm: LLMSettings = LLMSettings()
    risk: RiskSettings = RiskSettings()
    modes: ModeSettings = ModeSettings()
    sync: SyncSettings = SyncSettings()
    rate: RateSettings = RateSettings()
    alerts: AlertSettings = AlertSettings()
    notify: NotifySettings = NotifySettings()
    paper: PaperSettings = PaperSettings()
    wallets: dict[str, WalletConfig] = Field(default_factory=dict)

    # Where this config came from, for messages; not a setting.
    source: str = Field(default="(defaults)", exclude=True)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def wallet_names(self) -> list[str]:
        return sorted(self.wallets) if self.wallets else [DEFAULT_WALLET]

    def wallet(self, name: str | None = None) -> ResolvedWallet:
        """The wallet `name` (or the default one) with its settings merged over the global ones."""
        name = name or self.default_wallet
        if not self.wallets and name == DEFAULT_WALLET:
            section = WalletConfig(network="paper")
        elif name in self.wallets:
            section = self.wallets[name]
        else:
            known = ", ".join(self.wallet_names())
            raise ConfigError(f"{self.source}: no wallet named {name!r} (configured: {known})", code="unknown_wallet")
        if section.network != "paper" and not section.master_address:
            raise ConfigError(
                f"{self.source}: wallets.{name}.master_address is required for a {section.network} wallet "
                "(the master account's 0x address; the agent key only signs)"
            )
        if section.network != "paper" and not (section.agent_key_env or section.agent_key_file):
            raise ConfigError(
                f"{self.source}: wallets.{name} needs agent_key_env (an env var name) or agent_key_file "
                "(a file with mode 0600) for its agent key"
            )
        risk = _merge(self.source, f"wallets.{name}.risk", RiskSettings, self.risk, section.risk)
        llm = _merge(self.source, f"wallets.{name}.llm", LLMSettings, self.llm, section.llm)
        modes = _merge(self.source, f"wallets.{name}.modes", ModeSettings, self.modes, section.modes)
        return ResolvedWallet(
            name=name,
            network=section.network,
            master_address=section.master_address,
            agent_key_env=section.agent_key_env,
            agent_key_file=section.agent_key_file,
            risk=risk,
            llm=llm,
            modes=modes,
        )


class ResolvedWallet(_Section):
    name: str
    network: Network
    master_address: str
    agent_key_env: str
    agent_key_file: str
    risk: RiskSettings
    llm: LLMSettings
    modes: ModeSettings

    def chat_mode(self) -> ApprovalMode:
        if self.modes.chat:
            return self.modes.chat
        return "copilot" if self.network == "mainnet" else "autonomous"

    def alert_mode(self) -> ApprovalMode:
        if self.modes.alerts:
            return self.modes.alerts
        return "copilot" if self.network == "mainnet" else "autonomous"


def _merge(source: str, where: str, model: type[M], base: M, overrides: Mapping[str, Any]) -> M:
    if not overrides:
        return base
    data = base.model_dump()
    data.update(overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc, prefix=where)) from None


def _describe(source: str, exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        setting = ".".join(p for p in (prefix, loc) if p) or "(top level)"
        if err["type"] == "extra_forbidden":
            what = "unknown setting (a typo?)"
        else:
            what = err["msg"]
            if "input" in err and not isinstance(err["input"], dict | list):
                what += f" (got {err['input']!r})"
        lines.append(f"{source}: {setting}: {what}")
    return "\n".join(lines)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`REVAGENT_RISK__MAX_LEVERAGE=3` -> {"risk": {"max_leverage": "3"}}. Path vars are skipped."""
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in ("REVAGENT_CONFIG",) or key.startswith("REVAGENT_TEST_"):
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    return tree


def _deep_update(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the config file (missing is fine: defaults and the paper wallet) and the environment."""
    environ = os.environ if environ is None else environ
    explicit = path is not None
    if path is None:
        given = environ.get("REVAGENT_CONFIG")
        path = Path(given).expanduser() if given else default_config_path()
    data: dict[str, Any] = {}
    source = str(path)
    if path.exists():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise ConfigError(f"{path}: a value cannot be read: {str(exc)[:120]}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    else:
        source = f"{path} (not present: defaults)"
    overrides = _env_overrides(environ)
    if "data_dir" not in overrides and environ.get("REVAGENT_DATA_DIR"):
        overrides["data_dir"] = environ["REVAGENT_DATA_DIR"]
    _deep_update(data, overrides)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc)) from None
    for name in config.wallets:
        if not _WALLET_NAME.match(name):
            raise ConfigError(f"{source}: wallets.{name}: a wallet name is 1-40 letters, digits, '.', '_' or '-'")
    config = config.model_copy(update={"source": source})
    if config.wallets and "default_wallet" not in data and config.default_wallet not in config.wallets:
        if len(config.wallets) == 1:
            config = config.model_copy(update={"default_wallet": next(iter(config.wallets))})
        else:
            raise ConfigError(f"{source}: default_wallet: set it to one of {', '.join(sorted(config.wallets))}")
    if config.wallets and config.default_wallet not in config.wallets:
        raise ConfigError(
            f"{source}: default_wallet: {config.default_wallet!r} is not one of the wallets "
            f"({', '.join(sorted(config.wallets))})"
        )
    return config
