"""Sync's timing knobs. The policy ones come from the config's `[sync]` section (`sync_options`);
the rest have defaults that rarely need changing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revagent.config import SyncSettings


@dataclass(frozen=True)
class SyncOptions:
    """- `snapshot_interval`: a REST snapshot this often (and after every reconnect);
    - `risk_interval`: the risk state is updated at least this often (and on every account change);
    - `confirm_delay`: a snapshot this soon after a fill or an acknowledged order confirms the view;
    - `backoff_initial` / `backoff_max`: retry delays of a failed reconciliation (doubling);
    - `correction_cooldown`: the same correction is not retried sooner than this;
    - `protect_unconfirmed_after`: a stop missing from a view that no REST snapshot has confirmed yet
      (the websocket reported the change) is repaired from the live view after this long anyway: a
      REST outage never holds up protection;
    - `prices_interval`: mid-price changes refresh the view (and publish) at most this often;
    - `history`: how far back the first reconciliation of a new wallet reads fills;
    - `verify_rounds`: reconciliation rounds before the phase is `failed`;
    - `price_source_interval`: a paper venue is asked where its prices come from this often;
    - `full_snapshot_every`: while the phase is `consistent` and the view is confirmed, a periodic tick is a
      cheap check (`clearinghouseState`, weight 2, against the view's positions) and only every n-th one a
      full snapshot (84-104 weight); drift, fills, acks and reconnects still get one at once. 1: always full.
    """

    snapshot_interval: timedelta = timedelta(seconds=10)
    risk_interval: timedelta = timedelta(seconds=5)
    confirm_delay: timedelta = timedelta(milliseconds=300)
    backoff_initial: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(seconds=60)
    correction_cooldown: timedelta = timedelta(seconds=5)
    protect_unconfirmed_after: timedelta = timedelta(milliseconds=1500)
    prices_interval: timedelta = timedelta(seconds=1)
    history: timedelta = timedelta(days=365)
    verify_rounds: int = 3
    price_source_interval: timedelta = timedelta(seconds=5)
    full_snapshot_every: int = 6


def sync_options(settings: SyncSettings) -> SyncOptions:
    """The options a session's sync loop runs with: the `[sync]` settings over the defaults."""
    return SyncOptions(snapshot_interval=settings.snapshot_interval, risk_interval=settings.risk_interval,
                       correction_cooldown=settings.correction_cooldown,
                       protect_unconfirmed_after=settings.protect_unconfirmed_after,
                       backoff_max=settings.reconcile_backoff_max, history=settings.history)
