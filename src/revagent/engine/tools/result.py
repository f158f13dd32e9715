"""What a tool call produced (`ToolResult`) and the compact JSON its content is written in.

Below `engine.tools.base` (the registry) and `engine.tools.effects` (exactly-once records), which
both need it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from revagent.engine.providers.base import ImageBlock


@dataclass(frozen=True)
class ToolResult:
    """What a tool call produced. `content` goes back to the model (JSON or text); `image`, when set,
    is sent with it. `data` is structured for the UI and `ask --json`; `orders` lists client order
    ids the call caused, `trade_id` the trade it opened or touched, `proposal_id` the proposal it
    created (copilot) — these are the audit links."""

    content: str
    is_error: bool = False
    image: ImageBlock | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    orders: tuple[str, ...] = ()
    trade_id: str | None = None
    proposal_id: str | None = None

    @staticmethod
    def ok(doc: Any, **kwargs: Any) -> ToolResult:
        return ToolResult(dumps(doc), **kwargs)

    @staticmethod
    def error(message: str, **kwargs: Any) -> ToolResult:
        return ToolResult(message, is_error=True, **kwargs)


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)
