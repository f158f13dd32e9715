"""The risk engine: pure verdicts on order intents. No I/O, no clock of its own (`now` is passed in)."""

from revagent.risk.settings import RiskSettings

__all__ = ["RiskSettings"]
