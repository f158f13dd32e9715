"""A real `revagent daemon` with a test alert handler: records each run in Redis, optionally slow.

    python -m tests.alerts_runtime.daemon_worker SECONDS [order]

The handler pushes `<trigger key>|<redelivered>` to `test:started`; with `order` it then opens a BTC trade
through the gateway under the tool-call action of this alert (as an alert turn would) and pushes the
result to `test:orders`; it sleeps SECONDS, then pushes the key to `test:completed`. Used by the crash
(SIGKILL) and drain (SIGTERM) tests.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from revagent.alerts import service as service_module
from revagent.alerts.runner import TurnOutcome, thread_id_for
from revagent.config import load_config
from revagent.runtime.daemon import run_daemon


def main(delay: float, order: bool) -> None:
    original = service_module.AlertService.for_session.__func__  # type: ignore[attr-defined]

    def for_session(cls: Any, session: Any, **kw: Any) -> Any:
        async def handler(item: Any) -> TurnOutcome:
            redis = session.store.redis
            await redis.rpush("test:started", f"{item.event.trigger_key}|{item.redelivered}")
            if order:
                await place_order(session, item)
            await asyncio.sleep(delay)
            await redis.rpush("test:completed", item.event.trigger_key)
            return TurnOutcome(thread_id=thread_id_for(item.event), summary="completed by the test handler")

        kw.pop("handler", None)  # the test handler replaces whatever the session passes
        return original(cls, session, handler=handler, **kw)

    service_module.AlertService.for_session = classmethod(for_session)  # type: ignore[method-assign,assignment]
    cfg = load_config()
    asyncio.run(run_daemon(cfg, cfg.wallet(), log_json=True))


async def place_order(session: Any, item: Any) -> None:
    from decimal import Decimal

    from revagent.gateway import Action
    from revagent.risk import OpenTrade

    await session.start_trading()
    thread_id = thread_id_for(item.event)
    action = Action.tool(thread_id, f"call-1-{item.event.trigger_key}")  # the same call when resumed
    result = await session.gateway.submit(
        OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"), risk_usd=Decimal("20"), conviction=60,
                  target_px=Decimal("63000")),
        action)
    await session.store.redis.rpush("test:orders", f"{result.status}|{len(result.orders)}")
    if result.status != "done":
        await session.store.redis.rpush("test:errors", result.message)


if __name__ == "__main__":
    main(float(sys.argv[1]), len(sys.argv) > 2 and sys.argv[2] == "order")
