"""The turn runner: one turn at a time per thread, the tool loop, interrupts, budgets, usage.

- `submit(thread_id, text)` queues a trader message. If the thread is idle a turn starts; if a turn
  is running the message waits, and every message queued during a turn is merged (in order) into
  the next turn's user message. The returned future resolves with the `TurnOutcome` of the turn
  that consumed the message.
- A turn: write `turn_start` and the user entry, build the snapshot once, compact the history if
  the prompt is over budget (its size in tokens from the API: the thread's last call's usage, the
  token-counting endpoint near the limit, chars/4 only as a last resort), then loop (at most
  `max_steps` model calls): model -> tool calls -> results -> model. Text deltas, tool calls and
  results, proposals, usage, notices, errors and the end are published as `TurnEvent`s on the bus
  (and given to the submitter's listener).
- `interrupt(thread_id)` stops a running turn: a streaming model call is cancelled (its text so
  far is kept in the transcript), a tool call already running completes and its result is
  recorded (an order already sent is never abandoned), calls not yet run are recorded as not
  executed, and no further model call is made.
- Budgets: before each model call the day's cost is checked against `max_usd_per_day`; in alert
  threads the turn's cost is checked against `max_usd_per_alert_turn`. Over budget the turn stops,
  the thread is marked `stopped` for a per-alert budget, and the trader is told (`error` event).
- Usage and cost of every model call are added to the thread's and the day's counters.
- Writes (`ThreadStore.commit`, one MULTI each): the turn's start (`turn_start` and the user entry,
  while the snapshot is read); the model's answer and usage before any tool runs (a crash then
  re-runs the calls, never the model); the tool results as soon as the tools return; and at the
  end whatever is pending, `turn_end`, and the thread record. A text turn is two transactions and
  one read round trip (`ThreadStore.begin`); everything is in Redis before `done` is published.
  The history is replayed from the store's in-memory log of the thread (this process is its only
  writer; `begin` picks up anything appended elsewhere). A commit that raised is looked for in the
  log before it is written again, so nothing is lost or written twice.
- Resume: `run_alert` continues an alert thread whose last turn started but never ended (a crash):
  tool calls left without results are executed again (same tool call ids, hence same client order
  ids: nothing is placed twice; a call with an effect that had finished returns the result recorded
  with its effect, `engine.tools.effects`: nothing is done twice), then the loop continues. A finished
  turn is never re-run.
- Tool inputs over `MAX_TOOL_INPUT_CHARS` are replaced by a short placeholder before they enter the
  transcript, and the call's result is the error (`bound_tool_input`): a huge input is never resent.

Tasks: one named task per busy thread (`turn:<thread id>`), owned here; `aclose()` cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from revagent.bus import Bus
from revagent.engine.history import CHARS_PER_TOKEN, brief_image_key, build_messages, compact, request_chars
from revagent.engine.prompt import PromptLayers, system_blocks, turn_context
from revagent.engine.providers.base import (
    Finished,
    ImageBlock,
    ModelRequest,
    Notice,
    Provider,
    ProviderError,
    TextDelta,
    Thinking,
    ThinkingBlock,
    ToolCall,
    Usage,
    aclose_stream,
    count_prompt_tokens,
)
from revagent.engine.providers.offline import OFFLINE_MODEL
from revagent.engine.providers.policy import AlertDescription
from revagent.engine.providers.pricing import cost_usd
from revagent.engine.settings import EngineSettings
from revagent.engine.snapshot import build_snapshot
from revagent.engine.tools.base import Mode, ToolContext, ToolRegistry, ToolResult, ToolServices, bound_tool_input
from revagent.errors import LeaseLostError
from revagent.events import TurnEvent
from revagent.models import Note, new_id
from revagent.store.alert_events import AlertEvent
from revagent.store.threads import ThreadRecord, ThreadStore, ThreadTouch, TranscriptEntry, TurnImage, UsageDelta
from revagent.tasks import cancel_and_wait

if TYPE_CHECKING:
    from revagent.engine.alert_brief import AlertBrief

log = logging.getLogger(__name__)
_IMAGE_TYPES: dict[str, Literal["image/png", "image/jpeg", "image/gif", "image/webp"]] = {
    t: t for t in ("image/png", "image/jpeg", "image/gif", "image/webp")}
"""A kept chart's media type as `ImageBlock` takes it (anything else is not replayed)."""

COUNT_BAND = (0.7, 1.2)
"""The prompt estimate's band around the compaction threshold in which the token-counting endpoint
is asked for the exact size (below it the prompt surely fits, above it surely not)."""
COUNT_TIMEOUT_S = 10.0
SOURCE_LABEL = {"usage": "from the last call's usage", "count_tokens": "counted by the API",
                "chars": "estimated from characters"}

TurnStatus = Literal["done", "interrupted", "budget", "error", "max_steps", "refused"]
Listener = Callable[[TurnEvent], None]
FIGURE_KEYS = ("figure_path", "figure_sparkline")
"""A `run_python` figure's saved PNG and text-art, carried on its `tool_result` event (TUI, `ask --json`)."""
TURN_EVENT_KINDS = ("started", "thinking", "text", "tool_call", "tool_result", "proposal", "usage", "notice", "error",
                    "done")


@dataclass
class TurnOutcome:
    """What a turn did. `text` is the whole streamed answer; `cost_usd` the turn's model cost."""

    thread_id: str
    turn_id: str
    status: TurnStatus
    text: str = ""
    tool_calls: int = 0
    model_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    proposals: list[str] = field(default_factory=list)
    trades: list[str] = field(default_factory=list)
    error: str = ""
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "turn_id": self.turn_id, "status": self.status, "text": self.text,
                "tool_calls": self.tool_calls, "model_calls": self.model_calls, "cost_usd": str(self.cost_usd),
                "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
                "cache_read_input_tokens": self.usage.cache_read_input_tokens,
                "cache_creation_input_tokens": self.usage.cache_creation_input_tokens,
                "proposals": self.proposals, "trades": self.trades, "error": self.error, "resumed": self.resumed}


@dataclass
class _Pending:
    text: str
    future: asyncio.Future[TurnOutcome]
    listener: Listener | None


@dataclass
class _ThreadState:
    pending: list[_Pending] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    running_turn: str | None = None
    writes: _TurnWrites = field(default_factory=lambda: _TurnWrites())
    # the last call's prompt: (tokens from its usage, the request), sized in chars when next needed
    last_prompt: tuple[int, ModelRequest] | None = None


@dataclass
class _TurnWrites:
    """The running turn's writes not yet committed: entries and usage wait here until the next flush
    (before tools run, after their results, at the turn's end), so each step costs one transaction.
    `day_spent` is the day's model cost as of the last read (None: the day budget is off)."""

    entries: list[TranscriptEntry] = field(default_factory=list)
    usage: list[UsageDelta] = field(default_factory=list)
    day_spent: Decimal | None = None
    unsure: tuple[int, int] | None = None  # (entries, usage) of a commit that raised: applied or not?
    image: TurnImage | None = None  # the brief's chart, kept with the turn's user entry (a resume replays it)
    drop_image: str | None = None  # the turn whose kept chart goes with the turn's end


@dataclass(frozen=True)
class _TurnEnd:
    """How a turn ends (or why it never started: `code` is then the error event's code)."""

    status: TurnStatus
    error: str = ""
    code: str = ""


@dataclass
class _Turn:
    """The running turn, as its steps share it. `checked`: the compaction check's request and the
    history it was built from, which the first model call reuses when nothing was appended since."""

    thread: ThreadRecord
    turn_id: str
    mode: Mode
    publish: Callable[[str, dict[str, Any]], None]
    outcome: TurnOutcome
    resumed: bool
    images: dict[str, ImageBlock] = field(default_factory=dict)
    context: str = ""
    make_request: Callable[[Sequence[TranscriptEntry]], ModelRequest] | None = None
    checked: tuple[Sequence[TranscriptEntry], ModelRequest] | None = None

    def request(self, entries: Sequence[TranscriptEntry]) -> ModelRequest:
        checked, self.checked = self.checked, None
        if checked is not None and len(checked[0]) == len(entries) and (
                not entries or checked[0][-1] is entries[-1]):
            return checked[1]  # the log is append-only: same length and last entry, same history
        assert self.make_request is not None
        return self.make_request(entries)


@dataclass
class _Collected:
    """One model call's output. `blocks` is the assistant message in the model's order (thinking and
    redacted_thinking with their signatures, text, tool_use), stored and replayed exactly as returned."""

    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""
    error: ProviderError | None = None
    config_error: ProviderError | None = None  # the model refused the request; the fallback answered
    interrupted: bool = False
    offline: bool = False  # the offline provider answered (its text is for the trader, not a model)


class TurnRunner:
    """Runs the turns of every thread of one session (see the module docstring)."""

    def __init__(self, *, threads: ThreadStore, provider: Provider, tools: ToolRegistry, services: ToolServices,
                 settings: EngineSettings, layers: PromptLayers = PromptLayers(), bus: Bus | None = None,
                 describe_alert: Callable[[AlertEvent], Awaitable[AlertDescription | None]] | None = None,
                 brief_alert: Callable[[AlertEvent], Awaitable[str | AlertBrief]] | Literal[False] | None = None,
                 ) -> None:
        self.threads = threads
        self.provider = provider
        self.tools = tools
        self.services = services
        self.settings = settings
        self.layers = layers
        self.bus = bus
        self._model_up: bool | None = None
        self._model_config_down = False
        if describe_alert is None:
            from revagent.engine.alert_context import AlertDescriber

            describe_alert = AlertDescriber(services.plans, services.account,
                                            liquidation_warning_pct=settings.liquidation_warning_pct)
        self.describe_alert = describe_alert
        if brief_alert is None:  # the alert brief: the turn's first step done in code (engine.alert_brief)
            from revagent.engine.alert_brief import AlertBriefer
            from revagent.engine.providers.capabilities import has_vision

            # the chart goes with the brief when the model reads images (never to the offline provider)
            vision = provider.name.split("+")[0] != "offline" and has_vision(settings.model)
            brief_alert = AlertBriefer(services.clock, plans=services.plans, watchers=services.store.watchers,
                                       account=services.account, market=services.market, vision=vision)
        self.brief_alert = brief_alert or None
        self._state: dict[str, _ThreadState] = {}
        self._closed = False

    # ------------------------------------------------------------------------------ public API
    def state(self, thread_id: str) -> _ThreadState:
        st = self._state.get(thread_id)
        if st is None:
            st = self._state[thread_id] = _ThreadState()
        return st

    def busy(self, thread_id: str) -> bool:
        st = self._state.get(thread_id)
        return st is not None and st.running_turn is not None

    def mode_of(self, thread: ThreadRecord) -> Mode:
        if thread.mode is not None:
            return thread.mode
        return self.settings.alert_mode if thread.kind == "alert" else self.settings.chat_mode

    def submit(self, thread_id: str, text: str, *, listener: Listener | None = None) -> asyncio.Future[TurnOutcome]:
        """Queue a trader message for `thread_id` (see the module docstring). Never blocks."""
        if self._closed:
            raise RuntimeError("the turn runner is closed")
        st = self.state(thread_id)
        fut: asyncio.Future[TurnOutcome] = asyncio.get_running_loop().create_future()
        st.pending.append(_Pending(text, fut, listener))
        if st.task is None or st.task.done():
            st.task = asyncio.get_running_loop().create_task(self._drain(thread_id), name=f"turn:{thread_id}")
            st.task.add_done_callback(self._task_done)
        return fut

    def interrupt(self, thread_id: str) -> bool:
        """Stop the running turn of `thread_id` (True if one was running). Queued messages stay queued."""
        st = self._state.get(thread_id)
        if st is None or st.running_turn is None:
            return False
        st.interrupt.set()
        return True

    async def run_alert(self, thread_id: str, event: AlertEvent, *, listener: Listener | None = None) -> TurnOutcome:
        """Run, resume, or report the turn of one alert firing (`event.trigger_key`) in an alert thread.

        The thread may hold turns of other firings of the same alert. A turn of this firing that
        started and never ended (a crash) is resumed; one that ended is reported without a model call,
        unless it ended in `error` (then a new turn runs: the alert queue is retrying it)."""
        from revagent.engine.prompt import alert_message

        st = self.state(thread_id)
        async with st.lock:
            entries = await self.threads.transcript(thread_id)
            key = event.trigger_key
            mine = [e.turn_id for e in entries if e.kind == "turn_start" and e.data.get("alert_key") == key]
            if mine:
                last_turn = mine[-1]
                end = next((e for e in entries if e.kind == "turn_end" and e.turn_id == last_turn), None)
                if end is None:
                    return await self._turn(thread_id, "", [listener] if listener else [], alert=event,
                                            resume_turn=last_turn)
                if end.status != "error":
                    return TurnOutcome(thread_id, last_turn, end.status or "done",  # type: ignore[arg-type]
                                       text=str(end.data.get("text", "")),
                                       cost_usd=Decimal(end.data.get("cost_usd", "0")), resumed=True)
            brief = await self._brief(event)
            return await self._turn(thread_id, brief.text or alert_message(event),
                                    [listener] if listener else [], alert=event, image=brief.image)

    async def warm_up(self) -> None:
        """Import the anthropic SDK in a worker thread (its import takes 1-4 s and would block the loop
        at the first turn otherwise). Call once at session start; a no-op when it is not installed."""
        from revagent.engine.providers.anthropic import load_sdk

        with contextlib.suppress(ImportError):
            await load_sdk()

    async def aclose(self) -> None:
        """Cancel every running turn (their transcripts stay consistent: see `_turn`)."""
        self._closed = True
        await cancel_and_wait([st.task for st in self._state.values()])
        for st in self._state.values():
            for p in st.pending:
                if not p.future.done():
                    p.future.cancel()
            st.pending.clear()

    # ------------------------------------------------------------------------------ internals
    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("turn task %s died: %r", task.get_name(), exc, exc_info=exc)

    async def _drain(self, thread_id: str) -> None:
        st = self.state(thread_id)
        while st.pending:
            batch, st.pending = st.pending, []
            text = "\n\n".join(p.text for p in batch)
            listeners = [p.listener for p in batch if p.listener is not None]
            try:
                async with st.lock:
                    outcome = await self._turn(thread_id, text, listeners)
            except BaseException as exc:
                for p in batch:
                    if not p.future.done():
                        if isinstance(exc, asyncio.CancelledError):
                            p.future.cancel()
                        else:
                            p.future.set_exception(exc)
                raise
            for p in batch:
                if not p.future.done():
                    p.future.set_result(outcome)

    def _publish(self, listeners: Sequence[Listener], thread_id: str, turn_id: str, kind: str,
                 data: dict[str, Any]) -> None:
        event = TurnEvent(thread_id=thread_id, turn_id=turn_id, kind=kind, data=data)
        if self.bus is not None:
            self.bus.publish(event)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("turn listener failed")

    async def _over_day_budget(self) -> Decimal | None:
        """The day's model cost if it reached `max_usd_per_day` (read from Redis), else None."""
        if self.settings.max_usd_per_day <= 0:
            return None
        return self._over((await self.threads.day_usage(self.services.clock().date())).cost_usd)

    def _over(self, spent: Decimal | None) -> Decimal | None:
        """`spent` (the day's model cost) if it reached `max_usd_per_day`, else None."""
        limit = self.settings.max_usd_per_day
        if spent is None or limit <= 0:
            return None
        return spent if spent >= limit else None

    def _budget_day(self) -> date | None:
        """The UTC day whose usage a commit reads back for the day budget (None: the budget is off)."""
        return self.services.clock().date() if self.settings.max_usd_per_day > 0 else None

    async def _flush(self, thread_id: str, *, touch: ThreadTouch | None = None) -> None:
        """Commit the turn's pending writes (and `touch`) in one transaction. On failure they stay
        pending (nothing was written), so the turn's end tries them again."""
        w = self.state(thread_id).writes
        if w.unsure is not None:
            await self._settle_unsure(thread_id, w)
        if not (w.entries or w.usage or touch is not None or w.image or w.drop_image):
            return
        try:
            committed = await self.threads.commit(thread_id, w.entries, usage=w.usage, touch=touch,
                                                  day_usage=self._budget_day(), image=w.image,
                                                  drop_image=w.drop_image)
        except BaseException:
            w.unsure = (len(w.entries), len(w.usage))
            raise
        w.entries, w.usage, w.image, w.drop_image = [], [], None, None
        if committed.day_usage is not None:
            w.day_spent = committed.day_usage.cost_usd

    async def _turn(self, thread_id: str, text: str, listeners: Sequence[Listener], *,
                    alert: AlertEvent | None = None, resume_turn: str | None = None,
                    image: ImageBlock | None = None) -> TurnOutcome:
        """One turn, in named steps: `_refusal` (nothing runs), `_open` (the start written, the snapshot,
        the request, the compaction check, a resume's open calls), `_step` per model call until one
        returns how the turn ends, then `_end_turn` (skipped only when the session cancels the turn)."""
        begun = await self.threads.begin(thread_id, day_usage=self._budget_day())
        thread = begun.thread
        if thread is None:
            raise KeyError(f"no thread {thread_id}")
        st = self.state(thread_id)
        turn_id = resume_turn or new_id("turn")
        outcome = TurnOutcome(thread_id, turn_id, "done", resumed=resume_turn is not None)

        def publish(kind: str, data: dict[str, Any]) -> None:
            self._publish(listeners, thread_id, turn_id, kind, data)

        refusal = self._refusal(thread, begun.day_usage.cost_usd if begun.day_usage is not None else None)
        if refusal is not None:
            outcome.status, outcome.error = refusal.status, refusal.error
            publish("error", {"message": refusal.error, "code": refusal.code})
            publish("done", outcome.as_dict())
            return outcome

        st.interrupt.clear()
        st.running_turn = turn_id
        st.writes = _TurnWrites(day_spent=begun.day_usage.cost_usd if begun.day_usage is not None else None)
        turn = _Turn(thread=thread, turn_id=turn_id, mode=self.mode_of(thread), publish=publish, outcome=outcome,
                     resumed=resume_turn is not None)
        if image is not None:  # the alert brief's chart: in memory, and kept beside the log until the turn ends
            turn.images[brief_image_key(turn_id)] = image
        cancelled = False  # the session is stopping: the turn is left to resume, not ended
        try:
            await self._open(turn, text, alert)
            end = await self._steps(turn)
            outcome.status, outcome.error = end.status, end.error
        except asyncio.CancelledError:
            cancelled = True
            outcome.status, outcome.error = "interrupted", "cancelled (session stopping)"
            raise
        except LeaseLostError as exc:
            outcome.status, outcome.error = "error", f"lease lost: {exc}"
            publish("error", {"message": outcome.error, "code": "lease_lost"})
            raise
        except Exception as exc:
            log.exception("turn %s of %s failed", turn_id, thread_id)
            outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
            publish("error", {"message": outcome.error, "code": "internal"})
        finally:
            st.running_turn = None
            st.interrupt.clear()
            if not cancelled:
                if brief_image_key(turn_id) in turn.images:
                    st.writes.drop_image = turn_id
                await self._end_turn(thread, outcome)
                publish("done", outcome.as_dict())
        return outcome

    def _refusal(self, thread: ThreadRecord, day_spent: Decimal | None) -> _TurnEnd | None:
        """Why the turn cannot start (nothing is written then), or None."""
        if thread.status != "open":
            return _TurnEnd("refused", f"thread {thread.title!r} is {thread.status}" + (
                f": {thread.stopped_reason}" if thread.stopped_reason else ""), "thread_" + thread.status)
        budgets_on = self.settings.max_usd_per_day > 0 or (
            thread.kind == "alert" and self.settings.max_usd_per_alert_turn > 0)
        if budgets_on and not self.settings.priced:
            return _TurnEnd("refused", f"model {self.settings.model!r} has no price in revagent's model table, so "
                            "the model budgets cannot be kept; set llm.unknown_model_price ('INPUT/OUTPUT' USD per "
                            "million tokens), pick a listed model, or set the budgets to 0", "model_unpriced")
        spent = self._over(day_spent)
        if spent is not None:
            return _TurnEnd("budget", f"daily model budget reached (${spent} of ${self.settings.max_usd_per_day}); "
                            "no model call until tomorrow (UTC) or until llm.max_usd_per_day is raised", "budget_day")
        return None

    async def _open(self, turn: _Turn, text: str, alert: AlertEvent | None) -> None:
        """The turn's start in Redis (the snapshot read meanwhile), `started` told, the request maker,
        the compaction check (a fresh turn) or the resumed turn's open calls run again."""
        thread, turn_id, st = turn.thread, turn.turn_id, self.state(turn.thread.id)
        chart = turn.images.get(brief_image_key(turn_id))
        if turn.resumed:  # the chart the turn's thinking was produced after (kept with its user entry)
            kept = await self.threads.turn_image(thread.id, turn_id)
            if kept is not None and kept.media_type in _IMAGE_TYPES:
                turn.images[brief_image_key(turn_id)] = ImageBlock(kept.data_b64, _IMAGE_TYPES[kept.media_type])
        elif chart is not None:
            st.writes.image = TurnImage(turn_id, chart.media_type, chart.data_b64)
        if not turn.resumed:
            now = self.services.clock()
            st.writes.entries += [
                TranscriptEntry(kind="turn_start", turn_id=turn_id, at=now,
                                data={"alert_key": alert.trigger_key if alert else None, "mode": turn.mode}),
                TranscriptEntry(kind="user", turn_id=turn_id, at=now, text=text,
                                data={"image": "chart"} if brief_image_key(turn_id) in turn.images else {})]
        # the turn's start is in Redis before anything is told; the snapshot is read meanwhile
        snapshot_task = asyncio.get_running_loop().create_task(self._snapshot(alert), name=f"turn:{thread.id}:snapshot")
        try:
            await self._flush(thread.id)
        except BaseException:
            snapshot_task.cancel()
            raise
        snapshot, notes = await snapshot_task
        turn.publish("started", {"title": thread.title, "kind": thread.kind, "mode": turn.mode,
                                 "resumed": turn.resumed})
        context = turn_context(snapshot, alert, notes, mode=turn.mode)
        if turn.resumed:  # replay the turn with the context its thinking was produced after
            context = self._stored_context(await self.threads.cached_transcript(thread.id), turn_id) or context
        turn.context = context
        system = system_blocks(self.layers, thread.kind)
        description = await self._describe(alert)
        plan = self.settings.model_plan(thread.kind)  # thinking, effort, max_tokens per thread kind
        images = turn.images

        def make_request(entries: Sequence[TranscriptEntry]) -> ModelRequest:
            return ModelRequest(
                model=self.settings.model, max_tokens=plan.max_tokens,
                messages=build_messages(entries, current_turn=turn_id, context=context, images=images),
                system=system, tools=self.tools.specs(), temperature=self.settings.temperature,
                thinking=plan.thinking, effort=plan.effort, thread_kind=thread.kind, alert=description,
                metadata={"thread_id": thread.id, "turn_id": turn_id})

        turn.make_request = make_request
        if not turn.resumed:  # a resumed turn's thinking is bound to its prefix: never compact under it
            turn.checked = await self._maybe_compact(thread.id, turn_id, turn.publish, make_request)
        else:
            await self._finish_open_calls(thread, turn_id, turn.mode, turn.images, turn.outcome, turn.publish)

    async def _steps(self, turn: _Turn) -> _TurnEnd:
        """Model calls (and their tools) until one step says how the turn ends, at most `max_steps`."""
        for step in range(self.settings.max_steps):
            end = await self._step(turn, step)
            if end is not None:
                return end
        error = f"stopped after {self.settings.max_steps} model calls in one turn"
        turn.publish("notice", {"text": error})
        return _TurnEnd("max_steps", error)

    async def _step(self, turn: _Turn, step: int) -> _TurnEnd | None:
        """One model call and the tool calls it made; how the turn ends, or None to call the model again."""
        thread, st, outcome, publish = turn.thread, self.state(turn.thread.id), turn.outcome, turn.publish
        if st.interrupt.is_set():
            return _TurnEnd("interrupted")
        if step > 0 or turn.resumed:
            spent = self._over(st.writes.day_spent)
            if spent is not None:
                error = f"daily model budget reached (${spent} of ${self.settings.max_usd_per_day})"
                publish("error", {"message": error, "code": "budget_day"})
                return _TurnEnd("budget", error)
        entries = await self.threads.cached_transcript(thread.id)  # nothing is pending here
        request = turn.request(entries)
        col = await self._call_model(request, st, publish, outcome)
        self._record_usage(thread.id, col.usage, outcome, publish)
        if col.usage.prompt_tokens > 0:  # the API's own count of this prompt: the next estimate's base
            st.last_prompt = (col.usage.prompt_tokens, request)
        self._record_answer(turn, col, entries)
        if col.interrupted or col.error is not None:
            if col.calls:
                self._record_not_run(thread.id, turn.turn_id, col.calls, "interrupted" if col.interrupted
                                     else "the model call failed")
            if col.interrupted:
                return _TurnEnd("interrupted")
            failed = col.error
            assert failed is not None
            error = f"{failed.kind}: {failed.message}"
            publish("error", {"message": f"the model call failed ({error})", "code": f"model_{failed.kind}",
                              "retryable": failed.retryable})
            return _TurnEnd("error", error)
        if not col.calls:
            return _TurnEnd("done")
        await self._flush(thread.id)  # the calls are in Redis before any runs (resume re-runs them)
        await self._run_calls(thread, turn.turn_id, turn.mode, col.calls, turn.images, outcome, publish)
        if st.interrupt.is_set():
            return _TurnEnd("interrupted")
        if thread.kind == "alert" and 0 < self.settings.max_usd_per_alert_turn <= outcome.cost_usd:
            error = (f"alert turn budget reached (${outcome.cost_usd} of "
                     f"${self.settings.max_usd_per_alert_turn}); the thread stops here")
            publish("error", {"message": error, "code": "budget_alert_turn"})
            return _TurnEnd("budget", error)
        return None

    def _record_answer(self, turn: _Turn, col: _Collected, entries: Sequence[TranscriptEntry]) -> None:
        """The model's blocks in its order (thinking first, signatures kept), pending for the next flush:
        replayed as returned. The turn context a thinking block was produced after is kept with the
        turn's first thinking answer, for a resume."""
        blocks = [b for b in col.blocks if b["type"] != "text" or b["text"].strip()]
        if not blocks:
            return
        pending = self.state(turn.thread.id).writes.entries
        keep = any(b["type"] in ("thinking", "redacted_thinking") for b in blocks) and not any(
            e.turn_id == turn.turn_id and e.kind == "assistant" and "context" in e.data for e in [*entries, *pending])
        data: dict[str, Any] = {"context": turn.context} if keep else {}
        if col.offline and not col.calls and turn.thread.kind != "alert":
            # the offline chat reply is shown in the thread, never replayed to a model (an alert's
            # offline summary closes its tool loop and stays)
            data["offline"] = True
        pending.append(TranscriptEntry(kind="assistant", turn_id=turn.turn_id, at=self.services.clock(),
                                       blocks=blocks, interrupted=col.interrupted, data=data))

    async def _settle_unsure(self, thread_id: str, w: _TurnWrites) -> None:
        """After a commit raised, EXEC may or may not have run (a connection lost after sending it).
        It applies all or nothing, so its first entry in the log means all of it is there: those
        entries and usage are dropped from the pending writes, never written twice."""
        n_entries, n_usage = w.unsure or (0, 0)
        if n_entries:
            first = w.entries[0].model_dump_json(exclude={"seq"})
            logged = await self.threads.transcript(thread_id)
            if any(e.model_dump_json(exclude={"seq"}) == first for e in logged[-64:]):
                del w.entries[:n_entries]
                del w.usage[:n_usage]
        w.unsure = None

    async def _end_turn(self, thread: ThreadRecord, outcome: TurnOutcome) -> None:
        """The turn's last transaction: what is still pending, `turn_end`, usage, and the thread record
        (turns + 1; `stopped` after an alert turn's budget stop)."""
        now = self.services.clock()
        self.state(thread.id).writes.entries.append(TranscriptEntry(
            kind="turn_end", turn_id=outcome.turn_id, at=now, status=outcome.status,
            data={"cost_usd": str(outcome.cost_usd), "model_calls": outcome.model_calls,
                  "tool_calls": outcome.tool_calls, "error": outcome.error, "text": outcome.text[-2000:],
                  "input_tokens": outcome.usage.input_tokens, "output_tokens": outcome.usage.output_tokens}))
        stopped = outcome.error if outcome.status == "budget" and thread.kind == "alert" else ""
        await self._flush(thread.id, touch=ThreadTouch(now, stopped_reason=stopped or ""))

    async def _snapshot(self, alert: AlertEvent | None = None) -> tuple[str, Sequence[Note]]:
        """The snapshot's prompt text (notes excluded: `turn_context` puts them first) and the notes."""
        source = self.services.snapshot
        if source is None:
            return "# RUNTIME SNAPSHOT\n(unavailable in this session)", await self.services.store.notes.all()
        try:
            market = alert.context.get("market") if alert is not None else None
            inputs = await source.inputs(focus=(market,) if isinstance(market, str) and market else ())
        except Exception as exc:
            log.exception("snapshot failed")
            return (f"# RUNTIME SNAPSHOT\n(unavailable: {type(exc).__name__}: {exc}); do not open new risk",
                    await self.services.store.notes.all())
        text = build_snapshot(inputs).text(self.settings.snapshot_budget_chars, include_notes=False)
        return text, inputs.notes

    @staticmethod
    def _stored_context(entries: Sequence[TranscriptEntry], turn_id: str) -> str | None:
        """The turn context stored with the turn's first thinking answer (see `_turn`), if any."""
        for e in entries:
            if e.turn_id == turn_id and e.kind == "assistant" and isinstance(e.data.get("context"), str):
                return str(e.data["context"])
        return None

    async def _brief(self, alert: AlertEvent) -> AlertBrief:
        """The alert's brief (the turn's user message and its chart), empty when there is none or it failed."""
        from revagent.engine.alert_brief import AlertBrief

        if self.brief_alert is None:
            return AlertBrief("")
        try:
            brief = await self.brief_alert(alert)
        except Exception:
            log.exception("could not brief alert %s", alert.trigger_key)
            return AlertBrief("")
        return AlertBrief(brief) if isinstance(brief, str) else brief

    async def _describe(self, alert: AlertEvent | None) -> AlertDescription | None:
        if alert is None or self.describe_alert is None:
            return None
        try:
            return await self.describe_alert(alert)
        except Exception:
            log.exception("could not describe alert %s for the offline policy", alert.trigger_key)
            return None

    async def _prompt_tokens(self, st: _ThreadState, request: ModelRequest, limit: int) -> tuple[int, str, int]:
        """The size of `request`'s prompt in tokens, as (tokens, source, estimate). The estimate is the
        thread's last call's `usage` (input + cache read + cache write) plus chars/4 of what changed
        since (source `usage`), else chars/4 of the whole prompt (`chars`, the last resort). Near the
        limit (`COUNT_BAND` of it) the token-counting endpoint gives the exact figure (`count_tokens`)."""
        chars = request_chars(request)
        estimate, source = chars // CHARS_PER_TOKEN, "chars"
        if st.last_prompt is not None:
            tokens, last = st.last_prompt
            then = request_chars(last)
            estimate, source = max(estimate, tokens + (chars - then) // CHARS_PER_TOKEN), "usage"
        low, high = COUNT_BAND
        if low * limit <= estimate <= high * limit:
            try:
                counted = await asyncio.wait_for(count_prompt_tokens(self.provider, request), COUNT_TIMEOUT_S)
            except TimeoutError:
                counted = None
            if isinstance(counted, int) and counted > 0:
                return counted, "count_tokens", estimate
            if isinstance(counted, ProviderError):
                log.info("token count failed (%s: %s); using the %s estimate", counted.kind, counted.message, source)
        return estimate, source, estimate

    async def _maybe_compact(self, thread_id: str, turn_id: str, publish: Callable[[str, dict[str, Any]], None],
                             make_request: Callable[[Sequence[TranscriptEntry]], ModelRequest],
                             ) -> tuple[Sequence[TranscriptEntry], ModelRequest] | None:
        """Compact the history before the turn's first call when the prompt (tools, system, history and
        the turn context, in tokens from the API: see `_prompt_tokens`) exceeds the threshold. Returns
        the request it measured and its history when nothing was compacted (the first call's request)."""
        entries = await self.threads.cached_transcript(thread_id)
        limit = self.settings.compaction_threshold_tokens
        request = make_request(entries)
        tokens, source, estimate = await self._prompt_tokens(self.state(thread_id), request, limit)
        result = compact(entries, limit, keep_turns=self.settings.keep_turns, tokens=tokens)
        if result is None:
            return entries, request
        self.state(thread_id).last_prompt = None  # the history changed: the next call measures it again
        now = self.services.clock()
        note = (f"compacted {result.turns} earlier turn(s) into a summary to stay within the context budget "
                f"(prompt {tokens:,} tokens of {limit:,}, {SOURCE_LABEL[source]})")
        await self.threads.append(thread_id,
                                  TranscriptEntry(kind="summary", turn_id=turn_id, at=now, text=result.text,
                                                  upto_seq=result.upto_seq),
                                  TranscriptEntry(kind="notice", turn_id=turn_id, at=now, text=note))
        publish("notice", {"text": note, "compaction": {"turns": result.turns, "upto_seq": result.upto_seq,
                                                        "summary_chars": len(result.text), "tokens": tokens,
                                                        "source": source, "estimate": estimate,
                                                        "limit": limit}})
        return None

    async def _call_model(self, request: ModelRequest, st: _ThreadState,
                          publish: Callable[[str, dict[str, Any]], None], outcome: TurnOutcome) -> _Collected:
        col = _Collected()
        stream = self.provider.stream(request)

        async def consume() -> None:
            try:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        col.text.append(event.text)
                        if col.blocks and col.blocks[-1]["type"] == "text":
                            col.blocks[-1]["text"] += event.text
                        else:
                            col.blocks.append({"type": "text", "text": event.text})
                        outcome.text += event.text
                        publish("text", {"text": event.text})
                    elif isinstance(event, Thinking):
                        block = event.block
                        if isinstance(block, ThinkingBlock):
                            col.blocks.append({"type": "thinking", "thinking": block.thinking,
                                               "signature": block.signature})
                            publish("thinking", {"text": block.thinking, "redacted": False})
                        else:
                            col.blocks.append({"type": "redacted_thinking", "data": block.data})
                            publish("thinking", {"text": "", "redacted": True})
                    elif isinstance(event, ToolCall):  # an oversized input is dropped before it is stored
                        call = ToolCall(event.id, event.name, bound_tool_input(event.name, event.input))
                        col.calls.append(call)
                        col.blocks.append({"type": "tool_use", "id": call.id, "name": call.name,
                                           "input": call.input})
                    elif isinstance(event, Usage):
                        col.usage = col.usage + event
                        col.offline = col.offline or event.model == OFFLINE_MODEL
                    elif isinstance(event, Finished):
                        col.stop_reason = event.stop_reason
                    elif isinstance(event, Notice):
                        publish("notice", {"text": event.text})
                        if event.config_error is not None:
                            col.config_error = event.config_error
                    elif isinstance(event, ProviderError):
                        col.error = event
            finally:
                await aclose_stream(stream)

        outcome.model_calls += 1
        task = asyncio.get_running_loop().create_task(consume(), name=f"turn:{request.metadata.get('thread_id')}:model")
        waiter = asyncio.get_running_loop().create_task(st.interrupt.wait(), name="turn:interrupt-wait")
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                col.interrupted = True
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        if task in done and not task.cancelled():
            task.result()
        self._note_model_health(col)
        return col

    def _note_model_health(self, col: Any) -> None:
        """Tell the session when the model becomes unreachable or comes back (health alerts use it)."""
        from revagent.events import ConnectionChanged

        if self.bus is None:
            return
        error = col.error or col.config_error
        down = error is not None and error.kind in ("connection", "timeout", "overloaded", "rate_limited", "auth",
                                                    "bad_request")
        up = error is None and col.stop_reason is not None
        config = col.config_error is not None  # an alert turn ran offline because the model refused it
        if down and (self._model_up is not False or (config and not self._model_config_down)):
            assert error is not None
            self._model_up = False
            self._model_config_down = config
            self.bus.publish(ConnectionChanged(link="model", up=False, detail=f"{error.kind}: {error.message}"[:300],
                                               config_error=config))
        elif up and self._model_up is False:
            self._model_up = True
            self._model_config_down = False
            self.bus.publish(ConnectionChanged(link="model", up=True))

    def _record_usage(self, thread_id: str, usage: Usage, outcome: TurnOutcome,
                      publish: Callable[[str, dict[str, Any]], None]) -> None:
        """Count a model call's usage in the outcome; it is written with the step's next flush."""
        if usage.prompt_tokens == 0 and usage.output_tokens == 0:
            return
        unknown = self.settings.unknown_model_price
        priced = cost_usd(usage, unknown=unknown) if usage.model else None
        if priced is None:  # a model name the table does not know: price as the configured one
            priced = cost_usd(usage, self.settings.model, unknown=unknown)
        cost = priced if priced is not None else Decimal(0)
        outcome.usage = outcome.usage + usage
        outcome.cost_usd += cost
        self.state(thread_id).writes.usage.append(UsageDelta(
            self.services.clock(), input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens, cost=cost))
        publish("usage", {"model": usage.model, "input_tokens": usage.input_tokens,
                          "output_tokens": usage.output_tokens,
                          "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                          "cache_read_input_tokens": usage.cache_read_input_tokens,
                          "cost_usd": str(cost) if priced is not None else "?",
                          "turn_cost_usd": str(outcome.cost_usd)})

    def _record_not_run(self, thread_id: str, turn_id: str, calls: Sequence[ToolCall], why: str) -> None:
        self.state(thread_id).writes.entries.append(TranscriptEntry(
            kind="tool_results", turn_id=turn_id, at=self.services.clock(),
            blocks=[{"tool_use_id": c.id, "tool": c.name, "content": f"not executed: {why}", "is_error": True}
                    for c in calls]))

    async def _run_calls(self, thread: ThreadRecord, turn_id: str, mode: Mode, calls: Sequence[ToolCall],
                         images: dict[str, ImageBlock], outcome: TurnOutcome,
                         publish: Callable[[str, dict[str, Any]], None]) -> None:
        st = self.state(thread.id)
        blocks: list[dict[str, Any]] = []
        for call in calls:
            if st.interrupt.is_set():
                blocks.append({"tool_use_id": call.id, "tool": call.name, "is_error": True,
                               "content": "not executed: the trader interrupted the turn"})
                continue
            publish("tool_call", {"id": call.id, "name": call.name, "input": call.input})
            ctx = ToolContext(thread.id, call.id, thread.kind, mode, self.services)
            # shielded: an interrupt or a cancellation never abandons an order half-sent
            result = await asyncio.shield(self.tools.execute(call.name, call.input, ctx))
            outcome.tool_calls += 1
            blocks.append(self._result_block(call, result, images))
            if result.trade_id and result.trade_id not in outcome.trades and not result.is_error:
                outcome.trades.append(result.trade_id)
            publish("tool_result", {"id": call.id, "name": call.name, "is_error": result.is_error,
                                    "content": result.content[:4000], "orders": list(result.orders),
                                    "trade_id": result.trade_id, "proposal_id": result.proposal_id,
                                    "image": result.image is not None,
                                    **{k: result.data[k] for k in FIGURE_KEYS if k in result.data}})
            if result.proposal_id:
                outcome.proposals.append(result.proposal_id)
                publish("proposal", {"id": result.proposal_id, "tool": call.name, "input": call.input,
                                     **dict(result.data)})
        st.writes.entries.append(TranscriptEntry(kind="tool_results", turn_id=turn_id, at=self.services.clock(),
                                                 blocks=blocks))
        await self._flush(thread.id)  # results in Redis at once: a crash never re-runs a finished call

    @staticmethod
    def _result_block(call: ToolCall, result: ToolResult, images: dict[str, ImageBlock]) -> dict[str, Any]:
        block: dict[str, Any] = {"tool_use_id": call.id, "tool": call.name, "content": result.content,
                                 "is_error": result.is_error}
        if result.orders:
            block["orders"] = list(result.orders)
        if result.trade_id:
            block["trade_id"] = result.trade_id
        if result.proposal_id:
            block["proposal_id"] = result.proposal_id
        if result.image is not None:
            images[call.id] = result.image
            block["image"] = True
        return block

    async def _finish_open_calls(self, thread: ThreadRecord, turn_id: str, mode: Mode,
                                 images: dict[str, ImageBlock], outcome: TurnOutcome,
                                 publish: Callable[[str, dict[str, Any]], None]) -> None:
        """Resume: execute the tool calls of the turn's last assistant message that have no result."""
        entries = await self.threads.cached_transcript(thread.id)
        answered = {b["tool_use_id"] for e in entries if e.kind == "tool_results" for b in e.blocks}
        last = next((e for e in reversed(entries) if e.kind == "assistant" and e.turn_id == turn_id), None)
        if last is None:
            return
        open_calls = [ToolCall(b["id"], b["name"], dict(b.get("input", {}))) for b in last.blocks
                      if b.get("type") == "tool_use" and b["id"] not in answered]
        if open_calls:
            publish("notice", {"text": f"resuming: re-running {len(open_calls)} tool call(s) the crash interrupted "
                                       "(same ids: a call that had finished returns its recorded result, "
                                       "nothing is done twice)"})
            await self._run_calls(thread, turn_id, mode, open_calls, images, outcome, publish)
