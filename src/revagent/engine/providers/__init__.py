"""Model providers behind one streaming interface (see `base.py`).

Importing this package does not import the anthropic SDK; `AnthropicProvider` imports it at its
first call. Import the concrete providers from their modules.
"""

from revagent.engine.providers.base import (
    ContentBlock,
    Finished,
    ImageBlock,
    Message,
    ModelRequest,
    Notice,
    Provider,
    ProviderError,
    StreamEvent,
    SystemBlock,
    TextBlock,
    TextDelta,
    ToolCall,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from revagent.engine.providers.pricing import Pricing, cost_usd, pricing_for

__all__ = [
    "ContentBlock",
    "Finished",
    "ImageBlock",
    "Message",
    "ModelRequest",
    "Notice",
    "Pricing",
    "Provider",
    "ProviderError",
    "StreamEvent",
    "SystemBlock",
    "TextBlock",
    "TextDelta",
    "ToolCall",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "Usage",
    "cost_usd",
    "pricing_for",
]
