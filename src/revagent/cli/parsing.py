"""Parsing of command-line values with one-line errors naming the argument.

The grammar lives in `revagent.actions.grammar` (one place for every door); these are its names
for the shell's other commands (watchers, alerts).
"""

from __future__ import annotations

from revagent.actions.grammar import conviction, duration, market, positive_decimal, utc_time

__all__ = ["conviction", "duration", "market", "positive_decimal", "utc_time"]
