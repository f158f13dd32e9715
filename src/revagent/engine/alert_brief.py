"""The alert brief: the mandatory first step of an alert turn, done by the runner in code.

Before the model's first call of an alert turn, `AlertBriefer(event)` reads what the model would
otherwise fetch with tools and writes it as the turn's user message (stored in the transcript, so a
resume replays the same brief):

- a watcher: the fired leg (level, direction, thesis, proposed side / entry / stop / target /
  conviction / risk), the other leg with its setup and its state (disarmed when the pair was
  consumed), the mid now and its distance from the level, a 1h and a 15m candle summary (last
  close, range, EMA 20/50, RSI 14, ATR 14), and the decision asked: trade the setup (with its stop
  and risk), re-arm at new levels, or let it lapse;
- trade management (early warning, profit target, stop verification, liquidation warning): the
  stop verification result (the exchange's reduce-only stops against the plan's stop and the
  position size; for a stop-loss verification alert also the check that fired and the repair the
  scheduler already made), mark, unrealized PnL, R now, the liquidation distance, time in trade, the
  plan's target and rationale, the candle summary (early warning and profit target: the price action
  the thesis is re-checked against), and the options of the kind: tighten / partial / trail / hold
  (hold is a recorded outcome), reduce for a liquidation warning, ensure_stop for a stop check;
- a LATE alert: how late (fired at / now) and what moved meanwhile (price at firing against now).

With `vision` (the model reads images), a watcher brief and a trade-management brief with candles
(early warning, profit target) also carry a chart (`AlertBrief.image`): the 1h candles (15m when
the 1h history is short) with EMA 20/50, VWAP, the pair's levels and the fired leg's entry / stop /
target, or the trade's entry, stop, target, take-profit and liquidation price. It is drawn in a
worker thread (matplotlib is CPU-bound: never on the event loop), named in the text (`CHART:` with
its levels), sent as an image block in the turn's user message, and never in the transcript: it is
kept beside the log while its turn runs (`Keyspace.turn_image`, a day's TTL) so a resumed turn
replays it byte for byte; an earlier turn's replay says it is not kept (`history.BRIEF_IMAGE_PLACEHOLDER`).

Every read is bounded (`timeout_s`) and a failed read says so in the brief instead of failing the
turn. No tool is added: the model acts with the tools it has.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from revagent.engine.chart import Bar, Level, render_chart
from revagent.engine.indicators import compute
from revagent.engine.providers.base import ImageBlock
from revagent.models import ProposedSetup, TradePlan, WatcherLeg, WatcherPair
from revagent.risk import AccountView
from revagent.store.alert_events import TRADE_MANAGEMENT_KINDS, AlertEvent, AlertKind

log = logging.getLogger(__name__)

INTERVAL_MS = {"15m": 900_000, "1h": 3_600_000}
CANDLES = 60  # per interval: enough for EMA 50 and ATR 14
CHART_PX = (1000, 600)  # 800 image tokens (width * height / 750), under the API's 1,568 px / 1.15 MP bound
CHART_MIN_BARS = 30  # fewer 1h candles than this: the chart shows the 15m ones


def _n(value: Decimal | float | None, places: int | None = None) -> str:
    if value is None:
        return "-"
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places))
    return format(d.normalize() if places is None else d, "f")


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.quantize(Decimal('0.01'))}%"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def span(td: timedelta) -> str:
    """A human duration, rounded: `45s`, `42m`, `3h05m`, `2d4h`."""
    secs = max(int(td.total_seconds()), 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172_800:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d{secs % 86400 // 3600}h"


def _liq(mark: Decimal, liq: Decimal | None) -> str:
    if liq is None:
        return ""
    return f"  liq {_n(liq)} ({_pct(abs(mark - liq) / mark * 100)} away)"


def setup_text(setup: ProposedSetup) -> str:
    """`side long entry 60000 stop 58800 target 64000 conviction 60 risk $20` (absent fields left out)."""
    parts = []
    if setup.side is not None:
        parts.append(f"side {setup.side.value}")
    for name, value in (("entry", setup.entry), ("stop", setup.stop), ("target", setup.target)):
        if value is not None:
            parts.append(f"{name} {_n(value)}")
    if setup.conviction is not None:
        parts.append(f"conviction {setup.conviction}")
    if setup.risk_usd is not None:
        parts.append(f"risk ${_n(setup.risk_usd, 2)}")
    return " ".join(parts) if parts else "no setup recorded"


def leg_text(name: str, leg: WatcherLeg) -> str:
    thesis = f'; thesis "{leg.thesis}"' if leg.thesis else "; no thesis"
    return (f"{name} leg {leg.direction.value} {_n(leg.level)} [{leg.status.value}]{thesis}; "
            f"setup: {setup_text(leg.setup)}")


def distance(level: Decimal, mid: Decimal | None, atr: float | None, atr_label: str = "1h") -> str:
    """`mid 60350 is +0.58% (+0.42 ATR 1h) from the level`."""
    if mid is None:
        return "mid unknown"
    move = mid - level
    text = f"mid {_n(mid)} is {'+' if move >= 0 else ''}{_pct(move / level * 100)}"
    if atr:
        text += f" ({'+' if move >= 0 else ''}{float(move) / atr:.2f} ATR {atr_label})"
    return text + " from the level"


@dataclass(frozen=True)
class CandleSummary:
    interval: str
    bars: int
    close: float | None
    high: float | None
    low: float | None
    change_pct: float | None
    ema20: float | None
    ema50: float | None
    rsi14: float | None
    atr14: float | None
    candles: tuple[Any, ...] = field(default=(), compare=False, repr=False)  # for the chart

    def line(self) -> str:
        if not self.bars:
            return f"{self.interval}: no candles"
        trend = ""
        if self.close is not None and self.ema20 is not None and self.ema50 is not None:
            trend = ("  above EMA20>EMA50" if self.close > self.ema20 > self.ema50 else
                     "  below EMA20<EMA50" if self.close < self.ema20 < self.ema50 else "  EMAs mixed")
        change = "-" if self.change_pct is None else f"{self.change_pct:+.2f}%"
        return (f"{self.interval} ({self.bars} bars): close {_g(self.close)}  range {_g(self.low)}-{_g(self.high)}  "
                f"change {change}  EMA20 {_g(self.ema20)}  EMA50 {_g(self.ema50)}  RSI14 "
                f"{'-' if self.rsi14 is None else f'{self.rsi14:.1f}'}  ATR14 {_g(self.atr14)}{trend}")


def summarize(interval: str, candles: Sequence[Any]) -> CandleSummary:
    highs = [float(c.high) for c in candles]
    lows = [float(c.low) for c in candles]
    closes = [float(c.close) for c in candles]
    if not closes:
        return CandleSummary(interval, 0, None, None, None, None, None, None, None, None)
    latest = compute(highs, lows, closes, [float(c.volume) for c in candles]).latest()
    first_open = float(candles[0].open)
    change = (closes[-1] / first_open - 1) * 100 if first_open else None
    return CandleSummary(interval, len(closes), closes[-1], max(highs), min(lows), change, latest.ema20,
                         latest.ema50, latest.rsi14, latest.atr14, tuple(candles))


OPTIONS: dict[AlertKind, str] = {
    AlertKind.EARLY_WARNING: (
        "OPTIONS: tighten the stop (modify_stop; never widen it), take a partial (close_position with a fraction), "
        "trail the stop behind structure (modify_stop), or hold (a recorded outcome: no tool call, say why). Exit "
        "fully with close_position fraction 1."),
    AlertKind.PROFIT_TARGET: (
        "OPTIONS: take a partial (close_position with a fraction), move the stop to break-even or trail it "
        "(modify_stop), set a further target (set_target), exit (close_position fraction 1), or hold (a recorded "
        "outcome: no tool call, say why)."),
    AlertKind.STOP_LOSS_VERIFICATION: (
        "OPTIONS: if the verification above is not OK, re-place the plan's stop (ensure_stop) or set a new one "
        "(modify_stop; never wider than the plan); if the trade no longer makes sense, close it (close_position)."),
    AlertKind.LIQUIDATION_WARNING: (
        "OPTIONS: reduce the position (close_position with a fraction) until the liquidation price is far enough, "
        "or add margin to an isolated position (adjust_margin with add_usd; a cross position shares the account's "
        "margin), and keep the stop well before it (modify_stop). Or hold if the stop is safely before the "
        "liquidation price (say why)."),
}


async def _none() -> None:
    return None


@dataclass(frozen=True)
class AlertBrief:
    """An alert turn's brief: the user message's text and, with vision, the chart shown with it."""

    text: str
    image: ImageBlock | None = None


@dataclass
class _Chart:
    """What the brief's chart draws, gathered while the text is built."""

    market: str = ""
    candles: list[CandleSummary] | None = None
    levels: list[Level] = field(default_factory=list)

    def add(self, kind: Any, price: Decimal | None, label: str) -> None:
        if price is not None and price > 0:
            self.levels.append(Level(kind, float(price), label))


def _chart_bars(summary: CandleSummary) -> list[Bar]:
    return [Bar(int(c.open_time), float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume))
            for c in summary.candles]


@dataclass
class AlertBriefer:
    """Builds an alert turn's brief (see the module docstring). Every source is optional; `vision`
    draws the chart (the runner sets it when the model reads images)."""

    clock: Callable[[], datetime]
    plans: Any = None  # TradePlans: get(trade_id)
    watchers: Any = None  # a repository with get(pair_id)
    account: Callable[[], Awaitable[AccountView | None]] | None = None
    market: Any = None  # MarketData: candles(coin, interval, start_ms, end_ms)
    timeout_s: float = 5.0
    vision: bool = False

    async def __call__(self, event: AlertEvent) -> AlertBrief:
        head = [f"# ALERT BRIEF: {event.kind.value} {event.context.get('market', '')} ({event.alert_id})".rstrip(),
                "The runner already did the first step below (no need to fetch it again with tools)."]
        chart = _Chart()
        try:
            if event.kind is AlertKind.WATCHER:
                body = await self._watcher(event, chart)
            elif event.kind in TRADE_MANAGEMENT_KINDS:
                body = await self._trade(event, chart)
            elif event.kind is AlertKind.TIME:
                return AlertBrief(f"Time alert fired. Your earlier instruction: {event.context.get('prompt', '')}"
                                  + ("\n" + "\n".join(await self._late(event, None)) if event.late else ""))
            else:
                return AlertBrief("")
        except Exception as exc:  # the brief is a help: a failure never stops the turn
            log.exception("alert brief of %s failed", event.trigger_key)
            body = [f"(the brief could not be built: {type(exc).__name__}: {exc}; use the tools)"]
            chart = _Chart()
        image = None
        if self.vision and chart.candles:
            image, line = await self._draw(chart)
            body.insert(max(len(body) - 1, 0), line)  # before the decision asked / the options
        return AlertBrief("\n".join([*head, *body]), image)

    async def _draw(self, chart: _Chart) -> tuple[ImageBlock | None, str]:
        """The chart as a PNG image block, drawn in a worker thread (CPU-bound), and its `CHART:` line."""
        assert chart.candles
        summary = next((c for c in chart.candles if c.interval == "1h" and c.bars >= CHART_MIN_BARS),
                       max(chart.candles, key=lambda c: c.bars))
        bars = _chart_bars(summary)
        if not bars:
            return None, "CHART: none (no candles)"
        title = f"{chart.market} {summary.interval}"
        width, height = CHART_PX
        png = await self._read("chart", asyncio.to_thread(render_chart, title, bars, chart.levels,
                                                          width_px=width, height_px=height))
        if not isinstance(png, bytes) or not png:
            return None, "CHART: could not be drawn (get_chart to see one)"
        levels = ", ".join(f"{lv.label} {_g(lv.price)}" for lv in chart.levels) or "none"
        return (ImageBlock(base64.b64encode(png).decode("ascii"), "image/png"),
                f"CHART: attached image: {title}, {len(bars)} candles, EMA20/EMA50/VWAP; levels: {levels}")

    async def _read(self, what: str, coro: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(coro, self.timeout_s)
        except Exception as exc:
            log.info("alert brief: %s unavailable (%r)", what, exc)
            return None

    async def _account(self) -> AccountView | None:
        return await self._read("account", self.account()) if self.account is not None else None

    async def _candles(self, market: str) -> list[CandleSummary] | None:
        if self.market is None:
            return None
        now_ms = int(self.clock().timestamp() * 1000)

        async def one(interval: str) -> CandleSummary:
            start = now_ms - INTERVAL_MS[interval] * CANDLES
            return summarize(interval, list(await self.market.candles(market, interval, start, now_ms))[-CANDLES:])

        got = await self._read("candles", asyncio.gather(one("1h"), one("15m")))
        return list(got) if got is not None else None

    async def _late(self, event: AlertEvent, mid: Decimal | None) -> list[str]:
        now = self.clock()
        fired = event.fired_at
        scheduled = event.context.get("scheduled_at")
        since = datetime.fromisoformat(scheduled) if isinstance(scheduled, str) else fired
        late_by = max(now - since, timedelta(0))
        line = (f"LATE: fired {since.isoformat(timespec='seconds')}, handled {now.isoformat(timespec='seconds')} "
                f"({span(late_by)} late)")
        missed = event.context.get("missed")
        if missed:
            line += f"; {missed} earlier occurrence(s) missed"
        out = [line]
        if event.price is not None and mid is not None and event.price > 0:
            out.append(f"moved meanwhile: {_n(event.price)} at firing -> {_n(mid)} now "
                       f"({_pct((mid - event.price) / event.price * 100)})")
        elif event.price is not None:
            out.append(f"price at firing {_n(event.price)}; the price now is not known here (check it)")
        out.append("Judge the setup as it is now, not as it was when it fired.")
        return out

    async def _watcher(self, event: AlertEvent, chart: _Chart) -> list[str]:
        ctx = event.context
        market = str(ctx.get("market", ""))
        slot = str(ctx.get("slot", ""))
        pair: WatcherPair | None = None
        if self.watchers is not None:
            pair = await self._read("watcher", self.watchers.get(event.alert_id))
        account, candles = await asyncio.gather(self._account(), self._candles(market))
        chart.market, chart.candles = market, candles
        rules = account.markets.get(market) if account is not None else None
        mid = (rules.mid_px or rules.mark_px) if rules is not None else None
        level = Decimal(str(ctx["level"])) if ctx.get("level") is not None else None
        atr, atr_label = next(((c.atr14, c.interval) for c in candles or () if c.atr14), (None, "1h"))
        lines = [f"fired: {slot} leg {ctx.get('direction', '')} {_n(level)} at "
                 f"{event.fired_at.isoformat(timespec='seconds')}"
                 + (f", price {_n(event.price)}" if event.price is not None else "")]
        fired_leg = other_leg = None
        other_name = "lower" if slot == "upper" else "upper"
        if pair is not None:
            fired_leg = pair.upper if slot == "upper" else pair.lower
            other_leg = pair.lower if slot == "upper" else pair.upper
        if fired_leg is not None:
            lines.append(leg_text(slot, fired_leg))
        else:  # the pair is gone: the event carries the fired leg's thesis and setup
            setup = ProposedSetup.model_validate(ctx.get("setup") or {})
            lines.append(f"{slot} leg; thesis \"{ctx.get('thesis', '')}\"; setup: {setup_text(setup)}")
        if other_leg is not None:
            lines.append("other " + leg_text(other_name, other_leg)
                         + ("  (disarmed when this leg fired: the pair is consumed)"
                            if any(k.startswith(f"{event.alert_id}#{other_name}:") for k in ctx.get("disarmed", ()))
                            else ""))
        else:
            lines.append(f"other leg: none ({'pair not found' if pair is None else 'the pair had one leg'})")
        if level is not None:
            lines.append(distance(level, mid, atr, atr_label))
        if ctx.get("expires_at"):
            lines.append(f"the pair was set to expire {ctx['expires_at']}")
        lines += self._candle_lines(candles)
        if event.late:
            lines += await self._late(event, mid)
        setup = fired_leg.setup if fired_leg is not None else ProposedSetup.model_validate(ctx.get("setup") or {})
        for name, leg in ((slot, fired_leg), (other_name, other_leg)):
            if leg is not None:
                chart.add("watcher", leg.level, name)
        if fired_leg is None:
            chart.add("watcher", level, slot)
        chart.add("entry", setup.entry, "entry")
        chart.add("stop", setup.stop, "stop")
        chart.add("target", setup.target, "target")
        trade = "trade the setup with open_trade"
        if setup.stop is not None or setup.risk_usd is not None:
            trade += (f" (stop {_n(setup.stop)}, risk ${_n(setup.risk_usd, 2) if setup.risk_usd else '-'}"
                      + (f", target {_n(setup.target)}" if setup.target is not None else "") + ")")
        lines.append(f"DECISION ASKED: {trade}; or re-arm at new levels with set_watcher_pair; or let it lapse "
                     "(say why). One of the three, stated in your summary.")
        return lines

    @staticmethod
    def _candle_lines(candles: list[CandleSummary] | None) -> list[str]:
        if candles is None:
            return ["candles: unavailable (get_candles if you need them)"]
        return ["candles " + c.line() for c in candles]

    async def _trade(self, event: AlertEvent, chart: _Chart) -> list[str]:
        ctx = event.context
        trade_id = str(ctx.get("trade_id") or event.alert_id)
        market = str(ctx.get("market", ""))
        plan: TradePlan | None = await self._read("plan", self.plans.get(trade_id)) if self.plans else None
        # price action matters to the discretionary kinds; the protective ones (stop, liquidation) go fast
        wants_candles = event.kind in (AlertKind.EARLY_WARNING, AlertKind.PROFIT_TARGET)
        chart_market = market or (plan.market if plan is not None else "")
        account, candles = await asyncio.gather(
            self._account(), self._candles(chart_market) if wants_candles and chart_market else _none())
        if plan is not None:
            market = market or plan.market
        position = account.position(market) if account is not None and market else None
        if position is not None:
            chart.market, chart.candles = position.market, candles
            chart.add("entry", position.entry_px, "entry")
            chart.add("stop", plan.stop_px if plan is not None else position.planned_stop_px, "stop")
            if plan is not None:
                chart.add("target", plan.target_px, "target")
                chart.add("take_profit", plan.take_profit_px, "TP")
            chart.add("liquidation", position.liquidation_px, "liq")
        lines: list[str] = []
        if event.kind is AlertKind.STOP_LOSS_VERIFICATION:
            lines.append(f"stop check that fired: {ctx.get('status', '?')} (expected {ctx.get('expected_px')} for "
                         f"{ctx.get('expected_size')}, found {ctx.get('found_px')} for {ctx.get('found_size')})"
                         + (f": {ctx['detail']}" if ctx.get("detail") else ""))
            if ctx.get("protection") is not None:
                lines.append(f"repair already made by the scheduler: {ctx['protection']}")
        elif ctx.get("level") is not None:
            lines.append(f"level {ctx.get('direction', '')} {ctx['level']} crossed at "
                         f"{event.fired_at.isoformat(timespec='seconds')}"
                         + (f", price {_n(event.price)}" if event.price is not None else "")
                         + (f" ({ctx['description']})" if ctx.get("description") else ""))
        if plan is None:
            lines.append(f"no recorded plan for {trade_id} (get_ledger / get_snapshot)")
        if position is None:
            lines.append(f"no open position on {market or '?'} now: the trade may have closed (check the snapshot)")
            if event.late:
                lines += await self._late(event, None)
            lines.append("DECISION ASKED: nothing to manage if the position is gone; say so.")
            return lines
        size = abs(position.size)
        side = "long" if position.size > 0 else "short"
        lines.append(self._stop_verification(account, position.market, side, size,
                                             plan.stop_px if plan is not None else position.planned_stop_px))
        upnl = (position.mark_px - position.entry_px) * position.size
        risk = plan.risk_usd if plan is not None and plan.risk_usd > 0 else None
        r_now = upnl / risk if risk else None
        lines.append(f"position: {side} {_n(size)} {position.market} @ {_n(position.entry_px)}  mark "
                     f"{_n(position.mark_px)}  unrealized ${_n(upnl, 2)}  R now "
                     f"{'-' if r_now is None else _n(r_now, 2)} (declared risk ${_n(risk, 2) if risk else '-'})"
                     + _liq(position.mark_px, position.liquidation_px))
        if plan is not None:
            age = self.clock() - plan.opened_at
            lines.append(f"plan [{plan.trade_id}]: stop {_n(plan.stop_px)}  target {_n(plan.target_px)}"
                         + (f"  take-profit order {_n(plan.take_profit_px)}" if plan.take_profit_px else "")
                         + f"  conviction {'-' if plan.conviction is None else plan.conviction}"
                         + f"  in trade {span(age)}"
                         + (f'  rationale "{plan.rationale}"' if plan.rationale else ""))
            if plan.thesis or plan.invalidation:
                lines.append(f'thesis "{plan.thesis or "-"}"  invalidation "{plan.invalidation or "-"}": '
                             "re-check both against the price action")
        if wants_candles:
            lines += self._candle_lines(candles)
        if event.late:
            lines += await self._late(event, position.mark_px)
        lines.append(OPTIONS.get(event.kind, OPTIONS[AlertKind.EARLY_WARNING]))
        return lines

    @staticmethod
    def _stop_verification(account: AccountView | None, market: str, side: str, size: Decimal,
                           planned: Decimal | None) -> str:
        """The exchange's reduce-only stops on `market` (closing side) against the plan's stop and the size."""
        if account is None:
            return "STOP VERIFICATION: account unavailable (verify with get_snapshot)"
        closing = "sell" if side == "long" else "buy"
        stops = [t for t in account.triggers if t.market == market and t.kind == "stop" and t.reduce_only
                 and t.side == closing]
        if not stops:
            return f"STOP VERIFICATION: MISSING: no reduce-only stop on the exchange for {market} (plan {_n(planned)})"
        covered = sum((t.size for t in stops), Decimal(0))
        levels = ", ".join(f"{_n(t.trigger_px)} for {_n(t.size)}" for t in stops)
        # within 1 bp of the plan (the scheduler's check has its own tolerance, `stop_px_tolerance_bps`)
        at_plan = planned is not None and all(abs(t.trigger_px - planned) <= planned / 10_000 for t in stops)
        verdict = ("OK" if at_plan and covered >= size
                   else "WRONG SIZE" if at_plan else "AT ANOTHER LEVEL" if planned is not None else "NO PLANNED STOP")
        return (f"STOP VERIFICATION: {verdict}: exchange stop {levels} (covers {_n(covered)} of {_n(size)}) "
                f"vs plan {_n(planned)}")
