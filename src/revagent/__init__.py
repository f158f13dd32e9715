"""revagent: a terminal-first AI trading agent for Hyperliquid perpetuals."""

__version__ = "0.1.0"
