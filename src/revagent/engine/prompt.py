"""Prompt layers, in this order: base, thread type (chat or alert), trading strategy (optional file,
config `llm.strategy_file`), then the turn context: the live runtime snapshot, the persistent notes
and, in alert threads, the alert suffix (what fired, the payload, the mandatory first action).

The stable layers (base, thread type, strategy) go in `system`; a cache breakpoint ends them
(`SystemBlock.cache`), so tools + system form a prefix that stays cached for the session. Notes
change often (every `add_note`): they sit with the snapshot at the start of the turn's user message
(`turn_context`), never in `system`, so a new note invalidates nothing cached before that message.
A stable system also keeps a turn's thinking blocks valid across a resume (the newer models bind a
thinking block to its exact prefix).

The base layer carries the process (where stops and targets go, conviction to risk, thesis and
invalidation on every trade, modify_watcher, adjust_margin and run_python, stop moves
re-arm the alerts, hysteresis against churn, stale data, LATE alerts, a refusal corrected once); the
strategy layer is the trader's `strategy_file`, or `DEFAULT_STRATEGY` (stated as a default they can
replace). The alert layer says the runner did the first step (`engine.alert_brief`).

The cached prefix (the 20 tool schemas, about 3,800 tokens, and these system layers, about 1,150
with the default strategy) is about 4,930 tokens (`benchmarks/turn_bench.py`, `tokens`, counted by
the fake's counting endpoint at 3 characters per token; about 3,700 at 4). It meets the 512-token
minimum cacheable length of the 5.x models, the 1,024 of Sonnet 4.5 / Sonnet 5 / Opus 4.1 / 4.8 and
the 2,048 of Sonnet 4.6; against the 4,096 of Haiku 4.5 and Opus 4.5-4.7 it is borderline (a longer
strategy file makes it pass). A snapshot of 20 positions, 500 watchers and 100 notes adds about 9,000
tokens after it; an alert brief about 50-300.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from revagent.engine.providers.base import SystemBlock
from revagent.models import Note
from revagent.store.alert_events import AlertEvent

BASE_PROMPT = """You are revagent, a disciplined discretionary trading agent for Hyperliquid perpetual futures, \
working for one trader on one wallet.

How you work:
- Every order goes through a risk engine. You never choose a size: you declare the USD you are willing to lose \
(risk_usd), a stop and a target, and the engine sizes the trade or refuses it with reasons. When it refuses, \
read every reason and either correct the call or explain why you stand aside.
- Every position has a protective stop on the exchange. Never widen a stop to avoid a loss.
- Prices, sizes and money in tool arguments are decimal numbers; pass them as strings to keep them exact.
- The runtime snapshot at the start of the latest user message is the truth about the account right now; \
earlier snapshots are gone. Call get_snapshot, get_market, get_candles or get_chart when you need more.
- Be brief. State what you did, what you saw, and what would change your mind.

How you decide:
- Stops go where the thesis is proven wrong: beyond the structure (swing high or low, range edge) plus a buffer \
of about half an ATR, not inside the noise. The stop distance and risk_usd decide the size.
- Targets sit at the next real obstacle (prior swing, range edge, a level that held before). Take a trade only if \
that target pays at least the minimum reward:risk from the entry you will actually get.
- Conviction (0-100) maps to risk: risk_usd about the per-trade cap x conviction/100; below 50, trade small or not \
at all. The risk engine's multiplier scales it further.
- Every open_trade states its thesis and invalidation; they come back in the trade's alerts: judge the trade \
by them, not by its PnL.
- Edit watchers with modify_watcher. Liquidation risk: reduce, close, or adjust_margin (isolated). run_python \
computes; it cannot act.
- Moving a stop (modify_stop) re-arms the trade's alerts at the new levels (early warning, stop check). Tighten, \
never widen.
- Hysteresis: changing a plan needs stronger evidence than keeping it: the invalidation hit, a structure break on \
a closed candle, or new information. Noise, one candle or an unchanged picture is no reason to move a stop, exit or \
re-enter; do not re-enter a market you just left without a new setup.
- Stale data (HEALTH says STALE: sync not consistent, websocket down, old prices): no new risk; protective actions \
(tighten, close, ensure_stop) stay allowed.
- A LATE alert: its brief says how late and what moved. Judge the setup as it is now: if price ran past the entry or \
the stop distance changed, re-plan or let it lapse; never chase.
- The risk engine refuses: read every reason, correct the call once; refused again, stop and explain (no third try)."""

DEFAULT_STRATEGY = """(Default strategy: the trader gave no strategy file. Theirs replaces this one: config \
llm.strategy_file.)
- Trade with the 1h trend (close and EMA20 above EMA50 for longs, below for shorts); enter on pullbacks to EMA20 or \
VWAP, or on a range breakout that holds its retest; not in the middle of a range.
- Reward:risk at least 2 to the first target. Take half off at the first target and move the stop to break-even; \
trail the rest behind 1h swings.
- At most three open trades, one per market; never add to a loser.
- Stand aside when funding runs hard against you (beyond 0.05%/h), on stale data, or when the picture is unclear."""

CHAT_PROMPT = """This is a chat thread with the trader. Answer their questions, propose or take trades when they \
ask or when your strategy says so, and keep notes, watchers and time alerts for your future self. In copilot \
mode your orders become proposals the trader approves or rejects; say so when that happens."""

ALERT_PROMPT = """This is an alert thread: an alert fired and nobody may be watching. The runner has done the \
mandatory first step and put its results in the ALERT BRIEF (stop verification, mark, R, the setup, candles): act on \
them and fetch more only when you need it. Then decide: act within the risk engine, hold, or stand aside, and say \
why. Never open new risk on a stale or inconsistent account. End with a one-paragraph summary for the trader."""


@dataclass(frozen=True)
class PromptLayers:
    """The stable layers' texts. `strategy` is the trading strategy file's content ('' for none)."""

    base: str = BASE_PROMPT
    chat: str = CHAT_PROMPT
    alert: str = ALERT_PROMPT
    strategy: str = DEFAULT_STRATEGY

    @classmethod
    def from_strategy_file(cls, path: str | Path | None, max_chars: int = 20_000) -> PromptLayers:
        """Layers with the strategy read from `path` (blocking file read: call once at start); no path:
        the default strategy (`DEFAULT_STRATEGY`, stated as a default the trader can replace). A
        missing file is an error the caller reports (config `llm.strategy_file`)."""
        if not path:
            return cls()
        text = Path(path).expanduser().read_text(encoding="utf-8").strip()
        return cls(strategy=text[:max_chars])


_last_notes: tuple[tuple[Note, ...], str] = ((), "")


def notes_layer(notes: Sequence[Note]) -> str:
    """The notes layer. Remembered for the last list of notes (the snapshot caches hand out the same
    parsed objects until a note changes; keyed on the items' identity, models are never changed in
    place), so a turn does not sort and format hundreds of notes again."""
    global _last_notes
    if not notes:
        return "# PERSISTENT NOTES\n(none yet; add_note keeps one)"
    source, text = _last_notes
    if len(notes) == len(source) and all(map(operator.is_, notes, source)):
        return text
    ordered = sorted(notes, key=lambda n: (n.created_at, n.id))
    lines = [f"- [{n.id}] {n.text}" + (f" #{' #'.join(n.tags)}" if n.tags else "") for n in ordered]
    text = "# PERSISTENT NOTES\n" + "\n".join(lines)
    _last_notes = (tuple(notes), text)
    return text


def system_blocks(layers: PromptLayers, kind: str) -> tuple[SystemBlock, ...]:
    """base, thread type, strategy (when set); one cache breakpoint after the last. Stable for a
    session: notes are in the turn context (`turn_context`)."""
    blocks = [SystemBlock(layers.base), SystemBlock(layers.alert if kind == "alert" else layers.chat)]
    if layers.strategy:
        blocks.append(SystemBlock("# TRADING STRATEGY\n" + layers.strategy))
    last = blocks[-1]
    blocks[-1] = SystemBlock(last.text, cache=True)
    return tuple(blocks)


def alert_suffix(event: AlertEvent) -> str:
    """What fired, its payload, and the mandatory first action (trade-management kinds)."""
    lines = [f"# ALERT: {event.kind.value} ({event.alert_id})",
             f"fired at {event.fired_at.isoformat(timespec='seconds')}"
             + (f" at price {event.price}" if event.price is not None else "")
             + ("  LATE (fired while the agent was down)" if event.late else ""),
             "payload: " + json.dumps(event.context, sort_keys=True, default=str)]
    if event.first_action:
        lines.append(f"MANDATORY FIRST ACTION: {event.first_action} (when an ALERT BRIEF follows, the runner has "
                     "done it: act on its results)")
    return "\n".join(lines)


MODE_TEXT = {"autonomous": "autonomous (your orders execute)",
             "copilot": "copilot (your orders become proposals the trader approves or rejects)"}


def turn_context(snapshot_text: str, alert: AlertEvent | None = None, notes: Sequence[Note] = (),
                 mode: str | None = None) -> str:
    """The text that opens the turn's user message: the live snapshot (with this thread's approval
    mode), the notes, then the alert suffix."""
    if mode:
        snapshot_text += f"\n## THREAD\napproval mode: {MODE_TEXT.get(mode, mode)}"
    parts = [snapshot_text, notes_layer(notes)]
    if alert is not None:
        parts.append(alert_suffix(alert))
    return "\n\n".join(parts)


def alert_title(event: AlertEvent) -> str:
    """A thread title from the alert: `early_warning BTC (tr_1a2b)`."""
    market = event.context.get("market")
    what = event.kind.value.replace("_", " ")
    if event.kind.value == "time":
        prompt = str(event.context.get("prompt", ""))[:40]
        return f"time: {prompt}" if prompt else f"time alert {event.alert_id}"
    return f"{what} {market} ({event.alert_id})" if market else f"{what} ({event.alert_id})"


def alert_message(event: AlertEvent) -> str:
    """The user-message text of an alert turn (the alert itself speaks for the trader)."""
    if event.kind.value == "time":
        return f"Time alert fired. Your earlier instruction: {event.context.get('prompt', '')}"
    return f"Alert fired: {alert_title(event)}. Handle it."
