"""The slash commands' table: usage and summary of each (what `/help` prints and the offline
provider lists) and the options each takes. Plain data, next to the actions they build, so the TUI
(which parses slash lines) and the engine (which explains them without a model) share one table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SlashSpec:
    usage: str
    summary: str
    options: dict[str, bool] = field(default_factory=dict)  # option -> takes a value
    repeatable: frozenset[str] = frozenset()


SPECS: dict[str, SlashSpec] = {
    "long": SlashSpec("/long MARKET --stop PX --risk USD [--entry PX] [--target PX] [--take-profit PX] "
                  "[--leverage N] [--isolated] [--conviction N] [--thesis TEXT] [--invalidation TEXT] [--expires 4h]",
                  "open a long (PX: price or 2%)",
                  {"stop": True, "risk": True, "entry": True, "target": True, "take-profit": True,
                   "leverage": True, "isolated": False, "conviction": True, "thesis": True, "invalidation": True,
                   "expires": True}),
    "short": SlashSpec("/short MARKET --stop PX --risk USD [--entry PX] [--target PX] [--take-profit PX] "
                   "[--leverage N] [--isolated] [--conviction N] [--thesis TEXT] [--invalidation TEXT] [--expires 4h]",
                   "open a short (PX: price or 2%)",
                   {"stop": True, "risk": True, "entry": True, "target": True, "take-profit": True,
                    "leverage": True, "isolated": False, "conviction": True, "thesis": True,
                    "invalidation": True, "expires": True}),
    "close": SlashSpec("/close MARKET [--fraction 0.5]", "close a position (or part of it)", {"fraction": True}),
    "flatten": SlashSpec("/flatten", "close every position, cancel every entry"),
    "stop": SlashSpec("/stop MARKET PX", "move a position's stop"),
    "target": SlashSpec("/target MARKET PX [--take-profit PX]", "set a position's target", {"take-profit": True}),
    "cancel": SlashSpec("/cancel OID", "cancel an open order"),
    "leverage": SlashSpec("/leverage MARKET N [--isolated | --cross]", "set a market's leverage (and margin mode)",
                      {"isolated": False, "cross": False}),
    "margin": SlashSpec("/margin MARKET (--add USD | --remove USD)", "move margin of an isolated position",
                    {"add": True, "remove": True}),
    "watch": SlashSpec("/watch MARKET [--above L] [--below L] [--thesis TEXT] [--expires 24h]",
                   "add a watcher pair", {"above": True, "below": True, "thesis": True, "expires": True}),
    "alert": SlashSpec("/alert (--at TIME | --in 30m) [--every 1h] PROMPT", "add a time alert",
                   {"at": True, "in": True, "every": True}),
    "note": SlashSpec("/note TEXT [--tag T]", "add a note", {"tag": True}, frozenset({"tag"})),
    "risk": SlashSpec("/risk [set KEY VALUE | reset KEY]", "show or change risk settings"),
    "halt": SlashSpec("/halt", "kill switch: stop all new risk"),
    "resume": SlashSpec("/resume", "resume after a halt"),
    "mode": SlashSpec("/mode [autonomous|copilot|readonly] [--alerts]", "approval mode", {"alerts": False}),
    "cost": SlashSpec("/cost", "model usage and cost"),
    "help": SlashSpec("/help [COMMAND]", "list the slash commands"),
}

__all__ = ["SPECS", "SlashSpec"]
