"""Issue 20 item 2: the wallet switcher lists every configured wallet from the store (equity, open
risk, trading state, alerts, owner) with no trading runtime, before any screen or from the palette;
choosing one opens it (the app ends with `switch_to` set; `run_screens` opens that wallet)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from revagent.config import load_config
from revagent.models import LegDirection, WatcherLeg, WatcherPair, utc_now
from revagent.risk import AccountView, MarketRules, PositionView, RiskState, halt, risk_usage
from revagent.runtime.session import Session
from revagent.store.account_views import AccountViewStore, StoredAccount
from revagent.store.connection import open_redis, resolve_session_id
from revagent.store.repos import SessionStore
from revagent.store.risk import RiskStore
from revagent.tui import format as fmt
from revagent.tui.app import RevagentApp
from revagent.tui.screens.wallets import WalletPickerApp, WalletSwitcherScreen
from revagent.tui.session_port import SessionAdapter
from revagent.tui.wallets import wallet_rows
from tests.tui.screen import screen_text

TWO_WALLETS = 'default_wallet = "alpha"\n\n[wallets.alpha]\nnetwork = "paper"\n\n[wallets.beta]\nnetwork = "paper"\n'


@pytest.fixture
async def two_wallets(revagent_home: Path) -> str:
    """Two paper wallets: beta was seen with $12,345.67 and an ETH position risking $50, one watcher
    armed; alpha was never opened and is halted. Returns beta's open risk as the risk engine reckons
    it (the stop distance plus the exit's fees and slippage), formatted."""
    (revagent_home / "config" / "config.toml").write_text(TWO_WALLETS)
    cfg = load_config()
    now = utc_now()
    redis = await open_redis(cfg)
    try:
        beta = cfg.wallet("beta")
        sid = await resolve_session_id(cfg, beta)
        store = SessionStore(redis, sid)
        eth = MarketRules(name="ETH", sz_decimals=3, max_leverage=25, mark_px=Decimal(3000), price_time=now)
        account = AccountView(equity=Decimal("12345.67"), available_margin=Decimal(12000), markets={"ETH": eth},
                              positions=(PositionView(market="ETH", size=Decimal(1), entry_px=Decimal(3000),
                                                      mark_px=Decimal(3000), stop_px=Decimal(2950),
                                                      leverage=Decimal(5)),))
        usage = risk_usage(account, beta.risk, RiskState(), now)
        await AccountViewStore(redis, store.keys).put(StoredAccount(account=account, usage=usage,
                                                                    saved_at=now - timedelta(minutes=4)))
        await store.watchers.put(WatcherPair(market="ETH", created_at=now, upper=WatcherLeg(
            level=Decimal(3100), direction=LegDirection.ABOVE, thesis="breakout")))
        alpha = cfg.wallet("alpha")
        alpha_keys = SessionStore(redis, await resolve_session_id(cfg, alpha)).keys
        await RiskStore(redis, alpha_keys, alpha.risk).put(halt(RiskState(), now, by="human"))
    finally:
        await redis.aclose()
    return fmt.money(usage.total_open_risk_usd)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_with_no_wallet_given_the_switcher_lists_every_wallet_and_opens_the_chosen_one(
        two_wallets: str, size: tuple[int, int]) -> None:
    rows = await wallet_rows(load_config())
    app = WalletPickerApp(rows)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        lines = {name: next((line for line in text.splitlines() if f" {name} " in line), "")
                 for name in ("alpha", "beta")}
        assert "$12,345.67 (4m ago)" in lines["beta"] and two_wallets in lines["beta"], text
        assert "ACTIVE" in lines["beta"] and "1 armed" in lines["beta"], text
        assert "HALTED" in lines["alpha"] and "0 armed" in lines["alpha"], text
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.return_value == "beta"


@pytest.mark.timeout(120)
async def test_the_palette_switches_to_another_wallet(two_wallets: str) -> None:
    cfg = load_config()
    session = Session(cfg, cfg.wallet("alpha"), role="tui")
    await session.start()
    try:
        adapter = SessionAdapter(session, start_runtime=False)
        app = RevagentApp(adapter, initial=await adapter.load_snapshot(), live_clock=False,
                          wallets=lambda: wallet_rows(cfg))
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"switch wallet")
            await pilot.pause(0.3)
            await pilot.press("enter")
            for _ in range(50):
                await pilot.pause(0.1)
                if isinstance(app.screen, WalletSwitcherScreen):
                    break
            assert isinstance(app.screen, WalletSwitcherScreen), screen_text(app)
            text = screen_text(app)
            assert "$12,345.67" in text and "HALTED" in text and "tui pid" in text, text  # alpha: this screen owns it
            await pilot.press("down", "enter")
            for _ in range(30):
                await pilot.pause(0.1)
                if not app.is_running:
                    break
        assert app.switch_to == "beta"
    finally:
        await session.stop("test over")


@pytest.mark.timeout(180)
def test_revagent_tui_with_two_wallets_asks_which_and_opens_it_in_a_pty(two_wallets: str) -> None:
    """The real thing: `revagent tui` with no --wallet lists both wallets; enter on beta opens beta's
    own session (its header), ctrl+q quits."""
    import pexpect

    from revagent.exchange.sim import SimConfig
    from revagent.exchange.sim.threaded import ThreadedSim
    from tests.tui.test_smoke_pty import spawn_tui

    sim = ThreadedSim(SimConfig(seed=1))
    child = spawn_tui(sim.start())
    try:
        child.expect("Wallets")
        child.expect("beta")
        child.send("\x1b[B")  # down: beta
        child.send("\r")
        child.expect("PAPER")
        child.expect(r"beta:0x")
        child.send("\x11")  # ctrl+q
        child.expect(pexpect.EOF, timeout=30)
    finally:
        if child.isalive():
            child.terminate(force=True)
        sim.stop()
    child.close()
    assert child.exitstatus == 0, child.before
