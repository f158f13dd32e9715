"""The trader's actions, typed once for every front door.

One pydantic model per action (`Open`, `Close`, `Stop`, `Target`, `Cancel`, `ChangeLeverage`,
`Margin`, `Flatten`, `Halt`, `Resume`, `SetMode`; the memory actions `Watch`, `ModifyWatch`,
`AddAlert`, `AddNote` in `actions.memory`), the grammar of their values in one place
(`actions.grammar`: a price is `93250`, `3,040.5` or a distance from the mark `2%`; USD amounts,
fractions, leverage, conviction, market names, order ids, all bounded by `models.MAX_PRICE` /
`MAX_USD`), and `resolve(account)`: what runs, an order intent of `risk.intents` for the gateway
(`OrderIntent`) or a change to the store (`StoreChange`: the kill switch, the approval mode).

The four doors build these models and nothing else parses a trader's action:
- the shell (`cli/trade.py`, `cli/risk.py`): `Open.parse(**typer params)`, sent as `channel_args()`;
- the slash commands (`tui/slash.py`): the same `parse` (`SlashCommand.as_action()`), the same
  channel arguments;
- the command channel (`commands.py`): `Model.from_channel(json).resolve(account)`;
- the LLM tools (`engine/tools/trade.py`): their argument models (and so their JSON schema) are
  generated from these models (`engine/tools/derive.py`: each tool field names the action field it
  is, plus the door's own words and fields), and each call builds the action model back and
  resolves it.

Layering: actions import `risk`, `models` and `errors` only (risk stays pure: it never imports
actions); the doors import actions, never each other (the TUI does not import the CLI).

What a new action costs now (counted for `leverage`, whose intent exists): one model here (its
fields with the grammar's types, `parse`, `from_channel`/`channel_args`, `resolve`), then per door
only a call to it: a typer command calling `parse` (`cli/trade.py`), a slash command wrapping
`as_action()` with its usage line and builder (`tui/slash.py`), one handler line
`"trade.x": _order("trade.x")` (`commands.py`), one `action_args(...)` naming the action's fields
the tool takes plus its `ACTION_OF` line (`engine/tools/trade.py`), and a row in `tests/actions/test_doors.py`: five
files, one parser. Before this package the same action touched four files with three parsers of
their own (`engine/tools/trade.py`'s argument model, `commands.py`'s dict parsing with its own
percent rule, `tui/slash.py` with a copy of that rule and `revagent.cli.parsing`, `cli/trade.py`),
each with its own bounds and error messages. A new intent kind adds `risk/intents.py`,
`risk/evaluate.py` and a `case` in the gateway's dispatch, before and after; the dispatch is now an
exhaustive `match`, so mypy names the gateway when the case is missing.
"""

from revagent.actions import grammar
from revagent.actions.grammar import Distance, PriceSpec
from revagent.actions.memory import (
    MEMORY_ACTIONS,
    AddAlert,
    AddNote,
    MemoryChange,
    ModifyWatch,
    NewNote,
    NewTimeAlert,
    NewWatcher,
    Watch,
    WatcherEdit,
    WatchLeg,
)
from revagent.actions.models import (
    BY_COMMAND as _ORDER_AND_STATE_ACTIONS,
)
from revagent.actions.models import (
    MODES,
    ORDER_ACTIONS,
    Cancel,
    ChangeLeverage,
    Close,
    Flatten,
    Halt,
    Margin,
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

BY_COMMAND: dict[str, type[TraderAction]] = {**_ORDER_AND_STATE_ACTIONS, **MEMORY_ACTIONS}
"""Every action by its command channel name (the memory actions included)."""

__all__ = [
    "BY_COMMAND",
    "MEMORY_ACTIONS",
    "MODES",
    "ORDER_ACTIONS",
    "AddAlert",
    "AddNote",
    "Cancel",
    "ChangeLeverage",
    "Close",
    "Distance",
    "Flatten",
    "Halt",
    "Margin",
    "MemoryChange",
    "Mode",
    "ModeChange",
    "ModifyWatch",
    "NewNote",
    "NewTimeAlert",
    "NewWatcher",
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
    "Watch",
    "WatchLeg",
    "WatcherEdit",
    "grammar",
]
