"""The canonical runtime snapshot: one builder over the account view and the session's stored state.

`build_snapshot(inputs)` is pure (no I/O, no clock: `inputs.now`). Its `RuntimeSnapshot` renders
as deterministic text for the prompt (`text()`) and as a JSON document for the TUI panel and
`revagent status --json` (`doc`). It is rebuilt for every turn; `SnapshotSource` gathers the inputs
from a session's parts.

Ordering is stable: positions, orders and markets by market name; watchers by (market, created,
id); time alerts by fire time; notes by creation. Money is shown to the cent, prices as the
exchange gave them.

Size budget (`text(budget_chars)`): the sections `account`, `risk`, `active trades`, `orders` and
`health` are always rendered whole, whatever the budget: risk and active trades are never dropped.
The other sections (`markets`, `closed trades`, `watchers`, `time alerts`, `notes`) follow in that
order, each cut line by line when the budget runs out, with a trailer saying how many lines were
left out (the model can call `get_snapshot` for a section in full).
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, overload

from revagent.models import (
    LegStatus,
    Note,
    TimeAlert,
    TimeAlertStatus,
    TradePlan,
    WatcherLeg,
    WatcherPair,
    format_duration,
)
from revagent.risk import AccountView, RiskSettings, RiskState, risk_usage, status

CENT = Decimal("0.01")
DEFAULT_BUDGET_CHARS = 12_000
THESIS_CHARS = 160
"""A trade's thesis and invalidation in the snapshot's trades line (in full in `get_ledger` and the briefs)."""
MANDATORY = ("account", "risk", "trades", "orders", "health")
OPTIONAL = ("markets", "closed", "watchers", "time_alerts", "notes")
TITLES = {"account": "ACCOUNT", "risk": "RISK", "trades": "ACTIVE TRADES", "orders": "OPEN ORDERS",
          "health": "HEALTH", "markets": "MARKETS", "closed": "CLOSED TRADES", "watchers": "WATCHERS",
          "time_alerts": "TIME ALERTS", "notes": "NOTES"}


@dataclass(frozen=True, slots=True)
class MarketConditions:
    """Live conditions of one market: prices in USD, `change_24h_pct` in percent, `funding_rate` the
    hourly rate as a fraction (Hyperliquid's), `open_interest` in coins."""

    market: str
    mark_px: Decimal
    mid_px: Decimal | None = None
    change_24h_pct: Decimal | None = None
    funding_rate: Decimal | None = None
    open_interest: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One closed trade for the performance lines: its R (None without a declared risk) and net PnL."""

    trade_id: str
    market: str
    r: Decimal | None
    net_pnl_usd: Decimal


@dataclass(frozen=True, slots=True)
class ClosedTradeStats:
    """Closed trades over some window (the caller says which in `window`); `recent` the last ones
    (newest first), `today_pnl_usd` the realized PnL of the trades closed today (UTC)."""

    trades: int
    wins: int
    losses: int
    net_pnl_usd: Decimal
    avg_r: Decimal | None = None
    window: str = "all"
    recent: tuple[ClosedTrade, ...] = ()
    today_pnl_usd: Decimal | None = None


def closed_stats(trades: Sequence[Any], now: datetime, *, last: int = 10) -> ClosedTradeStats:
    """`ClosedTradeStats` of the ledger's trades (`sync.trades.Trade`: closed and complete ones count)."""
    closed = sorted((t for t in trades if t.status == "closed" and t.complete and t.closed_at is not None),
                    key=lambda t: (t.closed_at, t.trade_id))
    rs = [t.r_multiple for t in closed if t.r_multiple is not None]
    today = sum((t.net_pnl for t in closed if t.closed_at.date() == now.date()), Decimal(0))
    return ClosedTradeStats(
        trades=len(closed), wins=sum(1 for t in closed if t.net_pnl > 0),
        losses=sum(1 for t in closed if t.net_pnl < 0),
        net_pnl_usd=sum((t.net_pnl for t in closed), Decimal(0)), avg_r=sum(rs, Decimal(0)) / len(rs) if rs else None,
        recent=tuple(ClosedTrade(t.trade_id, t.market, t.r_multiple, t.net_pnl) for t in reversed(closed[-last:])),
        today_pnl_usd=today)


@dataclass(frozen=True, slots=True)
class Health:
    """Sync phase, websocket link, and the age of the last account update in seconds."""

    sync_phase: str = "consistent"
    ws_connected: bool | None = None
    last_update_age_s: float | None = None
    model: str = ""
    detail: tuple[str, ...] = ()
    ws_down_since: datetime | None = None
    sync_reason: str = ""


@dataclass(frozen=True)
class SnapshotInputs:
    now: datetime
    settings: RiskSettings
    risk_state: RiskState
    account: AccountView | None = None
    plans: Sequence[TradePlan] = ()
    watchers: Sequence[WatcherPair] = ()
    time_alerts: Sequence[TimeAlert] = ()
    notes: Sequence[Note] = ()
    markets: Mapping[str, MarketConditions] = field(default_factory=dict)
    closed: ClosedTradeStats | None = None
    health: Health = Health()
    wallet: str = ""
    focus: tuple[str, ...] = ()  # markets always in MARKETS (the alert's market)
    atr: Mapping[str, Decimal] = field(default_factory=dict)  # 1h ATR 14 per market, when known
    funding_paid: Mapping[str, Decimal] = field(default_factory=dict)  # per open trade id, USD (+ paid)
    early_warning_fraction: Decimal = Decimal("0.5")


class LazyRows(Sequence[str]):
    """The lines of an optional section, rendered on demand (a prompt usually shows a few dozen of
    hundreds of watchers); `rows()` renders every JSON row (for the TUI and `status --json`)."""

    def __init__(self, items: Sequence[Any], line: Callable[[Any], str], row: Callable[[Any], dict[str, Any]]) -> None:
        self.items = items
        self.line = line
        self.row = row
        self._lines: list[str] = []

    def _line(self, i: int) -> str:
        while len(self._lines) <= i:
            self._lines.append(self.line(self.items[len(self._lines)]))
        return self._lines[i]

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._line(j) for j in range(*i.indices(len(self)))]
        return self._line(i if i >= 0 else len(self) + i)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self.items)):
            yield self._line(i)

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(item) for item in self.items]


@dataclass(frozen=True)
class RuntimeSnapshot:
    """`doc` is the JSON document (decimal strings, ISO times), built on first access (a turn's
    prompt needs only the text); `sections` the text lines per section (optional sections render
    their lines lazily)."""

    inputs: SnapshotInputs
    sections: dict[str, Sequence[str]]
    header: str

    @cached_property
    def doc(self) -> dict[str, Any]:
        out = _build(self.inputs, with_doc=True)[0]
        for name, lines in self.sections.items():
            if isinstance(lines, LazyRows):
                out[name] = lines.rows()
        return out

    def text(self, budget_chars: int = DEFAULT_BUDGET_CHARS, *, include_notes: bool = True) -> str:
        """Deterministic text within `budget_chars` where possible (mandatory sections always whole)."""
        parts = [self.header]
        for name in MANDATORY:
            parts.append(_section_text(name, self.sections[name]))
        used = sum(len(p) + 1 for p in parts)
        names = [n for n in OPTIONAL if len(self.sections[n]) and not (n == "notes" and not include_notes)]
        for k, name in enumerate(names):
            lines = self.sections[name]
            head = f"## {TITLES[name]}"
            kept: list[str] = []
            size = len(head) + 1
            for line in lines:
                size += len(line) + 1
                if used + size > budget_chars:
                    break
                kept.append(line)
            if len(kept) == len(lines):
                section = "\n".join([head, *kept])
                parts.append(section)
                used += len(section) + 1
                continue
            trailer = f"… {len(lines) - len(kept)} more (call get_snapshot)"
            while kept and used + len(head) + 1 + sum(len(x) + 1 for x in kept) + len(trailer) > budget_chars:
                kept.pop()
                trailer = f"… {len(lines) - len(kept)} more (call get_snapshot)"
            section = "\n".join([head, *kept, trailer])
            parts.append(section)
            used += len(section) + 1
            for rest in names[k + 1:]:
                parts.append(f"## {TITLES[rest]}\n… {len(self.sections[rest])} lines omitted (call get_snapshot)")
            break
        return "\n".join(parts)

    def section(self, name: str) -> str:
        return _section_text(name, self.sections[name])


def _section_text(name: str, lines: Sequence[str]) -> str:
    return "\n".join([f"## {TITLES[name]}", *(list(lines) or ["(none)"])])


# --------------------------------------------------------------------------------- formatting


def usd(value: Decimal) -> str:
    return f"{value.quantize(CENT):,}"


def num(value: Decimal | None) -> str:
    if value is None:
        return "-"
    text = format(value.normalize(), "f")
    return text


def r2(value: Decimal | None) -> str:
    """An R multiple (or any ratio) to 2 decimals, '-' for None."""
    return "-" if value is None else str(value.quantize(Decimal("0.01")))


def _age(td: timedelta) -> str:
    """A rounded duration: `45s`, `42m`, `3h05m`, `2d4h`."""
    secs = max(int(td.total_seconds()), 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172_800:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d{secs % 86400 // 3600}h"


def pct(value: Decimal | None, places: str = "0.01") -> str:
    return "-" if value is None else f"{value.quantize(Decimal(places))}%"


def pct_2(value: Decimal | None) -> Decimal | None:
    """A percentage as the tools and the snapshot give it: rounded to 2 decimals."""
    return None if value is None else value.quantize(CENT)


def funding_pct_per_hour(rate: Decimal | None) -> Decimal | None:
    """An hourly funding rate (a fraction) in %/h, to 4 decimals (0.0013%/h; 2 would round most to 0)."""
    return None if rate is None else (rate * 100).quantize(Decimal("0.0001"))


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (`2026-12-04T21:40:00Z`): every time a tool returns."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _s(value: Any) -> Any:
    """JSON form: Decimal -> str, datetime -> ISO, else unchanged."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# ------------------------------------------------------------------------------------ builder


def build_snapshot(inputs: SnapshotInputs) -> RuntimeSnapshot:
    """The snapshot of `inputs` (pure; see the module docstring)."""
    sections = _build(inputs, with_doc=False)[1]
    header = f"# RUNTIME SNAPSHOT {inputs.now.isoformat(timespec='seconds')}" + (
        f" {inputs.wallet}" if inputs.wallet else "")
    return RuntimeSnapshot(inputs=inputs, sections=sections, header=header)


def _build(inputs: SnapshotInputs, *, with_doc: bool) -> tuple[dict[str, Any], dict[str, Sequence[str]]]:
    """The JSON document (its fixed sections; empty unless `with_doc`) and the text sections."""
    now = inputs.now
    acct = inputs.account
    plans_by_market = {p.market: p for p in inputs.plans if p.status in ("opening", "open")}
    sections: dict[str, Sequence[str]] = {}
    doc: dict[str, Any] = {"as_of": now.isoformat(), "wallet": inputs.wallet}

    # account
    day_pnl: Decimal | None = None
    if acct is not None:
        upnl = sum(((p.mark_px - p.entry_px) * p.size for p in acct.positions if p.size != 0), Decimal(0))
        day_pnl = (acct.equity - inputs.risk_state.day_start_equity - inputs.risk_state.day_transfers
                   if inputs.risk_state.day_start_equity is not None else None)
        if with_doc:
            doc["account"] = {"equity": _s(acct.equity), "available_margin": _s(acct.available_margin),
                              "unrealized_pnl": _s(upnl), "day_pnl": _s(day_pnl),
                              "positions": len(acct.positions_by_market)}
        sections["account"] = [f"equity ${usd(acct.equity)}  available margin ${usd(acct.available_margin)}  "
                               f"unrealized PnL ${usd(upnl)}"
                               + (f"  today ${usd(day_pnl)}" if day_pnl is not None else "")]
    else:
        doc["account"] = None
        sections["account"] = ["account not loaded yet (no trading until sync is consistent)"]

    # risk
    st = status(inputs.risk_state, now, inputs.settings)
    risk_doc: dict[str, Any] = {"state": st.state.value, "multiplier": _s(st.multiplier),
                                "drawdown_pct": _s(st.drawdown * 100), "penalty": _s(st.penalty),
                                "reason": st.reason,
                                "locked_until": _s(st.locked_until), "cooldown_until": _s(st.cooldown_until)
                                } if with_doc else {}
    lines = [f"state {st.state.value.upper()}  multiplier {st.multiplier.quantize(Decimal('0.001'))}  "
             f"drawdown {pct(st.drawdown * 100)}  penalty {st.penalty.quantize(Decimal('0.001'))}"]
    if st.reason:
        lines.append(f"reason: {st.reason}")
    s_, rs = inputs.settings, inputs.risk_state
    if rs.day_start_equity is not None:
        limit = rs.day_start_equity * s_.max_daily_loss_pct / 100
        budget_left = max(Decimal(0), limit + min(day_pnl, Decimal(0))) if day_pnl is not None else None
        budget = (f"daily loss budget ${usd(budget_left)} left of ${usd(limit)} ({num(s_.max_daily_loss_pct)}% of "
                  f"day-start equity)" if budget_left is not None else f"daily loss limit ${usd(limit)}")
    else:
        budget_left = None
        budget = f"daily loss limit {num(s_.max_daily_loss_pct)}% of day-start equity"
    streak = (f"losing streak {rs.losing_streak} (a cooldown of {format_duration(s_.cooldown)} after "
              f"{s_.cooldown_after_losses} in a row)" if s_.cooldown_after_losses else
              f"losing streak {rs.losing_streak} (no cooldown set)")
    lines.append(f"{budget}; {streak}")
    if with_doc:
        risk_doc.update({"daily_loss_budget_left_usd": _s(budget_left),
                         "losing_streak": rs.losing_streak, "cooldown_after_losses": s_.cooldown_after_losses,
                         "cooldown": format_duration(s_.cooldown)})
    for label, until in (("lockout", st.locked_until), ("cooldown", st.cooldown_until)):
        if until is not None:
            left = max(until - now, until - until)
            lines.append(f"{label} until {until.isoformat(timespec='seconds')} ({format_duration(left)} left)")
    if acct is not None:
        usage = risk_usage(acct, inputs.settings, inputs.risk_state, now)
        if with_doc:
            risk_doc.update({"portfolio_cap_usd": _s(usage.portfolio_cap_usd),
                             "market_cap_usd": _s(usage.market_cap_usd),
                             "per_trade_cap_usd": _s(usage.per_trade_cap_usd),
                             "open_risk_usd": _s(usage.total_open_risk_usd), "headroom_usd": _s(usage.headroom_usd),
                             "markets": [{"market": m.market, "open_risk_usd": _s(m.open_risk_usd),
                                          "cap_usd": _s(m.cap_usd), "headroom_usd": _s(m.headroom_usd),
                                          "unprotected": m.unprotected} for m in usage.markets],
                             "unprotected": list(usage.unprotected)})
        lines.append(f"caps (declared risk): per trade ${usd(usage.per_trade_cap_usd)}, per market "
                     f"${usd(usage.market_cap_usd)}, portfolio ${usd(usage.portfolio_cap_usd)}; open at the stops "
                     f"${usd(usage.total_open_risk_usd)}, headroom ${usd(usage.headroom_usd)}")
        if usage.markets:
            lines.append("open at the stop: " + ", ".join(
                f"{m.market} ${usd(m.open_risk_usd)} of ${usd(m.cap_usd)}"
                + (" UNPROTECTED (no stop)" if m.unprotected else "") for m in usage.markets))
        priced = set(acct.positions_by_market) | {e.market for e in acct.entries} | set(inputs.focus)
        ages = [(a, m) for m in sorted(priced) if (a := acct.price_age_seconds(m, now)) is not None]
        if ages:
            oldest, where = max(ages)
            lines.append(f"price age: oldest {oldest:.1f}s ({where})")
            if with_doc:
                risk_doc["price_age_s"] = {m: round(a, 1) for a, m in ages}
    else:
        s = inputs.settings
        lines.append(f"caps: per trade ${usd(s.max_risk_per_trade_usd)}, portfolio ${usd(s.max_portfolio_risk_usd)} "
                     f"(before the multiplier)")
    lines.append(f"limits: max leverage {num(inputs.settings.max_leverage)}x, min reward:risk "
                 f"{num(inputs.settings.min_reward_risk)}")
    doc["risk"] = risk_doc
    sections["risk"] = lines

    # active trades
    trades_doc: list[dict[str, Any]] = []
    lines = []
    if acct is not None:
        for market in sorted(acct.positions_by_market):
            p = acct.positions_by_market[market]
            plan = plans_by_market.get(market)
            side = "long" if p.size > 0 else "short"
            upnl = (p.mark_px - p.entry_px) * p.size
            r_now = (upnl / plan.risk_usd) if plan is not None and plan.risk_usd > 0 else None
            margin = abs(p.size) * p.mark_px / p.leverage
            opened = plan.opened_at if plan is not None else p.opened_at
            funding = inputs.funding_paid.get(plan.trade_id) if plan is not None else None
            early = (p.entry_px + (plan.stop_px - p.entry_px) * inputs.early_warning_fraction
                     if plan is not None and plan.stop_px is not None else None)
            if with_doc:
                trades_doc.append({
                    "market": market, "trade_id": plan.trade_id if plan else None, "side": side,
                    "size": _s(abs(p.size)), "entry_px": _s(p.entry_px), "mark_px": _s(p.mark_px),
                    "unrealized_pnl": _s(upnl), "stop_px": _s(p.stop_px),
                    "planned_stop_px": _s(plan.stop_px if plan else None),
                    "target_px": _s(plan.target_px if plan else p.target_px),
                    "take_profit_px": _s(plan.take_profit_px if plan else None),
                    "conviction": plan.conviction if plan else None,
                    "risk_usd": _s(plan.risk_usd if plan else None), "r_now": _s(r_now),
                    "leverage": _s(p.leverage), "liquidation_px": _s(p.liquidation_px),
                    "margin_usd": _s(margin.quantize(CENT)), "funding_paid_usd": _s(funding),
                    "early_warning_px": _s(early), "rationale": plan.rationale if plan else None,
                    "thesis": plan.thesis or None if plan else None,
                    "invalidation": plan.invalidation or None if plan else None,
                    "opened_at": _s(opened)})
            stop = num(p.stop_px) if p.stop_px is not None else "NONE (unprotected)"
            line = (f"{market} {side} {num(abs(p.size))} @ {num(p.entry_px)} mark {num(p.mark_px)} "
                    f"PnL ${usd(upnl)} stop {stop}")
            if plan is not None:
                conviction = "-" if plan.conviction is None else str(plan.conviction)
                r_text = "-" if r_now is None else str(r_now.quantize(Decimal("0.01")))
                line += (f" R {r_text} declared risk ${usd(plan.risk_usd)} target {num(plan.target_px)}"
                         f" early warning {num(early)} conv {conviction}")
            else:
                line += " (no recorded plan)"
            line += f" {num(p.leverage)}x margin ${usd(margin)}"
            if funding is not None:
                line += f" funding paid ${usd(funding)}"
            if p.liquidation_px is not None:
                line += f" liq {num(p.liquidation_px)}"
            if opened is not None:
                line += f" age {_age(now - opened)}"
            if plan is not None:
                line += f" [{plan.trade_id}]"
                if plan.thesis or plan.invalidation:
                    line += (f' thesis "{_clip(plan.thesis, THESIS_CHARS)}"' if plan.thesis else "") + (
                        f' invalidation "{_clip(plan.invalidation, THESIS_CHARS)}"' if plan.invalidation else "")
                elif plan.rationale:
                    line += f' "{plan.rationale[:60]}"'
            lines.append(line)
    doc["trades"] = trades_doc
    sections["trades"] = lines

    # open orders
    orders_doc: list[dict[str, Any]] = []
    lines = []
    if acct is not None:
        for e in sorted(acct.entries, key=lambda e: (e.market, e.limit_px, e.oid or 0)):
            if with_doc:
                orders_doc.append({"kind": "entry", "market": e.market, "side": e.side, "size": _s(e.size),
                                   "limit_px": _s(e.limit_px), "stop_px": _s(e.stop_px), "risk_usd": _s(e.risk_usd),
                                   "oid": e.oid})
            lines.append(f"{e.market} entry {e.side} {num(e.size)} @ {num(e.limit_px)}  stop {num(e.stop_px)}  "
                         f"risk ${usd(e.risk_usd)}  oid {e.oid}")
        for t in sorted(acct.triggers, key=lambda t: (t.market, t.kind, t.trigger_px, t.oid or 0)):
            if with_doc:
                orders_doc.append({"kind": t.kind, "market": t.market, "side": t.side, "size": _s(t.size),
                                   "trigger_px": _s(t.trigger_px), "oid": t.oid})
            lines.append(f"{t.market} {t.kind} {t.side} {num(t.size)} @ trigger {num(t.trigger_px)}  oid {t.oid}")
    doc["orders"] = orders_doc
    sections["orders"] = lines

    # health
    h = inputs.health
    doc["health"] = {"sync_phase": h.sync_phase, "sync_reason": h.sync_reason, "ws_connected": h.ws_connected,
                     "ws_down_since": _s(h.ws_down_since), "last_update_age_s": h.last_update_age_s,
                     "model": h.model, "detail": list(h.detail)}
    ws = "unknown" if h.ws_connected is None else ("connected" if h.ws_connected else "DOWN")
    if h.ws_connected is False and h.ws_down_since is not None:
        ws += f" since {h.ws_down_since.isoformat(timespec='seconds')} ({_age(now - h.ws_down_since)})"
    age = "unknown" if h.last_update_age_s is None else f"{h.last_update_age_s:.1f}s ago"
    stale = h.sync_phase != "consistent" or h.ws_connected is False
    sections["health"] = [f"sync {h.sync_phase}" + (f" ({h.sync_reason})" if h.sync_reason else "")
                          + f"  websocket {ws}  last account update {age}" + (f"  model {h.model}" if h.model else ""),
                          *(["STALE: open no new risk until sync is consistent"] if stale else []), *h.detail]
    if acct is not None and acct.price_source:  # a paper venue says where its prices come from
        doc["health"]["prices"] = acct.price_source
        sections["health"] = [*sections["health"], f"venue prices: {acct.price_source}"]

    # markets involved: positions and entries first, then watchers' markets (each once, by name)
    involved = sorted(set(plans_by_market) | (set(acct.positions_by_market) if acct else set())
                      | ({e.market for e in acct.entries} if acct else set()))
    focus = [m for m in inputs.focus if m not in involved]
    involved = [*focus, *involved]
    active = _active_watchers(inputs.watchers)
    watched = sorted(active.markets - set(involved))
    markets_doc = []
    lines = []
    for market in [*involved, *watched]:
        c = inputs.markets.get(market)
        if c is None:
            continue
        if with_doc:
            markets_doc.append({"market": market, "mark_px": _s(c.mark_px), "mid_px": _s(c.mid_px),
                                "change_24h_pct": _s(pct_2(c.change_24h_pct)),
                                "funding_pct_per_hour": _s(funding_pct_per_hour(c.funding_rate)),
                                "open_interest": _s(c.open_interest)})
        rate = "-" if c.funding_rate is None else f"{funding_pct_per_hour(c.funding_rate)}%/h"
        atr = inputs.atr.get(market)
        lines.append(f"{market} mark {num(c.mark_px)} mid {num(c.mid_px)} 24h {pct(c.change_24h_pct)} "
                     f"funding {rate} OI {num(c.open_interest)}"
                     + (f" ATR1h {num(atr)} ({pct(atr / c.mark_px * 100)})" if atr else ""))
    doc["markets"] = markets_doc
    sections["markets"] = lines

    # closed trades
    cs = inputs.closed
    if cs is not None:
        win_rate = (Decimal(cs.wins) / cs.trades * 100) if cs.trades else None
        doc["closed"] = {"window": cs.window, "trades": cs.trades, "wins": cs.wins, "losses": cs.losses,
                         "win_rate_pct": _s(win_rate), "net_pnl_usd": _s(cs.net_pnl_usd), "avg_r": _s(cs.avg_r)}
        doc["closed"].update({"today_pnl_usd": _s(cs.today_pnl_usd), "recent": [
            {"trade_id": t.trade_id, "market": t.market, "r": _s(t.r), "net_pnl_usd": _s(t.net_pnl_usd)}
            for t in cs.recent]})
        avg = r2(cs.avg_r)
        closed_lines = [f"{cs.window}: {cs.trades} trades, {cs.wins} won, {cs.losses} lost "
                        f"(win rate {pct(win_rate)}), net ${usd(cs.net_pnl_usd)}, avg R {avg}"
                        + (f"; realized today ${usd(cs.today_pnl_usd)}" if cs.today_pnl_usd is not None else "")]
        if cs.recent:
            closed_lines.append(f"last {len(cs.recent)} (newest first): " + ", ".join(
                f"{t.market} {r2(t.r)}R" for t in cs.recent))
        sections["closed"] = closed_lines
    else:
        doc["closed"] = None
        sections["closed"] = []

    # watchers (active only), time alerts (scheduled only), notes: rendered lazily
    mids = {m: (c.mid_px or c.mark_px) for m, c in inputs.markets.items()}
    sections["watchers"] = LazyRows(active.ordered, lambda w: _watcher_line_memo(w, mids, inputs.atr),
                                    lambda w: _watcher_doc(w, mids, inputs.atr))
    alerts = sorted((a for a in inputs.time_alerts if a.status is TimeAlertStatus.SCHEDULED),
                    key=lambda a: (a.fire_at, a.id))
    sections["time_alerts"] = LazyRows(alerts, _time_alert_line_memo, _time_alert_doc)
    sections["notes"] = LazyRows(sorted(inputs.notes, key=lambda n: (n.created_at, n.id)), _note_line, _note_doc)

    return doc, sections


@dataclass(frozen=True)
class _ActiveWatchers:
    """The armed watchers of one input list: by (market, created, id), and their markets."""

    source: tuple[WatcherPair, ...]
    ordered: list[WatcherPair]
    markets: frozenset[str]


_last_active = _ActiveWatchers((), [], frozenset())


def _active_watchers(watchers: Sequence[WatcherPair]) -> _ActiveWatchers:
    """`_ActiveWatchers` of `watchers`, remembered for the last list: the snapshot caches hand out
    the same parsed objects until something changes, so a turn usually skips the filter and sort of
    hundreds of watchers. Keyed on the items' identity (models are never changed in place)."""
    global _last_active
    last = _last_active
    if len(watchers) == len(last.source) and all(map(operator.is_, watchers, last.source)):
        return last
    ordered = sorted((w for w in watchers if _active(w)), key=lambda w: (w.market, w.created_at, w.id))
    _last_active = _ActiveWatchers(tuple(watchers), ordered, frozenset(w.market for w in ordered))
    return _last_active


_MEMO_MAX = 20_000


def _memo(line: Callable[[Any], str]) -> Callable[[Any], str]:
    """`line` remembered per object (the same parsed watcher renders the same line every turn): keyed
    by `id(obj)`, holding the object so the id is never reused while remembered. Only for lines that
    depend on the object alone (no clock)."""
    _lines: dict[int, tuple[Any, str]] = {}

    def render(obj: Any) -> str:
        hit = _lines.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        if len(_lines) >= _MEMO_MAX:
            _lines.clear()
        text = line(obj)
        _lines[id(obj)] = (obj, text)
        return text

    return render


def _active(w: WatcherPair) -> bool:
    return ((w.upper is not None and w.upper.status is LegStatus.ARMED)
            or (w.lower is not None and w.lower.status is LegStatus.ARMED))


def _armed_legs(w: WatcherPair) -> list[tuple[str, WatcherLeg]]:
    return [(name, leg) for name, leg in (("upper", w.upper), ("lower", w.lower))
            if leg is not None and leg.status is LegStatus.ARMED]


def _setup_short(leg: WatcherLeg) -> str:
    s = leg.setup
    parts = [s.side.value] if s.side is not None else []
    parts += [f"{name} {num(v)}" for name, v in (("entry", s.entry), ("stop", s.stop), ("target", s.target))
              if v is not None]
    if s.conviction is not None:
        parts.append(f"conv {s.conviction}")
    if s.risk_usd is not None:
        parts.append(f"risk ${num(s.risk_usd)}")
    return " ".join(parts)


def _leg_static(leg: WatcherLeg) -> str:
    setup = _setup_short(leg)
    return (f"{leg.direction.value} {num(leg.level)}" + (f' "{leg.thesis[:60]}"' if leg.thesis else "")
            + (f" setup {setup}" if setup else ""))


def _distance(level: Decimal, mid: Decimal | None, atr: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """(level - mid) in % of mid and in 1h ATRs (None when unknown)."""
    if mid is None or mid <= 0:
        return None, None
    move = level - mid
    return (move / mid * 100).quantize(CENT), (move / atr).quantize(Decimal("0.1")) if atr else None


def _signed(value: Decimal) -> str:
    return f"{'+' if value >= 0 else ''}{value}"


def _watcher_line(w: WatcherPair, mids: Mapping[str, Decimal], atrs: Mapping[str, Decimal]) -> str:
    mid, atr = mids.get(w.market), atrs.get(w.market)
    legs = []
    for _, leg in _armed_legs(w):
        d_pct, d_atr = _distance(leg.level, mid, atr)
        dist = "" if d_pct is None else f" dist {_signed(d_pct)}%" + (f" {_signed(d_atr)}ATR" if d_atr is not None
                                                                       else "")
        legs.append(_leg_static_memo(leg) + dist)
    return (f"{w.market} [{w.id}] " + "; ".join(legs)
            + (f" expires {w.expires_at.isoformat(timespec='minutes')}" if w.expires_at else ""))


_watcher_lines: dict[int, tuple[WatcherPair, Decimal | None, Decimal | None, str]] = {}


def _watcher_line_memo(w: WatcherPair, mids: Mapping[str, Decimal], atrs: Mapping[str, Decimal]) -> str:
    """`_watcher_line` remembered per watcher object with the mid and ATR it was rendered at (the same
    parsed watcher at the same price renders the same line; a new price renders it again)."""
    mid, atr = mids.get(w.market), atrs.get(w.market)
    hit = _watcher_lines.get(id(w))
    if hit is not None and hit[0] is w and hit[1] == mid and hit[2] == atr:
        return hit[3]
    if len(_watcher_lines) >= _MEMO_MAX:
        _watcher_lines.clear()
    text = _watcher_line(w, mids, atrs)
    _watcher_lines[id(w)] = (w, mid, atr, text)
    return text


def _watcher_doc(w: WatcherPair, mids: Mapping[str, Decimal], atrs: Mapping[str, Decimal]) -> dict[str, Any]:
    legs = []
    for name, leg in _armed_legs(w):
        d_pct, d_atr = _distance(leg.level, mids.get(w.market), atrs.get(w.market))
        legs.append({"leg": name, "level": _s(leg.level), "direction": leg.direction.value, "thesis": leg.thesis,
                     "setup": leg.setup.model_dump(mode="json", exclude_none=True),
                     "distance_pct": _s(d_pct), "distance_atr": _s(d_atr)})
    return {"id": w.id, "market": w.market, "legs": legs, "expires_at": _s(w.expires_at), "created_by": w.created_by}


def _time_alert_line(a: TimeAlert) -> str:
    every = f" every {format_duration(a.every)}" if a.every else ""
    return f"[{a.id}] {a.fire_at.isoformat(timespec='minutes')}{every}: {a.prompt[:120]}"


def _time_alert_doc(a: TimeAlert) -> dict[str, Any]:
    return {"id": a.id, "fire_at": _s(a.fire_at), "every": format_duration(a.every) if a.every else None,
            "prompt": a.prompt}


_leg_static_memo = _memo(_leg_static)
_time_alert_line_memo = _memo(_time_alert_line)


def _note_line(n: Note) -> str:
    return f"[{n.id}] {n.text[:300]}" + (f" #{' #'.join(n.tags)}" if n.tags else "")


def _note_doc(n: Note) -> dict[str, Any]:
    return {"id": n.id, "text": n.text, "tags": list(n.tags), "created_at": _s(n.created_at)}


# ------------------------------------------------------------------------------------- source


class SnapshotSource:
    """Gathers `SnapshotInputs` from a session's parts, concurrently (each callable is awaited once).

    Every argument is an async callable so the session decides where each piece comes from (the
    live account view, the store, the market data cache). `markets` receives the markets involved
    and returns their conditions; `closed` and `health` are optional.
    """

    def __init__(self, *, clock: Callable[[], datetime], settings: Callable[[], Awaitable[RiskSettings]],
                 risk_state: Callable[[], Awaitable[RiskState]],
                 account: Callable[[], Awaitable[AccountView | None]],
                 plans: Callable[[], Awaitable[Sequence[TradePlan]]],
                 watchers: Callable[[], Awaitable[Sequence[WatcherPair]]],
                 time_alerts: Callable[[], Awaitable[Sequence[TimeAlert]]],
                 notes: Callable[[], Awaitable[Sequence[Note]]],
                 markets: Callable[[Sequence[str]], Awaitable[Mapping[str, MarketConditions]]] | None = None,
                 closed: Callable[[], Awaitable[ClosedTradeStats | None]] | None = None,
                 health: Callable[[], Awaitable[Health]] | None = None,
                 wallet: str = "", links: Any = None,
                 atr: Callable[[Sequence[str]], Awaitable[Mapping[str, Decimal]]] | None = None,
                 trades: Callable[[], Sequence[Any]] | None = None,
                 early_warning_fraction: Decimal = Decimal("0.5")) -> None:
        self.clock = clock
        self._settings = settings
        self._risk_state = risk_state
        self._account = account
        self._plans = plans
        self._watchers = watchers
        self._time_alerts = time_alerts
        self._notes = notes
        self._markets = markets
        self._closed = closed
        self._health = health
        self.wallet = wallet
        self.links = links  # engine.links.LinkHealth: the websocket's state from ConnectionChanged
        self._atr = atr
        self._trades = trades  # the ledger's trade book (sync.trades.Trade): performance and funding
        self.early_warning_fraction = early_warning_fraction

    async def inputs(self, focus: Sequence[str] = ()) -> SnapshotInputs:
        """The inputs now; `focus`: markets always shown in MARKETS (an alert's market)."""
        stored = asyncio.gather(self._settings(), self._risk_state(), self._account(), self._plans())
        cached = asyncio.gather(self._watchers(), self._time_alerts(), self._notes())
        (settings, state, account, plans), (watchers, time_alerts, notes) = await asyncio.gather(stored, cached)
        involved: set[str] = {p.market for p in plans if p.status in ("opening", "open")}
        if account is not None:
            involved |= set(account.positions_by_market) | {e.market for e in account.entries}
        involved |= _active_watchers(watchers).markets
        involved |= set(focus)
        markets: Mapping[str, MarketConditions] = {}
        atr: Mapping[str, Decimal] = {}
        if self._markets is not None:
            markets = await self._markets(sorted(involved))
        if self._atr is not None:
            try:
                atr = await self._atr(sorted(involved))
            except Exception:
                atr = {}
        now = self.clock()
        trades = list(self._trades()) if self._trades is not None else None
        closed = await self._closed() if self._closed is not None else (
            closed_stats(trades, now) if trades is not None else None)
        funding = {t.trade_id: t.funding for t in trades or () if t.status == "open"}
        health = await self._health() if self._health is not None else self._default_health(account, now)
        return SnapshotInputs(now=now, settings=settings, risk_state=state, account=account, plans=plans,
                              watchers=watchers, time_alerts=time_alerts, notes=notes, markets=markets,
                              closed=closed, health=health, wallet=self.wallet, focus=tuple(focus), atr=atr,
                              funding_paid=funding, early_warning_fraction=self.early_warning_fraction)

    def _default_health(self, account: AccountView | None, now: datetime) -> Health:
        """The sync phase and the last update's age from the account view, the websocket from `links`
        (down after a ConnectionChanged down; up once the sync is consistent with no outage open)."""
        if account is None:
            return Health(sync_phase="checking", sync_reason="account not loaded")
        age = (now - account.as_of).total_seconds() if account.as_of is not None else None
        ws: bool | None = None
        since = None
        if self.links is not None:
            state = self.links.state("exchange_ws")
            if state is not None and not state.up:
                ws, since = False, state.since
            elif account.sync_phase == "consistent":
                ws = True
        return Health(sync_phase=account.sync_phase, sync_reason=account.sync_reason, ws_connected=ws,
                      ws_down_since=since, last_update_age_s=age)

    async def build(self) -> RuntimeSnapshot:
        return build_snapshot(await self.inputs())
