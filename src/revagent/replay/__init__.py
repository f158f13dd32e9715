"""`revagent replay` (issue 19): the whole agent (sync, alerts, turn engine, risk, gateway) run through
a market in market time, as fast as the session allows, and a report of what it did.

- `spec`: what to replay (`ReplaySpec`: the data, the span, the model, the seeds, the speed);
- `seeds`: notes, watcher pairs and time alerts seeded from a file, so two runs start alike;
- `driver`: an in-process simulator on a manual clock, a paper `Session` on the market clock
  (`revagent.clock.MarketClock`), and the loop that advances market time step by step, waiting
  after each step until the session is quiet (no alert queued or running, every bus consumer
  caught up): market time never moves while an agent turn is in flight;
- `report`: `report.json` from the run's own ledger (the code behind `revagent ledger`), and
  `report.md` with an equity and drawdown chart.

A runtime-level part: it builds a Session; only the front doors (`cli/replay.py`) import it.
"""
