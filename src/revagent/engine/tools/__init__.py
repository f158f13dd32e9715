"""The discretionary tools (pydantic arguments, generated schemas, executed through the gateway).

`default_tools()` is the full tool list in its stable order (the list is prompt-cached, so its
order never changes between turns).
"""

from __future__ import annotations

from revagent.engine.tools.base import (
    Args,
    MarketData,
    ProposalSink,
    Tool,
    ToolContext,
    ToolRegistry,
    ToolResult,
    ToolServices,
    schema_of,
)
from revagent.engine.tools.memory import MEMORY_TOOLS
from revagent.engine.tools.python import PYTHON_TOOLS
from revagent.engine.tools.read import READ_TOOLS
from revagent.engine.tools.trade import TRADE_TOOLS


def default_tools() -> ToolRegistry:
    """Read, trade, then alert and memory tools, then the python worker."""
    return ToolRegistry((*READ_TOOLS, *TRADE_TOOLS, *MEMORY_TOOLS, *PYTHON_TOOLS))


__all__ = [
    "MEMORY_TOOLS",
    "PYTHON_TOOLS",
    "READ_TOOLS",
    "TRADE_TOOLS",
    "Args",
    "MarketData",
    "ProposalSink",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "ToolServices",
    "default_tools",
    "schema_of",
]
