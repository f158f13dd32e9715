"""The last account view a screen showed, stored so the next start paints it at once.

A TUI (owner or viewer) keeps the latest live `AccountView` here with its risk status and usage
(at most once every `min_gap` seconds); the next TUI on the wallet paints it, dimmed and stamped
with its age, in its first frame, before the session is live; the wallet switcher lists it for
every configured wallet without starting any trading runtime. It is a picture, never a source for
a decision: nothing that trades reads it. No invalidation is published (it is not shared state).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from revagent.models import UtcDateTime
from revagent.risk import AccountView, RiskStatus, RiskUsage
from revagent.store.keys import Keyspace

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


class StoredAccount(BaseModel):
    """An account view as it was shown at `saved_at`."""

    model_config = ConfigDict(frozen=True)

    account: AccountView
    status: RiskStatus | None = None
    usage: RiskUsage | None = None
    saved_at: UtcDateTime


class AccountViewStore:
    """`get()` the last stored view (None when there is none or it no longer parses); `put()` a new
    one, skipped when the previous put is less than `min_gap` seconds old (unless `force`)."""

    def __init__(self, redis: Redis, keys: Keyspace, *, min_gap: float = 2.0) -> None:
        self.redis = redis
        self.key = keys.account_view
        self.min_gap = min_gap
        self._last_put = float("-inf")

    async def get(self) -> StoredAccount | None:
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        try:
            return StoredAccount.model_validate_json(raw)
        except ValidationError as exc:  # an older shape: show nothing rather than a wrong picture
            log.warning("the stored account view does not parse, ignored: %s", exc)
            return None

    async def put(self, doc: StoredAccount, *, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last_put < self.min_gap:
            return False
        self._last_put = now
        await self.redis.set(self.key, doc.model_dump_json())
        return True
