"""The recorded real Hyperliquid responses parse; malformed ones raise one clear ExchangeResponseError."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from revagent.errors import ExitCode
from revagent.exchange import types as t

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hyperliquid-recorded"

ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "meta.json": t.META,
    "all_mids.json": t.ALL_MIDS,
    "user_state.json": t.CLEARINGHOUSE_STATE,
    "open_orders.json": t.OPEN_ORDERS,
    "frontend_open_orders.json": t.FRONTEND_OPEN_ORDERS,
    "user_fills.json": t.USER_FILLS,
    "user_fills_by_time.json": t.USER_FILLS,
    "l2_snapshot.json": t.L2_BOOK,
    "candles_snapshot.json": t.CANDLES,
    "funding_history.json": t.FUNDING_HISTORY,
    "user_funding_history_without_end_time.json": t.USER_FUNDING,
    "user_rate_limit.json": t.USER_RATE_LIMIT,
    "historical_orders.json": t.HISTORICAL_ORDERS,
}


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())["response"]


def test_every_recorded_fixture_has_an_adapter() -> None:
    files = {p.name for p in FIXTURES.glob("*.json")}
    assert set(ADAPTERS) <= files
    assert files - set(ADAPTERS) == {"portfolio.json"}  # not a response the bridge reads


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_recorded_fixture_parses(name: str) -> None:
    parsed = t.parse_with(ADAPTERS[name], recorded(name), endpoint=name)
    assert parsed  # non-empty


def test_clearinghouse_state_without_cum_funding_and_with_null_liquidation() -> None:
    state = t.parse_with(t.CLEARINGHOUSE_STATE, recorded("user_state.json"), endpoint="clearinghouseState")
    assert len(state.positions) == 12
    btc = state.positions[0]
    assert btc.coin == "BTC"
    assert btc.szi == Decimal("-0.00785")
    assert btc.leverage.type == "cross" and btc.leverage.value == 20
    assert btc.cum_funding is None and btc.max_leverage is None  # old records lack both
    assert state.positions[1].liquidation_px is None
    assert state.margin_summary.account_value == Decimal("1182.312496")
    assert state.time is None


def test_clearinghouse_state_current_shape_with_cum_funding_and_isolated() -> None:
    raw = copy.deepcopy(recorded("user_state.json"))
    raw["time"] = 1700000000000
    raw["crossMaintenanceMarginUsed"] = "3.1"
    pos = raw["assetPositions"][0]["position"]
    pos["cumFunding"] = {"allTime": "1.5", "sinceOpen": "-0.25", "sinceChange": "0.0"}
    pos["maxLeverage"] = 50
    pos["leverage"] = {"type": "isolated", "value": 5, "rawUsd": "-40.1"}
    state = t.parse_with(t.CLEARINGHOUSE_STATE, raw, endpoint="clearinghouseState")
    first = state.positions[0]
    assert first.cum_funding is not None and first.cum_funding.since_open == Decimal("-0.25")
    assert first.leverage.raw_usd == Decimal("-40.1")
    assert first.max_leverage == 50 and state.time == 1700000000000


def test_fills_without_tid_and_with_it() -> None:
    fills = t.parse_with(t.USER_FILLS, recorded("user_fills.json"), endpoint="userFills")
    assert len(fills) == 500
    assert all(f.tid is None for f in fills)
    assert fills[0].closed_pnl == Decimal("-0.25686") and fills[0].dir == "Close Long"
    modern = dict(recorded("user_fills.json")[0], tid=123, feeToken="USDC", builderFee="0.01", cloid="0x" + "a" * 32)
    fill = t.parse_with(t.USER_FILLS, [modern], endpoint="userFills")[0]
    assert (fill.tid, fill.fee_token, fill.builder_fee) == (123, "USDC", Decimal("0.01"))


def test_frontend_open_orders_keep_children_and_triggers() -> None:
    orders = t.parse_with(t.FRONTEND_OPEN_ORDERS, recorded("frontend_open_orders.json"), endpoint="x")
    parent = orders[-1]
    assert parent.order_type == "Limit" and parent.tif == "Gtc"
    assert [c.order_type for c in parent.children] == ["Stop Market", "Take Profit Market"]
    assert orders[0].is_trigger and orders[0].trigger_px == Decimal("10.004") and orders[0].tif is None


def test_candles_and_book_field_names() -> None:
    candle = t.parse_with(t.CANDLES, recorded("candles_snapshot.json"), endpoint="candleSnapshot")[0]
    assert (candle.coin, candle.interval, candle.trades) == ("kPEPE", "1h", 709)
    assert candle.close_time - candle.open_time == 3_599_999
    book = t.parse_with(t.L2_BOOK, recorded("l2_snapshot.json"), endpoint="l2Book")
    bids, asks = book.levels
    assert bids[0].px > bids[1].px and asks[0].px > bids[0].px


def test_shapes_from_the_docs_parse() -> None:
    ctxs = [
        {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50, "onlyIsolated": False}]},
        [
            {
                "funding": "0.0000125",
                "markPx": "60000.0",
                "midPx": None,
                "oraclePx": "60010.0",
                "openInterest": "100.5",
                "premium": "0.0001",
                "impactPxs": ["59990.0", "60010.0"],
                "dayNtlVlm": "1000000.0",
                "prevDayPx": "59000.0",
            }
        ],
    ]
    meta, asset_ctxs = t.parse_with(t.META_AND_ASSET_CTXS, ctxs, endpoint="metaAndAssetCtxs")
    assert meta.universe[0].sz_decimals == 5 and asset_ctxs[0].mid_px is None
    status = t.parse_with(
        t.ORDER_STATUS,
        {
            "status": "order",
            "order": {
                "order": recorded("historical_orders.json")[0]["order"],
                "status": "filled",
                "statusTimestamp": 1,
            },
        },
        endpoint="orderStatus",
    )
    assert status.known and status.order is not None and status.order.order.coin == "TON"
    assert not t.parse_with(t.ORDER_STATUS, {"status": "unknownOid"}, endpoint="orderStatus").known
    role = t.parse_with(t.USER_ROLE, {"role": "agent", "data": {"user": "0xabc"}}, endpoint="userRole")
    assert role.data is not None and role.data.user == "0xabc"
    agents = t.parse_with(
        t.EXTRA_AGENTS, [{"name": "bot", "address": "0x" + "1" * 40, "validUntil": 1}], endpoint="extraAgents"
    )
    assert agents[0].valid_until == 1
    ledger = t.parse_with(
        t.LEDGER_UPDATES,
        [
            {"time": 1, "hash": "0x1", "delta": {"type": "deposit", "usdc": "100.0"}},
            {"time": 2, "hash": "0x2", "delta": {"type": "accountClassTransfer", "usdc": "5", "toPerp": True}},
        ],
        endpoint="userNonFundingLedgerUpdates",
    )
    assert ledger[0].delta.usdc == Decimal("100.0") and ledger[1].delta.type == "accountClassTransfer"


def test_exchange_responses_parse() -> None:
    ok = t.parse_with(
        t.EXCHANGE_RESPONSE,
        {
            "status": "ok",
            "response": {
                "type": "order",
                "data": {
                    "statuses": [
                        {"resting": {"oid": 77738308}},
                        {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
                        {"error": "Order must have minimum value of $10."},
                        "waitingForFill",
                        "waitingForTrigger",
                    ]
                },
            },
        },
        endpoint="exchange:order",
    )
    assert isinstance(ok, t.ExchangeOk) and ok.response.data is not None
    kinds = [type(s).__name__ if not isinstance(s, str) else s for s in ok.response.data.statuses]
    assert kinds == ["RestingStatus", "FilledStatus", "ErrorStatus", "waitingForFill", "waitingForTrigger"]
    cancel = t.parse_with(
        t.EXCHANGE_RESPONSE,
        {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success", {"error": "gone"}]}}},
        endpoint="exchange:cancel",
    )
    assert isinstance(cancel, t.ExchangeOk)
    default = t.parse_with(t.EXCHANGE_RESPONSE, {"status": "ok", "response": {"type": "default"}}, endpoint="x")
    assert isinstance(default, t.ExchangeOk) and default.response.data is None
    err = t.parse_with(
        t.EXCHANGE_RESPONSE, {"status": "err", "response": "User or API Wallet does not exist."}, endpoint="x"
    )
    assert isinstance(err, t.ExchangeErr) and "does not exist" in err.response


def test_websocket_payloads_parse() -> None:
    fill = recorded("user_fills.json")[0]
    assert t.parse_with(t.WS_ALL_MIDS, {"mids": {"BTC": "1.5"}}, endpoint="ws").mids["BTC"] == Decimal("1.5")
    updates = t.parse_with(
        t.WS_ORDER_UPDATES,
        [
            {
                "order": {
                    "coin": "BTC",
                    "side": "B",
                    "limitPx": "1",
                    "sz": "0",
                    "oid": 1,
                    "timestamp": 2,
                    "origSz": "1",
                    "cloid": "0x" + "0" * 32,
                },
                "status": "filled",
                "statusTimestamp": 3,
            }
        ],
        endpoint="ws",
    )
    assert updates[0].status == "filled" and updates[0].order.cloid == "0x" + "0" * 32
    snap = t.parse_with(t.WS_USER_FILLS, {"isSnapshot": True, "user": "0xab", "fills": [fill]}, endpoint="ws")
    assert snap.is_snapshot and len(snap.fills) == 1
    live = t.parse_with(t.WS_USER_FILLS, {"user": "0xab", "fills": [fill]}, endpoint="ws")
    assert not live.is_snapshot
    event = t.parse_with(t.WS_USER_EVENT, {"nonUserCancel": [{"coin": "BTC", "oid": 5}]}, endpoint="ws")
    assert event.non_user_cancel is not None and event.fills is None
    funding = t.parse_with(
        t.WS_USER_EVENT,
        {"funding": {"time": 1, "coin": "ETH", "usdc": "-0.5", "szi": "1", "fundingRate": "0.0001"}},
        endpoint="ws",
    )
    assert funding.funding is not None and funding.funding.usdc == Decimal("-0.5")
    bbo = t.parse_with(
        t.WS_BBO, {"coin": "BTC", "time": 1, "bbo": [None, {"px": "2", "sz": "1", "n": 1}]}, endpoint="ws"
    )
    assert bbo.bbo[0] is None and bbo.bbo[1] is not None


# ---------------------------------------------------------------------------------- malformed


def test_missing_field_names_endpoint_and_field() -> None:
    raw = copy.deepcopy(recorded("user_state.json"))
    del raw["assetPositions"][3]["position"]["szi"]
    with pytest.raises(t.ExchangeResponseError) as info:
        t.parse_with(t.CLEARINGHOUSE_STATE, raw, endpoint="clearinghouseState")
    err = info.value
    assert err.endpoint == "clearinghouseState"
    assert err.field == "assetPositions.3.position.szi"
    assert "clearinghouseState" in str(err) and "assetPositions.3.position.szi" in str(err)
    assert err.exit_code == ExitCode.EXCHANGE_UNREACHABLE
    assert not isinstance(err, KeyError)


def test_mistyped_number_is_reported() -> None:
    raw = copy.deepcopy(recorded("all_mids.json"))
    raw["BTC"] = "not-a-number"
    with pytest.raises(t.ExchangeResponseError) as info:
        t.parse_with(t.ALL_MIDS, raw, endpoint="allMids")
    assert info.value.field == "BTC" and "not-a-number" in str(info.value)


@pytest.mark.parametrize("body", [None, "oops", 42, [], {"status": "maybe"}, {"status": "ok"}])
def test_garbage_exchange_response_is_one_clear_error(body: Any) -> None:
    with pytest.raises(t.ExchangeResponseError) as info:
        t.parse_with(t.EXCHANGE_RESPONSE, body, endpoint="exchange:order")
    assert str(info.value).startswith("malformed exchange:order response")


def test_whole_body_of_wrong_kind() -> None:
    with pytest.raises(t.ExchangeResponseError) as info:
        t.parse_with(t.USER_FILLS, {"error": "nope"}, endpoint="userFills")
    assert info.value.field is None and "userFills" in str(info.value)
