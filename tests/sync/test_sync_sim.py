"""Sync against the embedded simulator: reconciliation, the running loop, corrections through the gateway."""

from __future__ import annotations

from decimal import Decimal

from revagent.events import AccountChanged, DriftFound, FillRecorded, SyncPhaseChanged
from revagent.exchange.protocol import ActionOk, CancelRequest, LimitType, OrderRequest, SendResult
from revagent.gateway import Action
from revagent.risk import OpenTrade
from revagent.store.ledger import fill_key
from tests.sync.conftest import Rig, sim_fills

D = Decimal


def ok(result: SendResult) -> ActionOk:
    assert isinstance(result, ActionOk), result
    return result


async def market(rig: Rig, coin: str, size: str, px: str) -> None:
    """A trade made directly with the exchange API, behind the session's back."""
    sz = D(size)
    ok(await rig.other.place_orders([OrderRequest(coin, sz > 0, abs(sz), D(px), LimitType("Ioc"))]))


def drained(sub: object) -> list[object]:
    out = []
    queue = sub.queue  # type: ignore[attr-defined]
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def stops(rig: Rig, coin: str) -> list[int]:
    return [o.oid for o in await rig.bridge.open_orders() if o.coin == coin and o.is_trigger]


async def test_start_up_reconciliation_records_a_trade_made_by_hand_and_protects_it(rig: Rig) -> None:
    await market(rig, "BTC", "0.01", "61000")
    phases = rig.bus.subscribe(SyncPhaseChanged)
    drift = rig.bus.subscribe(DriftFound)
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"), what="consistent")
    assert [e.phase for e in drained(phases)][:4] == ["checking", "reconciling", "verifying", "consistent"]
    assert await rig.ledger.count("fills") == 1
    view = await rig.sync.account()
    (position,) = view.positions
    assert position.market == "BTC" and position.size == D("0.01") and position.trade_id is None
    await rig.until(lambda: _nonempty(stops(rig, "BTC")), what="a stop placed by correction")
    await rig.until(lambda: _nonempty(rig.ledger.events(kind="correction")), what="the correction recorded")
    kinds = {(e.kind, e.market) for e in drained(drift)}  # type: ignore[attr-defined]
    assert ("untracked_position", "BTC") in kinds and ("stop_missing", "BTC") in kinds
    corrections = await rig.ledger.events(kind="correction")
    assert corrections and corrections[0].market == "BTC" and "no stop" in corrections[0].reason
    assert corrections[0].data["status"] == "done"


async def test_a_stop_cancelled_by_hand_is_detected_and_placed_again(rig: Rig) -> None:
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"))
    result = await rig.gateway.submit(OpenTrade(market="ETH", side="long", stop_px=D(2900), risk_usd=D(10),
                                                origin="human"), Action.command("open-eth"))
    assert result.ok, result.message
    await rig.until(lambda: _const(_has_stop(rig, "ETH")), what="the stop in the view")
    (first,) = await stops(rig, "ETH")
    ok(await rig.other.cancel_orders([CancelRequest("ETH", oid=first)]))
    await rig.until(lambda: _replaced(rig, "ETH", first), what="a new stop")
    await rig.until(lambda: _nonempty(rig.ledger.events(kind="correction")), what="the correction recorded")
    reasons = [e.reason for e in await rig.ledger.events(kind="correction")]
    assert any("ETH" in r and "no stop" in r for r in reasons), reasons
    trades = rig.sync.recorder.book.open_trades()
    assert trades["ETH"].trade_id == result.trade_id
    plan = await rig.plans.get(result.trade_id or "")
    assert plan is not None and plan.status == "open"


async def test_a_websocket_dropped_during_fills_loses_nothing_and_counts_nothing_twice(rig: Rig) -> None:
    recorded = rig.bus.subscribe(FillRecorded, maxsize=10_000)
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"))
    await market(rig, "BTC", "0.01", "61000")
    await rig.sim.drop_websockets()
    for size, px in [("0.02", "61000"), ("-0.01", "59000"), ("0.01", "61000")]:
        await market(rig, "BTC", size, px)
    await rig.sim.drop_websockets()
    await market(rig, "BTC", "-0.03", "59000")
    expected = sim_fills(rig.sim, rig.master)
    assert len(expected) == 5

    async def caught_up() -> bool:
        return await rig.ledger.count("fills") == 5 and rig.sync.phase == "consistent"

    await rig.until(caught_up, what="every fill recorded")
    await rig.sync.snapshot_now()
    fills = await rig.ledger.fills()
    assert len(fills) == 5 and len({fill_key(f) for f in fills}) == 5
    assert sorted(f.tid or 0 for f in fills) == sorted(int(f["tid"]) for f in expected)
    events = [e for e in drained(recorded) if isinstance(e, FillRecorded)]
    assert len(events) == 5
    (trade,) = rig.sync.recorder.book.trades()
    assert trade.status == "closed" and trade.complete and trade.pnl_source == "vwap"
    assert trade.gross_pnl == sum(D(f["closedPnl"]) for f in expected)
    view = await rig.sync.account()
    assert view.positions == ()


async def test_every_change_publishes_one_account_changed_naming_it(rig: Rig) -> None:
    changes = rig.bus.subscribe(AccountChanged, maxsize=10_000)
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"))
    drained(changes)
    await market(rig, "ETH", "0.5", "3100")
    await rig.until(lambda: _const(bool((v := rig.sync.view) and v.positions)), what="the fill in the view")
    events = [e for e in drained(changes) if isinstance(e, AccountChanged)]
    assert any("positions" in e.changed for e in events)
    versions = [e.version for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


async def _const(value: bool) -> bool:
    return value


async def _nonempty(coro: object) -> bool:
    return bool(await coro)  # type: ignore[misc]


def _has_stop(rig: Rig, coin: str) -> bool:
    view = rig.sync.view
    position = view.position(coin) if view is not None else None
    return position is not None and position.stop_px is not None


async def _replaced(rig: Rig, coin: str, old: int) -> bool:
    current = await stops(rig, coin)
    return bool(current) and old not in current


async def test_risk_state_equity_history_and_a_withdrawal_that_is_not_a_drawdown(rig: Rig) -> None:
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"))

    async def risk_seen() -> bool:
        state = await rig.risk.get()
        return state.equity == D(10_000) and bool(await rig.ledger.equity_history())

    await rig.until(risk_seen, what="the risk state and the equity history")
    assert (await rig.risk.get()).peak_equity == D(10_000)
    assert rig.sim.withdraw(rig.master, "3000") is None  # 30%: as a loss it would lock the account

    async def withdrawn() -> bool:
        state = await rig.risk.get()
        return state.equity is not None and state.equity < D(7_000)

    await rig.until(withdrawn, what="the withdrawal seen")
    state = await rig.risk.get()
    assert state.locked_until is None and state.drawdown == 0 and state.net_transfers == D(-3001)
    assert state.peak_equity == D(6_999)
    assert await rig.ledger.count("transfers") == 2  # the starting deposit and the withdrawal


async def test_the_sync_command_reconciles_once_and_reports_its_phases(rig: Rig) -> None:
    await market(rig, "ETH", "0.5", "3100")
    replies: list[tuple[str, object]] = []

    async def emit(kind: str, data: object) -> None:
        replies.append((kind, data))

    report = await rig.sync.command_reconcile({}, emit)
    assert [d["phase"] for k, d in replies if k == "phase"] == [  # type: ignore[index]
        "checking", "reconciling", "verifying", "consistent"]
    assert report["new_fills"] == 1 and report["positions"] == {"ETH": "0.5"}
    assert report["phases"][-1]["phase"] == "consistent"


async def test_reconciliation_settles_plans_and_journal_records_the_exchange_does_not_know(rig: Rig) -> None:
    from datetime import timedelta

    from revagent.models import OrderRecord, Side, TradePlan, utc_now

    long_ago = utc_now() - timedelta(minutes=10)
    plan = TradePlan(trade_id="tr_ghost", market="SOL", side=Side.LONG, stop_px=D(100), risk_usd=D(10),
                     opened_at=long_ago)
    await rig.plans.save(plan)
    lost = OrderRecord(cloid="0x" + "e" * 32, action="tool:t:c", role="entry", market="SOL", is_buy=True, size=D(1),
                       price=D(150), trade_id="tr_ghost", status="unknown", created_at=long_ago, updated_at=long_ago)
    await rig.journal.record(lost)
    report = await rig.sync.reconcile_now()
    assert (await rig.plans.get("tr_ghost")).status == "cancelled"  # type: ignore[union-attr]
    assert (await rig.journal.get(lost.cloid)).status == "cancelled"  # type: ignore[union-attr]
    kinds = sorted(e.kind for e in report.corrections)
    assert kinds == ["journal", "plan"] and all(e.reason for e in report.corrections)
    assert await rig.plans.open_trades() == []


async def test_a_liquidation_closes_the_trade_with_the_exchanges_numbers(rig: Rig) -> None:
    rig.start()
    await rig.until(lambda: _const(rig.sync.phase == "consistent"))
    ok(await rig.other.update_leverage("BTC", 20))
    await market(rig, "BTC", "2", "61000")  # 120k notional on 10k: liquidated near 55.5k
    await rig.until(lambda: _const(bool((v := rig.sync.view) and v.position("BTC"))), what="the position")
    rig.sim.set_price("BTC", "50000")

    async def liquidated() -> bool:
        view = rig.sync.view
        return view is not None and view.position("BTC") is None and rig.sync.phase == "consistent"

    await rig.until(liquidated, what="the liquidation seen")
    expected = sim_fills(rig.sim, rig.master)
    await rig.until(lambda: _const(len(rig.sync.recorder.book) == len(expected)), what="every fill recorded")
    (trade,) = rig.sync.recorder.book.trades()
    assert trade.status == "closed" and trade.gross_pnl == sum(D(f["closedPnl"]) for f in expected)
    assert trade.net_pnl < -5_000 and trade.complete
    await rig.until(lambda: _const(bool((v := rig.sync.view) and v.equity < D(5_000))), what="the snapshot's equity")
