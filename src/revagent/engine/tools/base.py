"""The tool framework: pydantic argument models, generated JSON schemas, approval, and one executor.

A `Tool` is a name, a description, a pydantic argument model (its JSON schema is generated from
the model and sent to the model as `input_schema`), an `effect`, and an async `run(args, ctx)`.

`ToolRegistry.execute(name, raw_input, ctx)` never raises for a bad call: an unknown tool, invalid
arguments (every pydantic error listed), a mode that forbids the effect, a risk refusal (every
reason listed) and an unexpected exception all come back as a `ToolResult` with `is_error=True`,
which the runner feeds back to the model so it can correct itself. Only `LeaseLostError` propagates:
a process that no longer owns the wallet must stop acting.

Effects and approval modes (`ctx.mode`):

| effect       | autonomous | copilot                 | readonly |
|--------------|------------|-------------------------|----------|
| `read`       | runs       | runs                    | runs     |
| `memory`     | runs       | runs                    | runs     |
| `protective` | runs       | runs                    | runs     |
| `trade`      | runs       | becomes a proposal      | refused  |

A tool may declare a call protective at run time (`protective_when`): `modify_stop` that tightens
the stop is protective. Copilot proposals are delegated to `ctx.proposals` (see `engine.proposals`).

Every tool whose effect is not `read` runs at most once per tool-call id (`ToolRegistry.run_once`,
`engine.tools.effects`): a re-run after a crash returns the recorded result. An input over
`MAX_TOOL_INPUT_CHARS` is never run (`bound_tool_input`; the runner stores the placeholder).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

# The bounded value types (and their JSON schema) of every door: one definition, in the action layer.
from revagent.actions.grammar import Fraction as Fraction
from revagent.actions.grammar import Price as Price
from revagent.actions.grammar import Usd as Usd
from revagent.engine.providers.base import ToolSpec
from revagent.engine.tools.effects import EffectScope, ToolCallLog, fingerprint, result_doc, result_of
from revagent.engine.tools.result import ToolResult as ToolResult  # the result type lives below base and effects
from revagent.engine.tools.result import dumps as dumps
from revagent.errors import LeaseLostError
from revagent.store.tool_calls import commit_writes

if TYPE_CHECKING:
    from revagent.engine.snapshot import SnapshotSource
    from revagent.gateway import Gateway
    from revagent.risk import AccountView
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.store.repos import SessionStore
    from revagent.store.risk import RiskStore
    from revagent.worker import WorkerPool

log = logging.getLogger(__name__)

Effect = Literal["read", "memory", "protective", "trade"]
Mode = Literal["autonomous", "copilot", "readonly"]
ThreadKind = Literal["chat", "alert"]



class Args(BaseModel):
    """Base of every tool's arguments: unknown keys are an error (a typo must not do nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketData(Protocol):
    """Public market data (the Hyperliquid bridge satisfies it)."""

    async def meta_and_asset_ctxs(self) -> tuple[Any, list[Any]]: ...

    async def all_mids(self) -> dict[str, Decimal]: ...

    async def l2_book(self, coin: str) -> Any: ...

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Any]: ...


class ProposalSink(Protocol):
    """Where copilot mode sends a trade call instead of executing it (see `engine.proposals`)."""

    async def propose(self, tool: Tool, args: Args, ctx: ToolContext) -> ToolResult: ...


@dataclass
class ToolServices:
    """The session parts tools act through. Built once per session; shared by every thread."""

    gateway: Gateway
    plans: TradePlans
    journal: OrderJournal
    risk: RiskStore
    store: SessionStore
    clock: Callable[[], datetime]
    snapshot: SnapshotSource | None = None
    market: MarketData | None = None
    account: Callable[[], Awaitable[AccountView | None]] | None = None
    proposals: ProposalSink | None = None
    python: WorkerPool | None = None
    """The session's warm python worker (`run_python`); None: each call starts a worker cold."""


@dataclass(frozen=True)
class ToolContext:
    """One tool call: which thread, which call (its id seeds the orders' client ids), the mode.
    `effects` is set by the registry while an effectful tool runs (see `engine.tools.effects`)."""

    thread_id: str
    tool_call_id: str
    thread_kind: ThreadKind
    mode: Mode
    services: ToolServices
    effects: EffectScope | None = None

    @property
    def rerun(self) -> bool:
        """True when an earlier run of this very call (same id, tool and arguments) was cut short."""
        return self.effects is not None and self.effects.rerun

    async def commit(self, result: ToolResult, writes: Callable[[Any], None]) -> ToolResult:
        """Apply a Redis effect (`writes` queues its commands on a MULTI pipeline) and record `result`
        as this call's result in the same transaction: after a crash, both or neither."""
        if self.effects is not None:
            return await self.effects.commit(result, writes)
        await commit_writes(self.services.store, writes)
        return result


RunFn = Callable[[Any, ToolContext], Awaitable[ToolResult]]
ProtectiveFn = Callable[[Any, ToolContext], Awaitable[bool]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[Args]
    run: RunFn
    effect: Effect = "read"
    protective_when: ProtectiveFn | None = None
    preview: Callable[[Any, ToolContext], Awaitable[dict[str, Any]]] | None = None

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, schema_of(self.args))


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema for the API: an object schema without pydantic's `title` noise."""
    schema: dict[str, Any] = _strip_titles(model.model_json_schema())
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


MAX_TOOL_INPUT_CHARS = 16_000
"""A tool call's input (as compact JSON) above this is never stored nor run: the largest valid input
(a note or a time alert's prompt of 4,000 characters, a watcher with two theses) is far smaller."""
OMITTED_INPUT_KEY = "_omitted_input"


def bound_tool_input(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """`raw`, or when it is over `MAX_TOOL_INPUT_CHARS` a short placeholder that stands for it in the
    transcript (and is resent with every later request instead of it); running a call with the
    placeholder returns the error to the model (`ToolRegistry.parse`)."""
    size = len(json.dumps(raw, separators=(",", ":"), default=str))
    if size <= MAX_TOOL_INPUT_CHARS and OMITTED_INPUT_KEY not in raw:
        return dict(raw)
    return {OMITTED_INPUT_KEY: f"the input of this {name} call ({size:,} characters) was over the "
                               f"{MAX_TOOL_INPUT_CHARS:,}-character limit; it was dropped, not run"}


def validation_message(tool: str, exc: ValidationError) -> str:
    """Every pydantic error, one per line, with where it is: what the model needs to fix the call."""
    lines = [f"invalid arguments for {tool} ({exc.error_count()} error(s)):"]
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        lines.append(f"- {where}: {msg}")
    return "\n".join(lines)


class ToolRegistry:
    """The tools one thread may call, by name, in a stable order (the tool list is prompt-cached)."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            if t.name in self._tools:
                raise ValueError(f"duplicate tool {t.name}")
            self._tools[t.name] = t
        self._specs = tuple(t.spec() for t in tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> tuple[ToolSpec, ...]:
        return self._specs

    def parse(self, name: str, raw: Mapping[str, Any]) -> tuple[Tool, Args] | ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult.error(f"unknown tool {name!r}; the tools are: {', '.join(self._tools)}")
        bounded = bound_tool_input(name, raw)
        if OMITTED_INPUT_KEY in bounded:
            return ToolResult.error(f"{name} not run: its input was too large ({bounded[OMITTED_INPUT_KEY]}). "
                                    "Call it again with a shorter input (notes and prompts are at most 4,000 "
                                    "characters).")
        try:
            return tool, tool.args.model_validate(dict(raw))
        except ValidationError as exc:
            return ToolResult.error(validation_message(name, exc))

    async def execute(self, name: str, raw: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        """Validate, apply the approval mode, run. Never raises but for a lost lease."""
        parsed = self.parse(name, raw)
        if isinstance(parsed, ToolResult):
            return parsed
        tool, args = parsed
        try:
            effect = tool.effect
            if effect == "trade" and tool.protective_when is not None and await tool.protective_when(args, ctx):
                effect = "protective"
            if effect == "trade" and ctx.mode == "readonly":
                return ToolResult.error(f"{name} refused: this thread is read-only (no orders). Tell the trader "
                                        "what you would do instead.")
            if effect == "trade" and ctx.mode == "copilot":
                if ctx.services.proposals is None:
                    return ToolResult.error(f"{name} refused: copilot mode but no proposal channel is configured")
                return await ctx.services.proposals.propose(tool, args, ctx)
            return await self.run_once(tool, args, ctx)
        except LeaseLostError:
            raise
        except Exception as exc:
            log.exception("tool %s failed", name)
            return ToolResult.error(f"{name} failed: {type(exc).__name__}: {exc}")

    async def run_approved(self, name: str, raw: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        """Run a call the trader approved (a copilot proposal): no mode check."""
        parsed = self.parse(name, raw)
        if isinstance(parsed, ToolResult):
            return parsed
        tool, args = parsed
        try:
            return await self.run_once(tool, args, ctx)
        except LeaseLostError:
            raise
        except Exception as exc:
            log.exception("approved tool %s failed", name)
            return ToolResult.error(f"{name} failed: {type(exc).__name__}: {exc}")

    @staticmethod
    async def run_once(tool: Tool, args: Args, ctx: ToolContext) -> ToolResult:
        """Run `tool`, at most once per tool-call id when it has an effect (`engine.tools.effects`):
        a call that finished returns its recorded result; an id already used by another call runs
        nothing. A run that raises records nothing (the next run of the call runs again)."""
        if tool.effect == "read":
            return await tool.run(args, ctx)
        calls = ToolCallLog(ctx.services.store)
        fp = fingerprint(tool.name, args.model_dump(mode="json", by_alias=True, exclude_none=True))
        prior = await calls.start(ctx.thread_id, ctx.tool_call_id, tool.name, fp)
        if prior is not None and prior.fingerprint != fp:
            return ToolResult.error(f"{tool.name} not run: the tool call id {ctx.tool_call_id} was already used in "
                                    f"this thread by another call ({prior.tool}); nothing was done")
        if prior is not None and prior.state == "done" and prior.result is not None:
            log.info("tool call %s (%s) already ran: its recorded result is returned", ctx.tool_call_id, tool.name)
            return result_of(prior.result)
        scope = EffectScope(calls, ctx.thread_id, ctx.tool_call_id, tool.name, fp, rerun=prior is not None)
        result = await tool.run(args, dataclasses.replace(ctx, effects=scope))
        if not scope.recorded:
            try:
                await calls.done(ctx.thread_id, ctx.tool_call_id, tool.name, fp, result_doc(result))
            except Exception:  # the effect happened: its result is the answer (a re-run finds the orders by id)
                log.exception("could not record the result of tool call %s (%s)", ctx.tool_call_id, tool.name)
        return result
