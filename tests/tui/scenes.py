"""Fixed scenes for the TUI tests: a real Session on the test Redis, fixed clock, fixed account.

`Scene.build()` returns a `RevagentApp` whose `prepare` hook starts the Session in the app's own
loop (snapshot tests run the app in a loop of their own), attaches the real risk store, writes the
risk state, notes, watchers and time alerts through the store, and points the account source at a
fixed `AccountView`. Nothing random: ids are fixed, times derive from `NOW`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from revagent.config import load_config
from revagent.models import LegDirection, Note, TimeAlert, WatcherLeg, WatcherPair
from revagent.risk import AccountView, MarketRules, PositionView, RiskState, TriggerOrder
from revagent.runtime.session import Session
from revagent.store.risk import RiskStore
from revagent.tui.app import RevagentApp
from revagent.tui.session_port import SessionAdapter
from tests.tui.scripted_engine import ScriptedEngine, Step

NOW = datetime(2026, 11, 24, 14, 2, 11, tzinfo=UTC)
D = Decimal


def clock() -> datetime:
    return NOW


def markets() -> dict[str, MarketRules]:
    return {
        "BTC": MarketRules(name="BTC", sz_decimals=5, max_leverage=40, mark_px=D("97310"), mid_px=D("97312"),
                           price_time=NOW),
        "ETH": MarketRules(name="ETH", sz_decimals=4, max_leverage=25, mark_px=D("3118"), mid_px=D("3118.5"),
                           price_time=NOW),
        "SOL": MarketRules(name="SOL", sz_decimals=2, max_leverage=20, mark_px=D("151.2"), price_time=NOW),
    }


def flat_account() -> AccountView:
    return AccountView(equity=D("10243.18"), available_margin=D("10243.18"), markets=markets(), as_of=NOW)


def open_account() -> AccountView:
    eth = PositionView(market="ETH", size=D("0.412"), entry_px=D("3101"), mark_px=D("3118"), stop_px=D("3040"),
                       planned_stop_px=D("3040"), target_px=D("3280"), leverage=D("5"),
                       liquidation_px=D("2410"), trade_id="tr_eth1")
    sol = PositionView(market="SOL", size=D("-12.5"), entry_px=D("152.4"), mark_px=D("151.2"), stop_px=D("156"),
                       planned_stop_px=D("156"), target_px=D("140"), leverage=D("3"), liquidation_px=D("199.1"))
    triggers = (
        TriggerOrder(market="ETH", oid=101, side="sell", size=D("0.412"), trigger_px=D("3040"), kind="stop"),
        TriggerOrder(market="SOL", oid=102, side="buy", size=D("12.5"), trigger_px=D("156"), kind="stop"),
    )
    return AccountView(equity=D("10250.18"), available_margin=D("9120.40"), positions=(eth, sol),
                       triggers=triggers, markets=markets(), as_of=NOW)


def locked_state() -> RiskState:
    return RiskState(peak_equity=D("12000"), equity=D("10243.18"), drawdown=D("0.1464"), penalty=D("0.5"),
                     updated_at=NOW, locked_until=NOW + timedelta(hours=18, minutes=12), lock_reason="max_drawdown")


def active_state() -> RiskState:
    return RiskState(peak_equity=D("10370"), equity=D("10243.18"), drawdown=D("0.0122"), updated_at=NOW)


def watchers() -> list[WatcherPair]:
    return [WatcherPair(id="w_btc", market="BTC", created_at=NOW,
                        upper=WatcherLeg(level=D("98500"), direction=LegDirection.ABOVE, thesis="breakout"),
                        lower=WatcherLeg(level=D("94000"), direction=LegDirection.BELOW, thesis="range low"))]


def time_alerts() -> list[TimeAlert]:
    return [TimeAlert(id="t_fund", fire_at=NOW + timedelta(hours=1, minutes=58), prompt="check funding",
                      created_at=NOW)]


def notes() -> list[Note]:
    return [Note(id="n_1", text="ETH reclaimed 3,100 on the retest", tags=["eth"], created_at=NOW, updated_at=NOW)]


@dataclass
class Scene:
    """One state of the main screen. `account=None` leaves the session without an account source."""

    account: AccountView | None = field(default_factory=flat_account)
    risk: RiskState = field(default_factory=active_state)
    with_store_data: bool = True
    script: list[Step] | None = None  # a scripted turn engine plays this on every chat message
    hold: bool = False
    min_snapshot_gap: float = 0.0
    session: Session | None = None
    adapter: SessionAdapter | None = None
    engine: ScriptedEngine | None = None

    def build(self) -> RevagentApp:
        cfg = load_config()
        wallet = cfg.wallet()
        session = Session(cfg, wallet, role="tui")
        self.session = session
        if self.script is not None:
            self.engine = ScriptedEngine(session.bus, self.script, hold=self.hold)
        self.adapter = SessionAdapter(session, engine=self.engine, clock=clock, start_runtime=False)
        account = self.account

        async def prepare() -> None:
            await session.start(serve_commands=False)
            session.risk = RiskStore(session.store.redis, session.store.keys, wallet.risk, session.lease)
            await session.risk.put(self.risk)
            if self.with_store_data:
                for pair in watchers():
                    await session.store.watchers.put(pair)
                for alert in time_alerts():
                    await session.store.time_alerts.put(alert)
                for note in notes():
                    await session.store.notes.put(note)
            if account is not None:
                async def source() -> AccountView:
                    return account

                session.set_account_source(source)

        async def cleanup() -> None:
            await session.stop("tui test finished")

        return RevagentApp(self.adapter, clock=clock, prepare=prepare, cleanup=cleanup, live_clock=False,
                           refresh_interval=3600, min_snapshot_gap=self.min_snapshot_gap)
