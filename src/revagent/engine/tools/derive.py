"""Tool arguments derived from the trader action models (`revagent.actions`, issue 22.1).

A trade tool's argument model is generated from its action model: each tool field names the action
field it is (`From`; the same name unless aliased), and takes that field's type, bounds and default
from the action. The tool door adds only what is its own:

- the words the model reads (`description`);
- requiredness where the agent owes more than a human (`required=True`: a thesis on every trade;
  a required text field must then be non-empty);
- absolute prices: the model's prices are never a distance from the mark, so a `PriceSpec`
  (`Price | Distance`) narrows to `Price` on every tool field;
- a narrower type where the exchange needs one (`type=`, with its reason where it is used);
- door-only fields that are not part of the action (a trade named by `trade_id`, a `reason`, the
  plan's `rationale`), declared with the tool, in the schema order the model sees (`order`).

`build(args, Action, **over)` makes the action back from validated arguments (the fields mapped
back to the action's names, `over` for what the door computes: origin, a market resolved from a
trade id). Adding a trade action is then one model in `actions`, its `resolve`, and one
`action_args(...)` line here per door.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticUndefined

from revagent.actions.grammar import Distance, Price
from revagent.engine.tools.base import Args

T = TypeVar("T", bound=BaseModel)
A = TypeVar("A", bound="ActionArgs")


@dataclass(frozen=True)
class From:
    """One tool field taken from the action's field `field` ('' = the tool field's own name)."""

    field: str = ""
    description: str | None = None
    required: bool | None = None  # None: as in the action
    type: Any = None  # None: the action field's type (prices made absolute)


def _order_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    """The properties (and the required list) in the order the tool declares (`__tool_order__`)."""
    order: Sequence[str] = getattr(cls, "__tool_order__", ())
    props = schema.get("properties")
    if not order or not isinstance(props, dict):
        return
    rank = {name: i for i, name in enumerate(order)}
    schema["properties"] = dict(sorted(props.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    if isinstance(schema.get("required"), list):
        schema["required"] = sorted(schema["required"], key=lambda n: rank.get(n, len(rank)))


class ActionArgs(Args):
    """Base of the derived argument models: which action they describe and how their fields map."""

    model_config = ConfigDict(json_schema_extra=_order_schema)

    __action__: ClassVar[type[BaseModel]]
    __from__: ClassVar[dict[str, str]] = {}
    __tool_order__: ClassVar[tuple[str, ...]] = ()

    def arg(self, name: str) -> Any:
        """A field's value by name (the generated fields are not known to the type checker)."""
        return getattr(self, name)


def _absolute(annotation: Any) -> Any:
    """`annotation` with `Distance` dropped from a union (a price the model gives is absolute)."""
    if get_origin(annotation) in (Union, UnionType):
        kept = tuple(a for a in get_args(annotation) if a is not Distance)
        if len(kept) == len(get_args(annotation)):
            return annotation
        return Union[kept] if len(kept) > 1 else kept[0]  # noqa: UP007 (a runtime-built union)
    return Price if annotation is Distance else annotation


def _not_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation):
        kept = tuple(a for a in get_args(annotation) if a is not NoneType)
        return Union[kept] if len(kept) > 1 else kept[0]  # noqa: UP007 (a runtime-built union)
    return annotation


def _optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation):
        return annotation
    return annotation | None


def _field(action: type[BaseModel], name: str, spec: From) -> tuple[Any, Any]:
    src = action.model_fields[spec.field or name]
    annotation = spec.type if spec.type is not None else _absolute(src.annotation)
    if spec.type is None and src.metadata:
        annotation = Annotated[(annotation, *src.metadata)]
    required = src.is_required() if spec.required is None else spec.required
    extra: dict[str, Any] = {}
    if required:
        default: Any = PydanticUndefined
        annotation = _not_none(annotation)
        if not src.is_required() and src.annotation is str:
            extra["min_length"] = 1  # text the agent owes is not empty
    else:
        default = None if src.is_required() else src.default
        if default is None:
            annotation = _optional(annotation)
    return annotation, Field(default, description=spec.description, **extra)


def action_args(name: str, action: type[BaseModel], fields: Mapping[str, From | tuple[Any, Any]], *,
                base: type[A]) -> type[A]:
    """The argument model of a tool for `action` (see the module docstring). `fields` in the order
    the model sees them: a `From` is an action field, a `(type, Field(...))` a door-only one."""
    derived: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for tool_name, spec in fields.items():
        if isinstance(spec, From):
            derived[tool_name] = _field(action, tool_name, spec)
            mapping[tool_name] = spec.field or tool_name
        else:
            derived[tool_name] = spec
    model = create_model(name, __base__=base, __module__=base.__module__, **derived)
    model.__action__ = action
    model.__from__ = mapping
    model.__tool_order__ = (*base.model_fields, *fields) if base.model_fields else tuple(fields)
    return model


def build(args: ActionArgs, action: type[T], **over: Any) -> T:
    """The action `args` describe: every mapped field under the action's name (None left to the
    action's default; two tool fields for one action field: the one given), then `over`."""
    cls = type(args)
    if cls.__action__ is not action:
        raise TypeError(f"{cls.__name__} describes {cls.__action__.__name__}, not {action.__name__}")
    values: dict[str, Any] = {}
    for tool_name, field in cls.__from__.items():
        value = getattr(args, tool_name)
        if value is not None:
            values[field] = value
    values.update(over)
    return action(**values)
