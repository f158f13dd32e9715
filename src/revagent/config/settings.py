"""Configuration: the TOML file, `REVAGENT_*` environment overrides, and the resolved wallet.

`Config` is a pydantic-settings `BaseSettings` with two sources, read only by `load_config`: the
TOML file and the `REVAGENT_*` variables (prefix `REVAGENT_`, `__` nests:
`REVAGENT_RISK__MAX_LEVERAGE=3`, `REVAGENT_REDIS__URL=...`, `REVAGENT_WALLETS__MAIN__RISK__...`;
a list or a whole section is written as JSON). `Config()` alone reads nothing: defaults only.

Precedence (lowest first): built-in defaults < `[global]` sections of the file < a wallet's own
sections (`[wallets.NAME.risk]`, `[wallets.NAME.llm]`) < `REVAGENT_*` env vars. Runtime changes made
with `revagent risk set` live in Redis and win over all of these until reset.

Every mistake (a typo, a wrong type, an unknown network, a missing key) becomes one `ConfigError`
naming the file (or the variable), the setting and what was expected.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

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
    python_spare: bool = True
    """Keep one `run_python` worker warm per session (started with the engine, in the background)."""

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


Interval = Annotated[Duration, Field(gt=timedelta(0))]
"""A duration that paces a loop: zero would spin it."""


class SyncSettings(_Section):
    """The sync loop's policy timings (sync/options.py has the rest)."""

    snapshot_interval: Duration = timedelta(seconds=10)
    entry_wait: Duration = timedelta(seconds=20)  # a new entry waits this long for `consistent`, then is refused
    risk_interval: Interval = timedelta(seconds=5)  # the risk state is updated at least this often
    correction_cooldown: Duration = timedelta(seconds=5)  # the same correction is not retried sooner
    protect_unconfirmed_after: Duration = timedelta(milliseconds=1500)
    """A stop missing from a view no REST snapshot confirmed yet is repaired after this long anyway."""
    reconcile_backoff_max: Interval = timedelta(seconds=60)  # longest wait between failed reconciliations
    history: Interval = timedelta(days=365)  # how far back a new wallet's first reconciliation reads fills


class SessionSettings(_Section):
    lease_ttl: Annotated[Duration, Field(ge=timedelta(seconds=1))] = timedelta(seconds=15)
    """The wallet's ownership lease: renewed every third of this; a dead owner's wallet is free after it."""


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
    trade_refresh: Interval = timedelta(seconds=30)
    """Open trades are re-read and their stops verified at least this often, even without an event."""
    health_grace: Duration = timedelta(seconds=30)
    """A link down for this long while positions are open raises a health alert."""
    prices_stale_after: Duration = timedelta(seconds=60)
    """No mid price for this long (and `health_grace`) while positions are open raises a health alert."""
    approval_warning: Duration = timedelta(hours=24)
    """While positions are open, warn when the agent's approval expires within this long."""
    approval_check_every: Interval = timedelta(minutes=10)


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


class Config(BaseSettings):
    """Every setting. Built by `load_config` from the file and the environment (see the module doc)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False)

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
    session: SessionSettings = SessionSettings()
    wallets: dict[str, WalletConfig] = Field(default_factory=dict)

    # Where this config came from, for messages; not a setting.
    source: str = Field(default="(defaults)", exclude=True)
    # The `REVAGENT_*` variables read, as a tree ({"risk": {"max_leverage": "3"}}) and by setting path.
    _env: dict[str, Any] = PrivateAttr(default_factory=dict)
    _env_names: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: the arguments, the environment, the file; outside `load_config`, only the arguments."""
        load = _LOADING.get()
        if load is None:
            return (init_settings,)
        return (init_settings, *load.sources)

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
        risk = self._merge(name, "risk", RiskSettings, self.risk, section.risk)
        llm = self._merge(name, "llm", LLMSettings, self.llm, section.llm)
        modes = self._merge(name, "modes", ModeSettings, self.modes, section.modes)
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

    def _merge(self, wallet: str, part: str, model: type[M], base: M, section: Mapping[str, Any]) -> M:
        """The wallet's section over the global one (file and environment), then the environment's
        own values for this part again on top: a `REVAGENT_*` variable beats the wallet section."""
        env = self._env.get(part)
        overrides = {**section, **(env if isinstance(env, dict) else {})}
        if not overrides:
            return base
        try:
            return model.model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            raise ConfigError(_describe(self.source, exc, self._env_names, prefix=("wallets", wallet, part))) from None


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


def _describe(source: str, exc: ValidationError, env_names: Mapping[tuple[str, ...], str],
              prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for err in exc.errors():
        loc = (*prefix, *(str(p) for p in err["loc"]))
        setting = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            what = "unknown setting (a typo?)"
        else:
            what = err["msg"]
            if "input" in err and not isinstance(err["input"], dict | list):
                what += f" (got {err['input']!r})"
        lines.append(f"{_where(source, loc, env_names)}: {setting}: {what}")
    return "\n".join(lines)


def _where(source: str, loc: tuple[str, ...], env_names: Mapping[tuple[str, ...], str]) -> str:
    """The variable that set `loc` (or a section above it), else the file."""
    for end in range(len(loc), 0, -1):
        name = env_names.get(tuple(p.lower() for p in loc[:end]))
        if name:
            return f"{name} (environment)"
    return source


@dataclass(frozen=True)
class _Load:
    """What one `load_config` call reads, for `Config.settings_customise_sources`."""

    sources: tuple[PydanticBaseSettingsSource, ...] = field(default=())


_LOADING: ContextVar[_Load | None] = ContextVar("revagent_config_load", default=None)


class _TomlFile(TomlConfigSettingsSource):
    """The config file; a file that cannot be read or parsed is a ConfigError naming it."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            return super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path}: not valid TOML: {exc}") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise ConfigError(f"{file_path}: a value cannot be read: {str(exc)[:120]}") from None
        except OSError as exc:
            raise ConfigError(f"{file_path}: cannot read: {exc.strerror}") from None


_NOT_SETTINGS = ("REVAGENT_CONFIG",)  # where the file is; REVAGENT_TEST_* belong to the test suite


class _Environment(EnvSettingsSource):
    """`REVAGENT_*` variables of the given mapping (not always `os.environ`), upper-case prefix only."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given = {k: v for k, v in environ.items() if _is_setting_variable(k)}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._given.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name == "source":  # not a setting
            return None, field_name, False
        return super().get_field_value(field, field_name)


def _is_setting_variable(name: str) -> bool:
    return name.startswith(ENV_PREFIX) and name not in _NOT_SETTINGS and not name.startswith("REVAGENT_TEST_")


def _env_paths(environ: Mapping[str, str]) -> tuple[dict[tuple[str, ...], str], list[str]]:
    """Each `REVAGENT_*` variable's setting path, and the errors of those that name no setting (or
    hold a list or a section that is not JSON): pydantic-settings would ignore the first kind."""
    names: dict[tuple[str, ...], str] = {}
    errors: list[str] = []
    for var, value in environ.items():
        if not _is_setting_variable(var):
            continue
        path = tuple(p.lower() for p in var[len(ENV_PREFIX):].split("__") if p)
        if not path:
            continue
        names[path] = var
        leaf = _setting_type(path)
        setting = ".".join(path)
        if leaf is None:
            errors.append(f"{var} (environment): {setting}: unknown setting (a typo? sections nest with '__', "
                          f"e.g. REVAGENT_RISK__MAX_LEVERAGE)")
        elif _is_complex(leaf):
            try:
                json.loads(value)
            except ValueError:
                errors.append(f"{var} (environment): {setting}: expected JSON (a list or a table, e.g. "
                              f"'[\"fill\", \"lockout\"]'), got {value!r}")
    return names, errors


def _setting_type(path: tuple[str, ...]) -> Any | None:
    """The annotation of the setting at `path` under Config, or None if there is no such setting."""
    current: Any = Config
    for part in path:
        if current is Any:
            return Any
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None or (current is Config and part == "source"):
                return None
            current = info.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    return current


def _is_complex(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (list, dict, set, tuple)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the config file (missing is fine: defaults and the paper wallet) and the environment."""
    environ = os.environ if environ is None else environ
    explicit = path is not None
    if path is None:
        given = environ.get("REVAGENT_CONFIG")
        path = Path(given).expanduser() if given else default_config_path()
    source = str(path)
    file: _TomlFile | None = None
    if path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: cannot read: not a file")
        file = _TomlFile(Config, toml_file=path)
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    else:
        source = f"{path} (not present: defaults)"
    env_names, env_errors = _env_paths(environ)
    if env_errors:
        raise ConfigError("\n".join(env_errors))
    env = _Environment(Config, environ)
    token = _LOADING.set(_Load(sources=(env, file) if file is not None else (env,)))
    try:
        config = Config(source=source)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc, env_names)) from None
    except SettingsError as exc:  # a value pydantic-settings could not decode (checked above: a fallback)
        raise ConfigError(f"{source}: environment: {exc}") from None
    finally:
        _LOADING.reset(token)
    config._env = env()
    config._env_names = env_names
    for name in config.wallets:
        if not _WALLET_NAME.match(name):
            raise ConfigError(f"{source}: wallets.{name}: a wallet name is 1-40 letters, digits, '.', '_' or '-'")
    chosen = "default_wallet" in config.model_fields_set
    if config.wallets and not chosen and config.default_wallet not in config.wallets:
        if len(config.wallets) == 1:
            config = config.model_copy(update={"default_wallet": next(iter(config.wallets))})
        else:
            raise ConfigError(f"{source}: default_wallet: set it to one of {', '.join(sorted(config.wallets))}")
    if config.wallets and config.default_wallet not in config.wallets:
        raise ConfigError(
            f"{_where(source, ('default_wallet',), env_names)}: default_wallet: {config.default_wallet!r} is not "
            f"one of the wallets ({', '.join(sorted(config.wallets))})"
        )
    return config
