"""The wallet switcher's rows: every configured wallet as the store last saw it (issue 20 item 2).

`wallet_rows(config)` reads, for each wallet, from the store only (no trading runtime, no exchange
call): the last stored account view (equity, open risk, its age), the trading state from the risk
state, the armed alerts (active watchers and scheduled time alerts) and open alert threads, and
who owns the wallet now (a daemon: choosing it attaches as a viewer). A wallet whose section does
not resolve (a missing address or key) is listed with the reason and cannot be opened.
Plain data: no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from revagent.errors import RevagentError
from revagent.models import utc_now
from revagent.tui import format as fmt

if TYPE_CHECKING:
    from revagent.config import Config


@dataclass(frozen=True)
class WalletRow:
    """One configured wallet. `equity` / `open_risk` are None when no account view was ever stored;
    `problem` is set when the wallet cannot be opened."""

    name: str
    network: str
    address: str = ""
    equity: Decimal | None = None
    open_risk: Decimal | None = None
    seen_at: datetime | None = None
    state: str = "?"
    armed: int = 0
    alert_threads: int = 0
    owner: str = ""  # "" when nobody owns it; else e.g. "daemon pid 4242"
    problem: str = ""

    def cells(self, now: datetime) -> tuple[str, ...]:
        """The row as the switcher's table shows it."""
        if self.problem:
            return (self.name, self.network, self.problem, "", "", "", "")
        equity = "-" if self.equity is None else fmt.money(self.equity)
        if self.seen_at is not None and self.equity is not None:
            equity += f" ({fmt.age(self.seen_at, now)} ago)"
        risk = "-" if self.open_risk is None else fmt.money(self.open_risk)
        threads = f" · {self.alert_threads} open" if self.alert_threads else ""
        return (self.name, self.network, equity, risk, self.state.upper(), f"{self.armed} armed{threads}",
                self.owner or "-")


COLUMNS = ("wallet", "network", "equity", "open risk", "trading", "alerts", "owner")


async def wallet_rows(config: Config, *, now: datetime | None = None) -> list[WalletRow]:
    """Every configured wallet (the config's order: sorted names), read from the store."""
    from revagent.risk import status
    from revagent.store.account_views import AccountViewStore
    from revagent.store.connection import open_redis, resolve_session_id
    from revagent.store.keys import Keyspace
    from revagent.store.lease import current_holder
    from revagent.store.repos import SessionStore
    from revagent.store.risk import RiskStore
    from revagent.store.threads import ThreadStore

    when = now or utc_now()
    rows: list[WalletRow] = []
    redis = await open_redis(config)
    try:
        for name in config.wallet_names():
            try:
                wallet = config.wallet(name)
                sid = await resolve_session_id(config, wallet)
            except RevagentError as exc:
                section = config.wallets.get(name)
                rows.append(WalletRow(name, section.network if section else "?", problem=exc.message))
                continue
            keys = Keyspace(sid)
            store = SessionStore(redis, sid)
            risk = RiskStore(redis, keys, wallet.risk)
            state = status(await risk.get(), when, await risk.settings())
            stored = await AccountViewStore(redis, keys).get()
            watchers = sum(p.active for p in await store.watchers.all())
            timers = sum(a.status.value == "scheduled" for a in await store.time_alerts.all())
            threads = sum(t.kind == "alert" and t.status == "open" for t in await ThreadStore(redis, keys).all())
            holder = await current_holder(redis, keys)
            rows.append(WalletRow(
                name, wallet.network, sid.address,
                equity=stored.account.equity if stored is not None else None,
                open_risk=stored.usage.total_open_risk_usd if stored is not None and stored.usage is not None
                else None,
                seen_at=stored.saved_at if stored is not None else None, state=state.state.value,
                armed=watchers + timers, alert_threads=threads,
                owner="" if holder is None else f"{holder.role} pid {holder.pid}"))
    finally:
        await redis.aclose()
    return rows
