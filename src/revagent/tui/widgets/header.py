"""The one-line header: identity, network (and a paper venue's price source), sync phase, the links
(exchange websocket, Redis, model: up / down / unknown, with how long ago each was last heard of), the
active thread's approval mode, the UTC clock, and the trading state."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from revagent.risk import TradingState
from revagent.tui import format as fmt
from revagent.tui.panel_model import PanelModel
from revagent.tui.port import Identity

NETWORK_STYLE = {"paper": "bold black on cyan", "testnet": "bold black on yellow",
                 "mainnet": "bold white on red blink"}
STATE_STYLE = {None: "bold black on grey50", TradingState.ACTIVE: "bold black on green",
               TradingState.PENALIZED: "bold black on yellow", TradingState.LOCKED: "bold white on red",
               TradingState.HALTED: "bold white on magenta"}
PHASE_STYLE = {"consistent": "green", "failed": "bold red"}


LINKS = (("exchange_ws", "ws"), ("redis", "redis"), ("model", "model"))
MODE_STYLE = {"autonomous": "bold", "copilot": "bold cyan", "readonly": "bold magenta"}


def header_text(identity: Identity, model: PanelModel, now: datetime, width: int, *, mode: str = "") -> Text:
    """The header line for a terminal `width` columns wide (the state stays at the far right);
    `mode`: the active thread's approval mode."""
    left = Text(no_wrap=True, overflow="ellipsis")
    left.append(" revagent " if width >= 100 else " ", "bold")
    network = identity.network
    tag = f" {network.upper()} " if network != "mainnet" else " ‼ MAINNET ‼ "
    left.append(tag, NETWORK_STYLE[network])
    prices = model.snapshot.account.price_source if model.snapshot.account is not None else ""
    if prices:  # a paper venue's prices: live from Hyperliquid, or synthetic / frozen, said at once
        short = prices if width >= 100 else " ".join(prices.split()[:2]).rstrip(":")  # "synthetic prices"
        left.append(f"· {short} ", "dim" if prices.startswith("live") else "bold yellow")
    left.append(" ")
    who = fmt.short_address(identity.address)
    left.append(f"{identity.wallet}:{who} " if width >= 100 else f"{who} ", "bold")
    if identity.role == "viewer":
        left.append("(viewer) ", "italic")
    phase = model.sync_phase or "?"
    shown = "ok" if width < 100 and phase == "consistent" else phase
    left.append("sync ").append(shown, PHASE_STYLE.get(phase, "yellow"))
    for link, name in LINKS:
        seen = model.links.get(link)
        up = model.ws_up if link == "exchange_ws" and seen is None else seen[0] if seen else None
        left.append(f"  {name} " if width >= 100 else f" {name}")
        left.append("●" if up else "○" if up is False else "?", "green" if up else "red" if up is False else "dim")
        if seen is not None:
            left.append(f" {fmt.age(seen[1], now)}" if width >= 100 else fmt.age(seen[1], now), "dim")
    if mode:
        left.append("  " if width >= 100 else " ").append(mode if width >= 100 or mode != "autonomous" else "auto",
                                                          MODE_STYLE.get(mode, ""))
    left.append(f"  {now:%H:%M:%S} UTC" if width >= 100 else f" {now:%H:%M:%S}Z")
    state = Text(f" {model.banner.label(now)} ", STATE_STYLE[model.banner.state])
    room = width - state.cell_len
    if left.cell_len > room:
        left.truncate(max(0, room), overflow="ellipsis")
    left.pad_right(max(0, room - left.cell_len))
    return left + state


def banner_text(model: PanelModel, now: datetime) -> Text | None:
    """A full-width warning for any state other than ACTIVE (None when ACTIVE or unknown); a stopped
    session outranks everything."""
    if model.stopped:
        return Text(f" SESSION STOPPED: {model.stopped}. Nothing acts from this screen: quit (ctrl+q) and restart.",
                    style="bold white on red", no_wrap=True, overflow="ellipsis")
    b = model.banner
    if b.state in (None, TradingState.ACTIVE):
        return None
    if b.state is TradingState.PENALIZED:
        msg = f"PENALIZED: caps scaled x{b.multiplier:.2f} after drawdown. {b.reason}"
    elif b.state is TradingState.LOCKED:
        until = f" until {b.locked_until:%Y-%m-%d %H:%M} UTC" if b.locked_until else ""
        msg = f"LOCKED{until} ({b.label(now).split(' ', 1)[-1]} left): only exits and stops. {b.reason}"
    else:
        msg = f"HALTED: no new risk until you /resume. {b.reason}"
    return Text(" " + msg.strip(), style=STATE_STYLE[b.state], no_wrap=True, overflow="ellipsis")


class StatusHeader(Static):
    """Rendered by the app from the model (it owns no state)."""

    DEFAULT_CSS = "StatusHeader { height: 1; background: $panel; }"


class StateBanner(Static):
    DEFAULT_CSS = "StateBanner { height: 1; display: none; } StateBanner.shown { display: block; }"
