"""One action through the four doors: a shell command line (parsed by the typer app), a slash line,
an LLM tool's arguments and the command channel's JSON all build the same action model of
`revagent.actions`, which resolves to the same intent (or store change) against one account.

The doors differ only in who asks: the tools act as the agent (`origin="agent"`, a halt "by" the
agent), the others as the human. A door that does not offer an action is None in its row.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import typer

from revagent.actions import BY_COMMAND, NewWatcher, Open, TraderAction
from revagent.cli import alerts as cli_alerts
from revagent.cli import notes as cli_notes
from revagent.cli import risk as cli_risk
from revagent.cli import trade as cli_trade
from revagent.cli import watchers as cli_watchers
from revagent.engine.tools import memory as memory_tools
from revagent.engine.tools import trade as tools
from revagent.tui.slash import parse_slash
from tests.risk.builders import account, entry_order, position

D = Decimal
ACCOUNT = account(positions=(position("BTC", "0.01", "60000"),),
                  entries=(entry_order("ETH", "long", "1", "2900", "10", oid=77),))


@dataclass(frozen=True)
class Row:
    name: str
    cli: tuple[str, ...] | None  # `revagent trade|risk ...` argv
    slash: str | None
    tool: tuple[str, dict[str, Any]] | None  # tool name, arguments
    channel: tuple[str, str] | None  # command name, JSON arguments


ROWS = [
    Row("open a long with every option",
        ("trade", "open", "btc", "long", "--stop", "58,800", "--risk", "20", "--target", "63000", "--take-profit",
         "62000", "--leverage", "3", "--conviction", "70", "--thesis", "60k reclaimed", "--invalidation",
         "a close under 59k", "--yes"),
        "/long BTC --stop 58800 --risk $20 --target 63000 --take-profit 62000 --leverage 3 --conviction 70 "
        "--thesis '60k reclaimed' --invalidation \"a close under 59k\"",
        ("open_trade", {"market": "BTC", "side": "long", "stop_px": "58800", "risk_usd": 20, "target_px": 63000,
                        "take_profit_px": "62000", "leverage": 3, "conviction": 70, "rationale": "test",
                        "thesis": "60k reclaimed", "invalidation": "a close under 59k"}),
        ("trade.open", '{"market": "BTC", "side": "long", "stop": "58800", "risk": "20", "target": "63000", '
                       '"take_profit": "62000", "leverage": "3", "conviction": 70, "origin": "human", '
                       '"thesis": "60k reclaimed", "invalidation": "a close under 59k"}')),
    Row("open a limit short with distances from the mark (3000)",
        ("trade", "open", "ETH", "short", "--stop", "2%", "--risk", "25", "--entry", "0.5%", "--target", "10%",
         "--conviction", "55", "--thesis", "t", "--invalidation", "i", "--expires", "4h"),
        "/short eth --stop=2% --risk 25 --entry 0.5% --target 10% --conviction 55 --thesis t --invalidation i "
        "--expires 240m",
        ("open_trade", {"market": "ETH", "side": "short", "entry_type": "limit", "entry_px": "3015",
                        "stop_px": "3060", "risk_usd": "25", "target_px": "2700", "conviction": 55,
                        "rationale": "test", "thesis": "t", "invalidation": "i", "expires_in": "4h"}),
        ("trade.open", '{"market": "ETH", "side": "short", "stop": "2%", "risk": "25", "entry": "0.5%", '
                       '"target": "10%", "conviction": 55, "thesis": "t", "invalidation": "i", "expires": "4h"}')),
    Row("open isolated", ("trade", "open", "SOL", "long", "--stop", "140", "--risk", "5", "--isolated"),
        "/long SOL --stop 140 --risk 5 --isolated", None,
        ("trade.open", '{"market": "SOL", "side": "long", "stop": "140", "risk": "5", "isolated": true}')),
    Row("close half", ("trade", "close", "BTC", "--fraction", "0.5", "--yes"), "/close btc --fraction 0.5",
        ("close_position", {"market": "BTC", "fraction": "0.5"}),
        ("trade.close", '{"market": "BTC", "fraction": "0.5"}')),
    Row("close all", ("trade", "close", "BTC", "--yes"), "/close BTC", ("close_position", {"market": "BTC"}),
        ("trade.close", '{"market": "BTC"}')),
    Row("move the stop", ("trade", "stop", "BTC", "59,000"), "/stop BTC 59000",
        ("modify_stop", {"market": "BTC", "stop_px": 59000}), ("trade.stop", '{"market": "BTC", "price": "59000"}')),
    Row("move the stop by a distance (mark 60000)", ("trade", "stop", "BTC", "1%"), "/stop BTC 1%",
        ("modify_stop", {"market": "BTC", "stop_px": "59400"}), ("trade.stop", '{"market": "BTC", "price": "1%"}')),
    Row("target and take-profit", ("trade", "target", "BTC", "63000", "--take-profit", "5%"),
        "/target BTC 63000 --take-profit 5%",
        ("set_target", {"market": "BTC", "target_px": "63000", "take_profit_px": "63000"}),
        ("trade.target", '{"market": "BTC", "target": "63000", "take_profit": "5%"}')),
    Row("take-profit only", ("trade", "target", "BTC", "--take-profit", "62500"), "/target BTC --take-profit 62500",
        ("set_target", {"market": "BTC", "take_profit_px": 62500}),
        ("trade.target", '{"market": "BTC", "take_profit": "62500"}')),
    Row("cancel an order", ("trade", "cancel", "77"), "/cancel 77", ("cancel_order", {"market": "ETH", "oid": 77}),
        ("trade.cancel", '{"oid": "77"}')),
    Row("leverage, isolated", ("trade", "leverage", "btc", "5", "--isolated"), "/leverage btc 5 --isolated",
        ("set_leverage", {"market": "BTC", "leverage": 5, "margin_mode": "isolated"}),
        ("trade.leverage", '{"market": "BTC", "leverage": "5", "margin_mode": "isolated"}')),
    Row("leverage, mode kept", ("trade", "leverage", "ETH", "3"), "/leverage ETH 3",
        ("set_leverage", {"market": "ETH", "leverage": 3}), ("trade.leverage", '{"market": "ETH", "leverage": "3"}')),
    Row("add margin", ("trade", "margin", "BTC", "--add", "$50"), "/margin btc --add 50",
        ("adjust_margin", {"market": "BTC", "add_usd": 50}), ("trade.margin", '{"market": "BTC", "add": "50"}')),
    Row("remove margin", ("trade", "margin", "BTC", "--remove", "12.5"), "/margin BTC --remove 12.5",
        ("adjust_margin", {"market": "BTC", "remove_usd": "12.5"}),
        ("trade.margin", '{"market": "BTC", "remove": "12.5"}')),
    Row("flatten", ("trade", "flatten", "--yes"), "/flatten", ("flatten_all", {"reason": "test"}),
        ("trade.flatten", "{}")),
    Row("halt", ("risk", "halt"), "/halt", ("halt_trading", {"reason": "test"}), ("risk.halt", '{"by": "human"}')),
    Row("resume", ("risk", "resume", "--yes"), "/resume", None, ("risk.resume", '{"by": "human"}')),
    Row("mode", None, "/mode copilot --alerts", None, ("mode.set", '{"scope": "alert", "mode": "copilot"}')),
    Row("watch with a full setup",
        ("watchers", "add", "eth", "--above", "3500", "--above-thesis", "range high", "--above-entry", "3510",
         "--above-stop", "3450", "--above-target", "3700", "--above-conviction", "60", "--above-risk", "$20",
         "--below", "2,800", "--expires", "24h"), None,
        ("set_watcher_pair", {"market": "ETH", "upper": {"level": 3500, "thesis": "range high", "entry_px": "3510",
                                                         "stop_px": 3450, "target_px": 3700, "conviction": 60,
                                                         "risk_usd": 20}, "lower": {"level": "2800"},
                              "expires_in": "24h"}),
        ("watch.add", '{"market": "ETH", "upper": {"level": "3500", "thesis": "range high", "entry": "3510", '
                      '"stop": "3450", "target": "3700", "conviction": 60, "risk_usd": "20"}, '
                      '"lower": {"level": "2800"}, "expires_in": 86400}')),
    Row("watch both levels", ("watchers", "add", "BTC", "--above", "70000", "--above-thesis", "ath",
                              "--below", "60000", "--below-thesis", "ath"),
        "/watch btc --above 70000 --below 60000 --thesis ath",
        ("set_watcher_pair", {"market": "BTC", "upper": {"level": 70000, "thesis": "ath"},
                              "lower": {"level": 60000, "thesis": "ath"}}),
        ("watch.add", '{"market": "BTC", "upper": {"level": "70000", "thesis": "ath"}, '
                      '"lower": {"level": "60000", "thesis": "ath"}}')),
    Row("modify a watcher's leg", None, None,
        ("modify_watcher", {"id": "w_1", "lower": {"level": "2900", "thesis": "retest", "side": "long",
                                                   "stop_px": "2850", "conviction": 40}, "expires_in": "4h"}),
        ("watch.modify", '{"id": "w_1", "lower": {"level": "2900", "thesis": "retest", "side": "long", '
                         '"stop": "2850", "conviction": 40}, "expires_in": 14400}')),
    Row("time alert", ("alerts", "add", "check funding", "--in", "30m", "--every", "1h"),
        "/alert --in 30m --every 1h check funding", ("set_time_alert", {"prompt": "check funding", "in": "30m",
                                                                         "every": "1h"}),
        ("alert.add", '{"prompt": "check funding", "after": 1800, "every": 3600}')),
    Row("note", ("notes", "add", "BTC wicks the Asia low", "--tag", "btc", "--tag", "#Asia"),
        "/note BTC wicks the Asia low --tag btc --tag asia",
        ("add_note", {"text": "BTC wicks the Asia low", "tags": ["BTC", "asia"]}),
        ("note.add", '{"text": "BTC wicks the Asia low", "tags": ["btc", "asia"]}')),
]

CLI_ACTIONS = {("trade", "open"): "trade.open", ("trade", "close"): "trade.close", ("trade", "stop"): "trade.stop",
               ("trade", "target"): "trade.target", ("trade", "cancel"): "trade.cancel",
               ("trade", "flatten"): "trade.flatten", ("trade", "leverage"): "trade.leverage",
               ("trade", "margin"): "trade.margin", ("watchers", "add"): "watch.add", ("alerts", "add"): "alert.add",
               ("notes", "add"): "note.add", ("risk", "halt"): "risk.halt",
               ("risk", "resume"): "risk.resume"}


def cli_door(argv: tuple[str, ...]) -> TraderAction:
    """The typer app parses the command line; its parameters (named as the action's `parse`
    keywords, as the command's body passes them) build the action."""
    apps = {"trade": cli_trade.app, "risk": cli_risk.app, "watchers": cli_watchers.app, "alerts": cli_alerts.app,
            "notes": cli_notes.app}
    group = typer.main.get_command(apps[argv[0]])
    command = group.commands[argv[1]]  # type: ignore[attr-defined]
    params = command.make_context(argv[1], list(argv[2:])).params
    cls = BY_COMMAND[CLI_ACTIONS[argv[:2]]]
    parse = getattr(cls, "parse", None)
    if parse is None:  # halt, resume: no arguments
        return cls()
    keys = inspect.signature(parse).parameters
    return parse(**{k: v for k, v in params.items() if k in keys})  # type: ignore[no-any-return]


def tool_door(name: str, raw: dict[str, Any]) -> TraderAction:
    """The tool's argument model validates the model's JSON; the tool builds the action from it."""
    tool = next(t for t in (*tools.TRADE_TOOLS, *memory_tools.MEMORY_TOOLS) if t.name == name)
    args = tool.args.model_validate(raw)
    return {**tools.ACTION_OF, **memory_tools.ACTION_OF}[name](args)


def channel_door(name: str, text: str) -> TraderAction:
    return BY_COMMAND[name].from_channel(json.loads(text))


def as_human(resolved: Any) -> Any:
    """The same intent as the human would send (the tools act as the agent)."""
    if hasattr(resolved, "origin"):
        return resolved.model_copy(update={"origin": "human"})
    if getattr(resolved, "op", None) == "halt":
        return resolved.model_copy(update={"by": "human"})
    if isinstance(resolved, NewWatcher):
        return NewWatcher(watch=resolved.watch.model_copy(update={"created_by": "human"}))
    return resolved


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_every_door_builds_the_same_action(row: Row) -> None:
    built: dict[str, TraderAction] = {}
    if row.cli is not None:
        built["cli"] = cli_door(row.cli)
    if row.slash is not None:
        built["slash"] = parse_slash(row.slash).as_action()
    if row.tool is not None:
        built["tool"] = tool_door(*row.tool)
    if row.channel is not None:
        built["channel"] = channel_door(*row.channel)
    assert len(built) >= 2
    resolved = {door: action.resolve(ACCOUNT) for door, action in built.items()}
    expected = as_human(resolved["channel"])
    for door, value in resolved.items():
        assert as_human(value) == expected, door
    if "tool" in resolved:
        assert getattr(resolved["tool"], "origin", "agent") == "agent"
        assert built["tool"].resolve(None) == resolved["tool"]  # the tools' prices need no account
    for door in ("cli", "slash", "channel"):
        if door in resolved:
            assert getattr(resolved[door], "origin", "human") == "human"
    # what the shell and the slash commands send is read back as the same action by the channel
    for door in ("cli", "slash"):
        if door in built:
            action = built[door]
            assert type(action).from_channel(action.channel_args()) == action


def test_the_limit_short_resolves_to_the_documented_prices() -> None:
    intent = Open.parse(market="ETH", side="short", stop="2%", risk="25", entry="0.5%", target="10%").resolve(ACCOUNT)
    assert (intent.stop_px, intent.entry_px, intent.target_px) == (D(3060), D(3015), D(2700))


@pytest.mark.parametrize(("cli", "slash", "channel", "message"), [
    (("trade", "open", "BTC", "long", "--stop", "1e309", "--risk", "20"), "/long BTC --stop 1e309 --risk 20",
     ("trade.open", '{"market": "BTC", "side": "long", "stop": "1e309", "risk": "20"}'), "--stop: must be at most"),
    (("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "NaN"), "/long BTC --stop 2% --risk NaN",
     ("trade.open", '{"market": "BTC", "side": "long", "stop": "2%", "risk": "NaN"}'), "--risk: must be positive"),
    (("trade", "open", "BTC", "long", "--stop", "-5", "--risk", "20"), "/long BTC --stop -5 --risk 20",
     ("trade.open", '{"market": "BTC", "side": "long", "stop": "-5", "risk": "20"}'), "--stop: must be positive"),
    (("trade", "open", "BTC", "up", "--stop", "2%", "--risk", "20"), None,
     ("trade.open", '{"market": "BTC", "side": "up", "stop": "2%", "risk": "20"}'), "SIDE: expected long or short"),
    (("trade", "close", "BTC", "--fraction", "2"), "/close BTC --fraction 2",
     ("trade.close", '{"market": "BTC", "fraction": "2"}'), "--fraction: between 0 and 1"),
    (("trade", "stop", "BTC", "150%"), "/stop BTC 150%", ("trade.stop", '{"market": "BTC", "price": "150%"}'),
     "a distance is between 0% and 100%"),
    (("trade", "cancel", "x7"), "/cancel x7", ("trade.cancel", '{"oid": "x7"}'), "OID: 'x7' is not an order id"),
    (("trade", "margin", "BTC"), "/margin BTC", ("trade.margin", '{"market": "BTC"}'),
     "give exactly one of --add USD or --remove USD"),
    (("trade", "margin", "BTC", "--add", "-5"), "/margin BTC --add -5",
     ("trade.margin", '{"market": "BTC", "add": "-5"}'), "--add: must be positive"),
    (("trade", "leverage", "BTC", "2000"), "/leverage BTC 2000",
     ("trade.leverage", '{"market": "BTC", "leverage": "2000"}'), "LEVERAGE: must be at most"),
])
def test_every_door_refuses_bad_input_with_the_same_error(cli: tuple[str, ...], slash: str | None,
                                                          channel: tuple[str, str], message: str) -> None:
    from revagent.errors import UsageError

    doors = [lambda: cli_door(cli), lambda: channel_door(*channel)]
    if slash is not None:
        doors.append(lambda: parse_slash(slash))
    for door in doors:
        with pytest.raises(UsageError) as info:
            door()
        assert message in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("value", ["1e309", "NaN", "-5", "Infinity"])
def test_the_tool_door_refuses_the_same_numbers(value: str) -> None:
    from pydantic import ValidationError

    raw = {"market": "BTC", "side": "long", "stop_px": value, "risk_usd": "20", "target_px": "63000",
           "conviction": 60, "rationale": "test", "thesis": "t", "invalidation": "i"}
    with pytest.raises(ValidationError):
        tool_door("open_trade", raw)
