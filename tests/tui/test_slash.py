"""The slash-command parser: typed commands, one-line errors, completion."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.errors import UsageError
from revagent.tui.slash import (
    COMMAND_NAMES,
    AlertCmd,
    CancelCmd,
    CloseCmd,
    FlattenCmd,
    HaltCmd,
    HelpCmd,
    ModeCmd,
    NoteCmd,
    OpenTradeCmd,
    RiskCmd,
    StopCmd,
    TargetCmd,
    WatchCmd,
    complete,
    help_text,
    parse_slash,
)


def test_long_takes_the_arguments_of_trade_open() -> None:
    cmd = parse_slash("/long sol --stop 3% --risk 20 --target 180 --take-profit 175.5 --leverage 3 "
                      "--isolated --conviction 70 --entry 150")
    assert cmd == OpenTradeCmd(side="long", market="SOL", stop="3%", risk_usd=Decimal(20), entry="150",
                               target="180", take_profit="175.5", leverage=Decimal(3), isolated=True,
                               conviction=70)
    assert cmd.destructive
    name, args = cmd.session_command()
    assert name == "trade.open"
    assert args == {"market": "SOL", "side": "long", "stop": "3%", "risk": "20", "origin": "human",
                    "entry": "150", "target": "180", "take_profit": "175.5", "leverage": "3",
                    "conviction": 70, "isolated": True}


def test_short_with_only_the_required_arguments_and_inline_values() -> None:
    cmd = parse_slash("/short ETH --stop=3,150 --risk $25")
    assert isinstance(cmd, OpenTradeCmd)
    assert (cmd.side, cmd.market, cmd.stop, cmd.risk_usd) == ("short", "ETH", "3150", Decimal(25))
    assert "isolated" not in cmd.trade_args() and "entry" not in cmd.trade_args()


@pytest.mark.parametrize(("line", "message"), [
    ("/long ETH --risk 20", "--stop is required"),
    ("/long ETH --stop 2%", "--risk USD is required"),
    ("/long --stop 2% --risk 5", "expected 1 argument"),
    ("/long ETH --stop 0 --risk 5", "--stop: must be positive"),
    ("/long ETH --stop 120% --risk 5", "between 0% and 100%"),
    ("/long ETH --stop abc --risk 5", "--stop: 'abc' is not a price"),
    ("/long ETH --stop 2% --risk -5", "--risk"),
    ("/long ETH --stop 2% --risk 5 --conviction 101", "conviction is 0-100"),
    ("/long ETH --stop 2% --risk 5 --size 3", "unknown option --size"),
    ("/long ETH --stop 2% --stop 3% --risk 5", "--stop given twice"),
    ("/long ETH --stop", "--stop needs a value"),
    ("/close ETH --fraction 2", "between 0 and 1"),
    ("/cancel abc", "not an order id"),
    ("/watch BTC", "--above LEVEL, --below LEVEL"),
    ("/watch BTC --above 90000 --below 95000", "must be under the upper level"),
    ("/alert check funding", "exactly one of --at"),
    ("/alert --in 30m", "PROMPT cannot be empty"),
    ("/alert --in 30m --every 10s ping", "at most once a minute"),
    ("/note", "TEXT cannot be empty"),
    ("/mode turbo", "expected one of"),
    ("/lung ETH", "unknown command /lung (did you mean /long?)"),
    ("/", "type a command"),
    ("/note 'unbalanced", "cannot read the command"),
    ("/flatten now", "expected 0 argument"),
])
def test_mistakes_are_one_line_usage_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_slash(line)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_position_and_order_commands() -> None:
    assert parse_slash("/close eth") == CloseCmd(market="ETH", fraction=Decimal(1))
    assert parse_slash("/close ETH --fraction 0.5").session_command() == (
        "trade.close", {"market": "ETH", "fraction": "0.5"})
    assert parse_slash("/flatten") == FlattenCmd()
    assert parse_slash("/stop ETH 3,040").session_command() == ("trade.stop", {"market": "ETH", "price": "3040"})
    assert parse_slash("/target ETH 3280") == TargetCmd(market="ETH", target="3280")
    assert parse_slash("/target ETH --take-profit 1%").session_command() == (
        "trade.target", {"market": "ETH", "take_profit": "1%"})
    assert parse_slash("/cancel 42").session_command() == ("trade.cancel", {"oid": 42})
    assert isinstance(parse_slash("/stop ETH 3000"), StopCmd)
    assert isinstance(parse_slash("/cancel 7"), CancelCmd)


def test_store_commands_and_risk() -> None:
    assert parse_slash('/watch btc --above 98500 --below 94000 --thesis "range break" --expires 24h') == WatchCmd(
        market="BTC", above=Decimal(98500), below=Decimal(94000), thesis="range break",
        expires=timedelta(hours=24))
    alert = parse_slash("/alert --in 2h --every 1h check funding on ETH")
    assert alert == AlertCmd(prompt="check funding on ETH", after=timedelta(hours=2), every=timedelta(hours=1))
    at = parse_slash("/alert --at 2026-11-24T16:00Z recap")
    assert isinstance(at, AlertCmd) and at.at is not None and at.at.hour == 16 and at.at.tzinfo is not None
    assert parse_slash("/note funding flips at 16:00 --tag eth --tag ETH") == NoteCmd(
        text="funding flips at 16:00", tags=("eth",))
    assert parse_slash("/risk") == RiskCmd()
    assert parse_slash("/risk set max_leverage 3").session_command() == (
        "risk.set", {"key": "max_leverage", "value": "3"})
    assert parse_slash("/risk reset max_leverage").session_command() == ("risk.reset", {"key": "max_leverage"})
    assert parse_slash("/halt") == HaltCmd() and HaltCmd.destructive
    assert parse_slash("/resume").session_command() == ("risk.resume", {"by": "human"})
    assert parse_slash("/mode copilot --alerts") == ModeCmd(mode="copilot", alerts=True)
    assert parse_slash("/mode").session_command() == ("mode.show", {"scope": "chat"})
    assert parse_slash("/help long") == HelpCmd(topic="long")
    assert not WatchCmd.destructive and not NoteCmd.destructive


def test_help_lists_every_command() -> None:
    text = help_text()
    for name in COMMAND_NAMES:
        assert f"/{name}" in text
    assert "--take-profit" in help_text("long")


def test_completion_of_names_and_options() -> None:
    assert complete("/") == [f"/{n} " for n in COMMAND_NAMES]
    assert complete("/fl") == ["/flatten "]
    assert complete("/s") == ["/short ", "/stop "]
    assert complete("/long ETH --st") == ["/long ETH --stop "]
    opts = complete("/long ETH --stop 2% --")
    assert "/long ETH --stop 2% --risk " in opts and all("--stop " not in o[len("/long ETH --stop 2% "):]
                                                         for o in opts)
    assert complete("/note hi --tag a --t") == ["/note hi --tag a --tag "]
    assert complete("hello") == [] and complete("/nope --x") == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_line_parses_or_raises_usage_error(line: str) -> None:
    message = ""
    try:
        parse_slash("/" + line)
        message = "ok"
    except UsageError as exc:
        message = exc.message
    assert message and "\n" not in message
