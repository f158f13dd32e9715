"""Configuration and keys together: `settings` (the file, wallet sections, `REVAGENT_*` variables),
`keys` (agent and paper keys, never printed) and `write` (adding a wallet section to the file).

`from revagent.config import X` gives every name of `settings`.
"""

from __future__ import annotations

from revagent.config.settings import (
    DEFAULT_WALLET,
    ENV_PREFIX,
    AlertSettings,
    ApprovalMode,
    Config,
    EffortSetting,
    LLMSettings,
    ModeSettings,
    NotifySettings,
    PaperSettings,
    RateSettings,
    RedisSettings,
    ResolvedWallet,
    SessionSettings,
    SyncSettings,
    ThinkingSetting,
    WalletConfig,
    default_config_path,
    default_data_dir,
    load_config,
)

__all__ = [
    "DEFAULT_WALLET",
    "ENV_PREFIX",
    "AlertSettings",
    "ApprovalMode",
    "Config",
    "EffortSetting",
    "LLMSettings",
    "ModeSettings",
    "NotifySettings",
    "PaperSettings",
    "RateSettings",
    "RedisSettings",
    "ResolvedWallet",
    "SessionSettings",
    "SyncSettings",
    "ThinkingSetting",
    "WalletConfig",
    "default_config_path",
    "default_data_dir",
    "load_config",
]
