"""The trader's actions, typed once for every front door.

One pydantic model per action (`Open`, `Close`, `Stop`, `Target`, `Cancel`, `ChangeLeverage`,
`Flatten`, `Halt`, `Resume`, `SetMode`), the grammar of their values in one place
(`actions.grammar`: a price is `93250`, `3,040.5` or a distance from the mark `2%`; USD amounts,
fractions, leverage, conviction, market names, order ids, all bounded by `models.MAX_PRICE` /
`MAX_USD`), and `resolve(account)`: what runs, an order intent of `risk.intents` for the gateway
(`OrderIntent`) or a change to the store (`StoreChange`: the kill switch, the approval mode).

The four doors build these models and nothing else parses a trader's action:
- the shell (`cli/trade.py`, `cli/risk.py`): `Open.parse(**typer params)`, sent as `channel_args()`;
- the slash commands (`tui/slash.py`): the same `parse` (`SlashCommand.as_action()`), the same
  channel arguments;
- the command channel (`commands.py`): `Model.from_channel(json).resolve(account)`;
- the LLM tools (`engine/tools/trade.py`): their argument models take their field types (and so
  their JSON schema) from `actions.grammar`, and each call builds the action model and resolves it.

Layering: actions import `risk`, `models` and `errors` only (risk stays pure: it never imports
actions); the doors import actions, never each other (the TUI does not import the CLI).

What a new action costs now: one model here (fields, `parse`, `from_channel`/`channel_args`,
`resolve`), plus one line per door (a typer command calling `parse`, a slash builder entry, a
channel handler calling `from_channel(...).resolve(...)`, a tool entry), and a row in
`tests/actions/test_doors.py`. Before this package a new trade action touched seven places with
three parsers of their own (the tool's argument model, `commands.py`'s dict parsing, `tui/slash.py`,
`cli/trade.py`, the gateway's isinstance ladder, the risk intents, `evaluate`).
"""

from revagent.actions import grammar
from revagent.actions.grammar import Distance, PriceSpec
from revagent.actions.models import (
    BY_COMMAND,
    MODES,
    ORDER_ACTIONS,
    Cancel,
    ChangeLeverage,
    Close,
    Flatten,
    Halt,
    Mode,
    ModeChange,
    Open,
    OrderAction,
    Resume,
    RiskStateChange,
    SetMode,
    Stop,
    StoreChange,
    Target,
    TraderAction,
)

__all__ = [
    "BY_COMMAND",
    "MODES",
    "ORDER_ACTIONS",
    "Cancel",
    "ChangeLeverage",
    "Close",
    "Distance",
    "Flatten",
    "Halt",
    "Mode",
    "ModeChange",
    "Open",
    "OrderAction",
    "PriceSpec",
    "Resume",
    "RiskStateChange",
    "SetMode",
    "Stop",
    "StoreChange",
    "Target",
    "TraderAction",
    "grammar",
]
