"""A real `revagent daemon` with a test alert handler: records each run in Redis, optionally slow.

    python -m tests.alerts_runtime.daemon_worker SECONDS

The handler pushes `<trigger key>|<redelivered>` to `test:started`, sleeps SECONDS, then pushes the key
to `test:completed`. Used by the crash (SIGKILL) and drain (SIGTERM) tests.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from revagent.alerts import service as service_module
from revagent.alerts.runner import TurnOutcome, thread_id_for
from revagent.config import load_config
from revagent.daemon import run_daemon


def main(delay: float) -> None:
    original = service_module.AlertService.for_session.__func__  # type: ignore[attr-defined]

    def for_session(cls: Any, session: Any, **kw: Any) -> Any:
        async def handler(item: Any) -> TurnOutcome:
            redis = session.store.redis
            await redis.rpush("test:started", f"{item.event.trigger_key}|{item.redelivered}")
            await asyncio.sleep(delay)
            await redis.rpush("test:completed", item.event.trigger_key)
            return TurnOutcome(thread_id=thread_id_for(item.event), summary="completed by the test handler")

        return original(cls, session, handler=handler, **kw)

    service_module.AlertService.for_session = classmethod(for_session)  # type: ignore[method-assign,assignment]
    cfg = load_config()
    asyncio.run(run_daemon(cfg, cfg.wallet(), log_json=True))


if __name__ == "__main__":
    main(float(sys.argv[1]))
