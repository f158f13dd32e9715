"""The trade tools the model sees change only on purpose: names, descriptions, effects, argument names
(in their order) and JSON schemas, pinned in `trade_tool_schemas.json` (generated from the tools of
main before issue 22.1; since updated with issue 16's thesis and invalidation on `open_trade` and the
`set_leverage` and `adjust_margin` tools, each change reviewed in that file's diff)."""

from __future__ import annotations

import json
from pathlib import Path

from revagent.engine.tools.base import schema_of
from revagent.engine.tools.trade import TRADE_TOOLS

PINNED = json.loads((Path(__file__).parent / "trade_tool_schemas.json").read_text())


def test_the_trade_tools_the_model_sees_are_unchanged() -> None:
    now = {t.name: {"description": t.description, "effect": t.effect, "input_schema": schema_of(t.args)}
           for t in TRADE_TOOLS}
    assert list(now) == list(PINNED)
    for name, tool in now.items():
        assert tool == PINNED[name], name
        assert list(tool["input_schema"]["properties"]) == list(PINNED[name]["input_schema"]["properties"]), name
