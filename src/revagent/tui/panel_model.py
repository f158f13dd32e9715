"""The account panel's state and its rendering into Rich text (no Textual: testable alone).

`PanelModel` holds the last snapshot, the live mids (coalesced ticks), the latest risk/health
events and optimistic changes not yet confirmed. The `render_*` functions are pure: the same model
and `now` always give the same text, so snapshot tests are stable.

Units: money in USD, prices in USD per unit; `now` is an aware UTC datetime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from rich.text import Text

from revagent.models import LegStatus, Note, TimeAlert, WatcherPair
from revagent.risk import AccountView, PositionView, RiskUsage, TradingState
from revagent.tui import format as fmt
from revagent.tui.port import PanelSnapshot

_ZERO = Decimal(0)


@dataclass
class TradingBanner:
    """The trading state as the header shows it."""

    state: TradingState | None = None
    multiplier: Decimal = Decimal(1)
    locked_until: datetime | None = None
    reason: str = ""

    def label(self, now: datetime) -> str:
        if self.state is None:
            return "STATE ?"
        if self.state is TradingState.PENALIZED:
            return f"PENALIZED x{self.multiplier:.2f}"
        if self.state is TradingState.LOCKED:
            left = fmt.countdown(self.locked_until, now) if self.locked_until else "?"
            return f"LOCKED {left}"
        return self.state.value.upper()


@dataclass
class PanelModel:
    """Everything the panel shows. Only the app's event loop mutates it."""

    snapshot: PanelSnapshot = field(default_factory=PanelSnapshot)
    mids: dict[str, Decimal] = field(default_factory=dict)
    banner: TradingBanner = field(default_factory=TradingBanner)
    sync_phase: str | None = None
    ws_up: bool | None = None
    pending: dict[str, str] = field(default_factory=dict)  # action id -> optimistic line (dimmed)
    stopped: str = ""  # why the session stopped (lease lost, a part died): nothing acts any more

    links: dict[str, tuple[bool, datetime]] = field(default_factory=dict)  # link -> (up, last heard of)

    def saw_link(self, link: str, up: bool, at: datetime) -> None:
        """A link's state as last heard (an event about it, or data that came over it)."""
        self.links[link] = (up, at)
        if link == "exchange_ws":
            self.ws_up = up

    def apply_snapshot(self, snap: PanelSnapshot) -> None:
        """Take a fresh snapshot; its values win over events received before it."""
        self.snapshot = snap
        if snap.status is not None:
            self.banner = TradingBanner(snap.status.state, snap.status.multiplier, snap.status.locked_until,
                                        snap.status.reason or "")
        if snap.sync_phase is not None:
            self.sync_phase = snap.sync_phase
        if snap.ws_up is not None:
            self.ws_up = snap.ws_up
        if snap.account is not None:
            for market, rules in snap.account.markets.items():
                if rules.mid_px is not None and market not in self.mids:
                    self.mids[market] = rules.mid_px

    def mid(self, market: str) -> Decimal | None:
        return self.mids.get(market)


# ------------------------------------------------------------------------------------ rendering
def _line(*parts: tuple[str, str] | str) -> Text:
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


def stored_label(model: PanelModel, now: datetime | None) -> str:
    """'' for a live account; else how old the stored view on screen is ("stored 12s ago")."""
    at = model.snapshot.stored_at
    if at is None:
        return ""
    return f"stored {fmt.age(at, now)} ago" if now is not None else "stored"


def render_summary(model: PanelModel, now: datetime | None = None) -> Text:
    """One line with the money that must always be visible (used when the account column is folded);
    a stored view (before the session is live) is dimmed and starts with its age."""
    acct, status = model.snapshot.account, model.snapshot.status
    usage = model.snapshot.usage
    if acct is None:
        return _line(("Account ", "bold"), (model.snapshot.problem or "loading…", "dim"))
    stored = stored_label(model, now)
    parts: list[tuple[str, str] | str] = [(f"{stored}  ", "italic")] if stored else []
    parts += [("Eq ", "bold"), fmt.money(acct.equity), "  ", ("Free ", "bold"), fmt.money(acct.available_margin)]
    if status is not None:
        parts += ["  ", ("DD ", "bold"), fmt.pct(status.drawdown)]
    if usage is not None:
        used = f"{fmt.money(usage.total_open_risk_usd)}/{fmt.money(usage.portfolio_cap_usd)}"
        parts += ["  ", ("Risk ", "bold"), used]
    parts += ["  ", ("Pos ", "bold"), str(len(acct.positions_by_market))]
    line = _line(*parts)
    if stored:
        line.stylize("dim")
    return line


def render_equity(model: PanelModel, now: datetime | None = None) -> Text:
    acct = model.snapshot.account
    if acct is None:
        return Text(model.snapshot.problem or "loading the account…", style="dim")
    stored = stored_label(model, now)
    out = render_equity_lines(model, acct)
    if stored:  # the last stored view, until the session is live: dimmed, its age and why on top
        head = Text(f"{stored}: {model.snapshot.problem or 'going live…'}\n", style="italic",
                    no_wrap=True, overflow="ellipsis")
        out = head + out
        out.stylize("dim")
    return out


def render_equity_lines(model: PanelModel, acct: AccountView) -> Text:
    status = model.snapshot.status
    history = list(model.snapshot.equity_history) or [acct.equity]
    change = ""
    if len(history) > 1 and history[0] > 0:
        change = fmt.pct((acct.equity - history[0]) / history[0], signed=True)
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Equity ", "bold").append(f"{fmt.money(acct.equity):>13}").append("  ")
    out.append(fmt.sparkline(history, 10), "cyan").append(f" {change}\n")
    out.append("Free   ", "bold").append(f"{fmt.money(acct.available_margin):>13}")
    if status is not None:
        dd_style = "red" if status.drawdown >= Decimal("0.05") else "yellow" if status.drawdown > 0 else ""
        out.append("  DD ").append(fmt.pct(status.drawdown), dd_style)
        pen_style = "yellow" if status.multiplier < 1 else ""
        out.append("  x").append(f"{status.multiplier:.2f}", pen_style)
    return out


def render_risk(usage: RiskUsage | None) -> Text:
    if usage is None:
        return Text("risk usage unknown", style="dim")
    out = Text(no_wrap=True, overflow="ellipsis")
    total = f"{fmt.money(usage.total_open_risk_usd)} / {fmt.money(usage.portfolio_cap_usd)}"
    style = "red" if usage.total_open_risk_usd > usage.portfolio_cap_usd else ""
    out.append("Risk   ", "bold").append(f"{total:<19}", style)
    out.append(fmt.gauge(usage.total_open_risk_usd, usage.portfolio_cap_usd), "green")
    for m in usage.markets:
        line = f"{fmt.money(m.open_risk_usd)} / {fmt.money(m.cap_usd)}"
        over = m.open_risk_usd > m.cap_usd
        out.append(f"\n  {m.market:<5}").append(f"{line:<19}", "red" if over else "")
        out.append(fmt.gauge(m.open_risk_usd, m.cap_usd), "red" if over else "green")
        if m.unprotected:
            out.append(" NO STOP", "bold red")
    return out


def unrealized_pnl(p: PositionView, px: Decimal) -> Decimal:
    return p.size * (px - p.entry_px)


def r_multiple(p: PositionView, px: Decimal) -> Decimal | None:
    """PnL now in units of the trade's initial risk (entry to the planned stop, else the live stop)."""
    stop = p.planned_stop_px or p.stop_px
    if stop is None:
        return None
    risk_per_unit = abs(p.entry_px - stop)
    if risk_per_unit == 0:
        return None
    return (px - p.entry_px) * p.direction / risk_per_unit


def render_positions(model: PanelModel) -> Text:
    acct = model.snapshot.account
    out = Text(no_wrap=True, overflow="ellipsis")
    for line in model.pending.values():
        out.append(line + "\n", "dim italic")
    if acct is None or not acct.positions_by_market:
        out.append("flat", "dim")
        return out
    for i, p in enumerate(sorted(acct.positions_by_market.values(), key=lambda p: p.market)):
        if i:
            out.append("\n")
        mid = model.mid(p.market)
        px = mid if mid is not None else p.mark_px
        pnl = unrealized_pnl(p, px)
        r = r_multiple(p, px)
        out.append(f"{p.market:<5}", "bold").append(f"{fmt.size(p.size)} @ {fmt.price(p.entry_px)}  ")
        out.append(f"{'mid' if mid is not None else 'mark'} {fmt.price(px)}  ")
        out.append(fmt.money(pnl, signed=True), "green" if pnl >= 0 else "red")
        out.append("\n      stop ")
        if p.stop_px is None:
            out.append("NONE", "bold red")
        else:
            out.append(fmt.price(p.stop_px))
        out.append(f"  target {fmt.price(p.target_px)}")
        if r is not None:
            out.append("  R ").append(f"{r:+.2f}", "green" if r >= 0 else "red")
        out.append(f"\n      liq {fmt.price(p.liquidation_px)}  lev {p.leverage:g}x")
    return out


def render_orders(acct: AccountView | None) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    if acct is None or (not acct.entries and not acct.triggers):
        out.append("no open orders", "dim")
        return out
    lines: list[Text] = []
    for e in acct.entries:
        lines.append(_line((f"{e.market:<5}", "bold"), f"{e.side:<5} {fmt.price(e.limit_px)}  {e.size:f}  ",
                           ("entry", "cyan"), f"  #{e.oid or '?'}"))
    for t in acct.triggers:
        kind = "sl" if t.kind == "stop" else "tp"
        lines.append(_line((f"{t.market:<5}", "bold"), f"{kind:<5} {fmt.price(t.trigger_px)}  {t.size:f}  ",
                           ("reduce-only" if t.reduce_only else "", "dim"), f"  #{t.oid or '?'}"))
    return Text("\n", no_wrap=True).join(lines)


def render_watchers(watchers: tuple[WatcherPair, ...], model: PanelModel) -> Text:
    if not watchers:
        return Text("no watchers", style="dim")
    lines: list[Text] = []
    for w in watchers:
        mid = model.mid(w.market)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{w.market:<5}", "bold")
        for arrow, leg in (("↑", w.upper), ("↓", w.lower)):
            if leg is None:
                continue
            style = "" if leg.status is LegStatus.ARMED else "dim strike"
            line.append(f" {arrow} {fmt.price(leg.level)} ({fmt.distance(leg.level, mid)}) ", style)
        lines.append(line)
    return Text("\n", no_wrap=True).join(lines)


def render_time_alerts(alerts: tuple[TimeAlert, ...], now: datetime) -> Text:
    if not alerts:
        return Text("no time alerts", style="dim")
    lines = [
        _line(f"{a.fire_at:%H:%M} UTC  ", (f"in {fmt.countdown(a.fire_at, now):<7}", "cyan"),
              f"{' every ' + str(a.every) if a.every else ''} \"{a.prompt}\"")
        for a in alerts
    ]
    return Text("\n", no_wrap=True).join(lines)


def render_notes(notes: tuple[Note, ...], limit: int = 5) -> Text:
    if not notes:
        return Text("no notes", style="dim")
    newest = sorted(notes, key=lambda n: n.updated_at, reverse=True)[:limit]
    lines = [_line(("• ", "dim"), n.text.splitlines()[0] if n.text else "",
                   (" " + " ".join(f"#{t}" for t in n.tags), "dim") if n.tags else "") for n in newest]
    return Text("\n", no_wrap=True).join(lines)
