"""Issue 22.1: every trade tool's argument schema is derived from its action model.

Each trade tool's arguments are generated (`engine.tools.derive.action_args`) from the action the
tool builds: every property that is an action field comes from that field (type, bounds, default),
and the only properties declared by the tool door itself are its own (a trade named by `trade_id`,
a `reason`, the plan's `rationale`, the limit entry's type and expiry text). No class in the tool's
argument model declares an action field by hand. The schemas the model sees stay the pinned ones
(`test_tool_schemas.py`)."""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from revagent import actions
from revagent.actions.grammar import Price, PriceSpec, Usd
from revagent.engine.tools.base import schema_of
from revagent.engine.tools.derive import ActionArgs, From, action_args, build
from revagent.engine.tools.trade import TRADE_TOOLS

TOOL_ACTION: dict[str, type[BaseModel]] = {
    "open_trade": actions.Open, "close_position": actions.Close, "modify_stop": actions.Stop,
    "set_target": actions.Target, "cancel_order": actions.Cancel, "set_leverage": actions.ChangeLeverage,
    "adjust_margin": actions.Margin,
}
"""The trade tools that build a trader action from the model's arguments."""
NOT_DERIVED = {
    "ensure_stop": "the gateway's own idempotent protection, not a trader action",
    "flatten_all": "actions.Flatten has no field: the tool takes only the door's reason",
    "halt_trading": "actions.Halt's `by` is the agent with its reason: the tool takes only the door's reason",
}
DOOR_ONLY: dict[str, set[str]] = {
    "open_trade": {"entry_type", "rationale", "expires_in"},
    "close_position": {"market", "trade_id", "reason"},
    "modify_stop": {"market", "trade_id", "reason"},
    "set_target": {"market", "trade_id", "reason"},
}
"""The properties each tool door adds of its own (a trade by market or trade id; words for the plan)."""


def test_every_trade_tool_is_derived_or_listed_with_its_reason() -> None:
    assert {t.name for t in TRADE_TOOLS} == set(TOOL_ACTION) | set(NOT_DERIVED)


@pytest.mark.parametrize("name", sorted(TOOL_ACTION))
def test_the_tool_schema_comes_from_its_action_model(name: str) -> None:
    tool = next(t for t in TRADE_TOOLS if t.name == name)
    args = tool.args
    assert issubclass(args, ActionArgs) and args.__action__ is TOOL_ACTION[name]
    action = TOOL_ACTION[name]
    props = schema_of(args)["properties"]
    mapped = args.__from__
    # every property is an action field (through `From`) or one of the door's own
    assert set(props) == set(mapped) | DOOR_ONLY.get(name, set()), (name, set(props) - set(mapped))
    assert set(mapped.values()) <= set(action.model_fields)
    theirs = schema_of(action)["properties"]
    for tool_field, action_field in mapped.items():
        if tool_field == "leverage":  # the door's declared narrower type: whole leverage (see `WholeLeverage`)
            continue
        assert _core(props[tool_field]) == _core(theirs[action_field]), (name, tool_field)
    # no class of the argument model declares an action field by hand
    for cls in args.__mro__[1:]:
        if cls is ActionArgs or not issubclass(cls, BaseModel):
            continue
        hand = set(inspect.get_annotations(cls)) & set(mapped)
        assert not hand, (name, cls.__name__, hand)


def _core(prop: dict[str, Any]) -> Any:
    """A property's value schema: no words, default, null variant, distance form or non-empty rule."""
    prop = {k: v for k, v in prop.items() if k not in ("description", "default", "minLength")}
    if "anyOf" in prop:
        kept = [_core(p) for p in prop.pop("anyOf") if p.get("type") != "null" and "$ref" not in p]
        if len(kept) == 1:
            return {**prop, **kept[0]}
        prop["anyOf"] = kept
    return prop


class Sample(BaseModel):
    market: str
    stop_px: PriceSpec
    usd: Usd
    note: str = ""
    size: Decimal | None = Field(default=None, le=5)


def test_a_derived_tool_follows_the_action_field_it_names() -> None:
    args = action_args("SampleArgs", Sample, {"market": From(description="market"), "stop_px": From(),
                                              "add_usd": From("usd", required=False), "note": From(required=True),
                                              "size": From(), "reason": (str, Field(default=""))}, base=ActionArgs)
    schema = schema_of(args)
    assert list(schema["properties"]) == ["market", "stop_px", "add_usd", "note", "size", "reason"]
    assert schema["required"] == ["market", "stop_px", "note"]
    # a price from the model is absolute: the action's distance form is not offered
    assert schema["properties"]["stop_px"] == schema_of(action_args("P", type("M", (BaseModel,), {
        "__annotations__": {"stop_px": Price}}), {"stop_px": From()}, base=ActionArgs))["properties"]["stop_px"]
    assert "Distance" not in str(schema)
    assert schema["properties"]["note"]["minLength"] == 1  # text the agent owes is not empty
    assert schema["properties"]["size"]["anyOf"][0].get("maximum") == 5 or "5" in str(schema["properties"]["size"])
    ok = args.model_validate({"market": "BTC", "stop_px": "100", "add_usd": 5, "note": "why"})
    assert build(ok, Sample) == Sample(market="BTC", stop_px=Decimal(100), usd=Decimal(5), note="why")
    for bad in ({"market": "BTC", "stop_px": "2%", "note": "x"}, {"market": "BTC", "stop_px": 1, "note": ""},
                {"market": "BTC", "stop_px": 1, "note": "x", "size": 6}, {"market": "BTC", "stop_px": 1,
                                                                           "note": "x", "typo": 1}):
        with pytest.raises(ValidationError):
            args.model_validate(bad)
    with pytest.raises(TypeError, match="describes Sample, not Open"):
        build(ok, actions.Open)


def _sample(name: str) -> dict[str, Any]:
    return {"open_trade": {"market": "BTC", "side": "long", "stop_px": 59000, "target_px": 63000, "conviction": 60,
                           "risk_usd": 20, "thesis": "t", "invalidation": "i"},
            "close_position": {"market": "BTC", "fraction": "0.5"}, "modify_stop": {"market": "BTC", "stop_px": 1},
            "set_target": {"market": "BTC", "target_px": 70000}, "cancel_order": {"market": "BTC", "oid": 7},
            "set_leverage": {"market": "BTC", "leverage": 5}, "adjust_margin": {"market": "BTC", "remove_usd": 3},
            }[name]


@pytest.mark.parametrize("name", sorted(TOOL_ACTION))
def test_the_tool_arguments_build_their_action(name: str) -> None:
    from revagent.engine.tools.trade import ACTION_OF

    tool = next(t for t in TRADE_TOOLS if t.name == name)
    made = ACTION_OF[name](tool.args.model_validate(_sample(name)))
    assert type(made) is TOOL_ACTION[name] and made.origin == "agent"  # type: ignore[attr-defined]
    if name == "adjust_margin":
        assert (made.op, made.usd) == ("remove", Decimal(3))  # type: ignore[attr-defined]
