"""The websocket stream against a real local server: subscriptions, typed events, pings, drops,
reconnect + resubscribe + `Reconnected`, malformed messages, and an owned reader task."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from revagent.errors import ExchangeUnavailableError
from revagent.exchange.hyperliquid import HyperliquidBridge, HyperliquidStream, ws_url_for
from revagent.exchange.protocol import (
    BboEvent,
    BookEvent,
    Disconnected,
    EventStream,
    FillsEvent,
    MidsEvent,
    OrderUpdatesEvent,
    Reconnected,
    StreamEvent,
    UserEventsEvent,
)
from tests.exchange.conftest import recorded
from tests.exchange.scripted_server import ScriptedServer

ORDER_UPDATE = {
    "order": {
        "coin": "ETH",
        "side": "B",
        "limitPx": "1800.5",
        "sz": "0.5",
        "oid": 100,
        "timestamp": 1,
        "origSz": "0.5",
        "cloid": "0x" + "1" * 32,
    },
    "status": "open",
    "statusTimestamp": 2,
}


async def wait_until(predicate: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def next_of(stream: HyperliquidStream, kind: type[Any], timeout: float = 3.0) -> Any:
    """The next event of `kind`, skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            event = await stream.next_event()
            if isinstance(event, kind):
                return event


def test_ws_url_follows_the_base_url() -> None:
    assert ws_url_for("http://127.0.0.1:3001") == "ws://127.0.0.1:3001/ws"
    assert ws_url_for("https://api.hyperliquid.xyz/") == "wss://api.hyperliquid.xyz/ws"
    with pytest.raises(ValueError, match="http"):
        ws_url_for("ftp://x")


async def test_subscribes_and_emits_typed_events(
    bridge: HyperliquidBridge, server: ScriptedServer, master: str
) -> None:
    stream = bridge.stream(books=["ETH"])
    assert isinstance(stream, EventStream)
    await stream.start()
    await wait_until(lambda: len(server.subscriptions()) >= 5)
    assert server.subscriptions() == [
        {"type": "allMids"},
        {"type": "orderUpdates", "user": master},
        {"type": "userFills", "user": master},
        {"type": "userEvents", "user": master},
        {"type": "l2Book", "coin": "ETH"},
    ]
    fill = recorded("user_fills.json")[0]
    await server.push("allMids", {"mids": {"BTC": "60000.5"}})
    await server.push("orderUpdates", [ORDER_UPDATE])
    await server.push("userFills", {"isSnapshot": True, "user": master, "fills": [fill]})
    await server.push("userFills", {"user": master, "fills": [fill, fill]})
    await server.push("user", {"nonUserCancel": [{"coin": "ETH", "oid": 100}]})
    await server.push("l2Book", recorded("l2_snapshot.json"))
    await server.push("subscriptionResponse", {"method": "subscribe"})
    await server.push("bbo", {"coin": "ETH", "time": 5, "bbo": [{"px": "1800", "sz": "1", "n": 1}, None]})
    events: list[StreamEvent] = [await asyncio.wait_for(stream.next_event(), 3) for _ in range(7)]
    mids, updates, snapshot, live, user, book, bbo = events
    assert isinstance(mids, MidsEvent) and mids.mids == {"BTC": Decimal("60000.5")}
    assert isinstance(updates, OrderUpdatesEvent) and updates.updates[0].order.cloid == "0x" + "1" * 32
    assert isinstance(snapshot, FillsEvent) and snapshot.is_snapshot and len(snapshot.fills) == 1
    assert isinstance(live, FillsEvent) and not live.is_snapshot and len(live.fills) == 2
    assert isinstance(user, UserEventsEvent) and user.event.non_user_cancel is not None
    assert isinstance(book, BookEvent) and book.book.coin == "DYDX"
    assert isinstance(bbo, BboEvent) and bbo.bbo.bbo[1] is None


async def test_watch_and_unwatch_books(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    stream = bridge.stream()
    await stream.start()
    await asyncio.wait_for(stream.connected.wait(), 3)
    await stream.watch_book("SOL", bbo=True)
    await stream.watch_book("SOL", bbo=True)  # idempotent
    await wait_until(lambda: {"type": "bbo", "coin": "SOL"} in server.subscriptions())
    await stream.unwatch_book("SOL", bbo=True)
    await wait_until(lambda: any(m.get("method") == "unsubscribe" for m in server.ws_messages))
    assert sum(1 for s in server.subscriptions() if s.get("type") == "bbo") == 1


async def test_malformed_message_is_skipped_and_counted(
    bridge: HyperliquidBridge, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    stream = bridge.stream()
    await stream.start()
    await asyncio.wait_for(stream.connected.wait(), 3)
    with caplog.at_level(logging.WARNING):
        await server.push("orderUpdates", [{"order": {"coin": "ETH"}, "status": "open"}])
        await server.push("allMids", {"mids": {"ETH": "1"}})
        event = await asyncio.wait_for(stream.next_event(), 3)
    assert isinstance(event, MidsEvent)
    assert stream.malformed == 1
    assert "ws:orderUpdates" in caplog.text


async def test_drop_reconnects_resubscribes_and_says_so(server: ScriptedServer, agent: Any, master: str) -> None:
    async with aiohttp.ClientSession() as session:
        stream = HyperliquidStream(
            ws_url_for(server.url),
            user=master,
            session_factory=lambda: session,
            backoff_base_s=0.01,
            backoff_max_s=0.05,
        )
        await stream.start()
        try:
            await wait_until(lambda: len(server.subscriptions()) == 4)
            await server.drop_sockets()
            dropped = await next_of(stream, Disconnected)
            assert "closed" in dropped.reason
            back = await next_of(stream, Reconnected)
            assert back.attempt >= 1 and back.down_for_s >= 0
            await wait_until(lambda: len(server.subscriptions()) == 8)
            assert server.subscriptions()[4:] == server.subscriptions()[:4]
            await server.push("allMids", {"mids": {"BTC": "1"}})
            assert isinstance(await next_of(stream, MidsEvent), MidsEvent)
            assert stream.connects == 2 and server.ws_connects == 2
        finally:
            await stream.aclose()


async def test_server_restart_on_the_same_port(agent: Any, master: str) -> None:
    first = ScriptedServer()
    await first.start()
    port = first.port
    async with aiohttp.ClientSession() as session:
        stream = HyperliquidStream(
            ws_url_for(first.url), user=master, session_factory=lambda: session, backoff_base_s=0.02, backoff_max_s=0.1
        )
        await stream.start()
        second = ScriptedServer()
        try:
            await asyncio.wait_for(stream.connected.wait(), 3)
            await first.stop()
            await next_of(stream, Disconnected)
            await asyncio.sleep(0.2)  # a few failed reconnect attempts while the server is down
            second.port = port
            await _start_on(second, port)
            back = await next_of(stream, Reconnected, timeout=5)
            assert back.attempt >= 2
            await wait_until(lambda: len(second.subscriptions()) == 4)
        finally:
            await stream.aclose()
            await second.stop()


async def _start_on(srv: ScriptedServer, port: int) -> None:
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/ws", srv._ws)
    srv.runner = web.AppRunner(app, shutdown_timeout=0.5)
    await srv.runner.setup()
    await web.TCPSite(srv.runner, "127.0.0.1", port).start()


async def test_pings_keep_the_connection_alive(server: ScriptedServer, master: str) -> None:
    async with aiohttp.ClientSession() as session:
        stream = HyperliquidStream(
            ws_url_for(server.url), user=master, session_factory=lambda: session, ping_interval_s=0.05
        )
        await stream.start()
        try:
            await wait_until(lambda: sum(1 for m in server.ws_messages if m.get("method") == "ping") >= 3)
            assert stream.connects == 1
        finally:
            await stream.aclose()


async def test_silent_server_counts_as_dead(master: str) -> None:
    """A server that accepts but never answers (not even pong) is dropped after the idle timeout."""
    from aiohttp import web

    async def mute(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", mute)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    async with aiohttp.ClientSession() as session:
        stream = HyperliquidStream(
            f"ws://127.0.0.1:{port}/ws",
            user=master,
            session_factory=lambda: session,
            ping_interval_s=0.05,
            idle_timeout_s=0.2,
            backoff_base_s=0.01,
        )
        await stream.start()
        try:
            dropped = await next_of(stream, Disconnected)
            assert "no message" in dropped.reason
            await next_of(stream, Reconnected)
        finally:
            await stream.aclose()
            await runner.cleanup()


async def test_close_cancels_the_reader_and_ends_iteration(bridge: HyperliquidBridge) -> None:
    stream = bridge.stream()
    await stream.start()
    await asyncio.wait_for(stream.connected.wait(), 3)
    task = stream._task
    assert task is not None and task.get_name().startswith("hl-ws:")
    await stream.aclose()
    assert task.done()
    assert [event async for event in stream] == []
    with pytest.raises(RuntimeError, match="closed"):
        await stream.start()


async def test_bridge_close_closes_its_streams(server: ScriptedServer, agent: Any, master: str) -> None:
    b = HyperliquidBridge(network="paper", base_url=server.url, master=master, signer=agent)
    stream = b.stream()
    await stream.start()
    await asyncio.wait_for(stream.connected.wait(), 3)
    await b.aclose()
    assert stream.closed
    await wait_until(lambda: not server.sockets)


async def test_a_dead_reader_is_logged_and_raises_on_iteration(master: str, caplog: pytest.LogCaptureFixture) -> None:
    def broken_factory() -> aiohttp.ClientSession:
        raise RuntimeError("boom")

    stream = HyperliquidStream("ws://127.0.0.1:9/ws", user=master, session_factory=broken_factory)
    with caplog.at_level(logging.ERROR):
        await stream.start()
        with pytest.raises(ExchangeUnavailableError, match="boom"):
            async for _ in stream:
                pass
    assert "websocket reader hl-ws:" in caplog.text and "died" in caplog.text
    await stream.aclose()


async def test_a_hung_handshake_times_out_and_is_retried(master: str) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept TCP, never answer the HTTP upgrade

    tcp = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as session:
        stream = HyperliquidStream(
            f"ws://127.0.0.1:{port}/ws",
            user=master,
            session_factory=lambda: session,
            connect_timeout_s=0.1,
            backoff_base_s=0.01,
            backoff_max_s=0.02,
        )
        await stream.start()
        try:
            await wait_until(lambda: len(accepted) >= 3)
            assert stream.connects == 0 and not stream.connected.is_set()
        finally:
            await stream.aclose()
            for writer in accepted:
                writer.close()
            tcp.close()
            await tcp.wait_closed()
