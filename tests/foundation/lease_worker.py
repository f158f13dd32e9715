"""A process that holds a wallet's lease and performs fenced side effects, for lease tests.

usage: python lease_worker.py REDIS_URL SESSION_ID TTL_SECONDS EFFECTS_KEY
Prints ACQUIRED, BUSY <holder> or LOST <reason> on stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

from revagent.errors import LeaseLostError, OwnerBusyError
from revagent.models import SessionId
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.lease import Lease


async def main(url: str, sid: str, ttl: float, effects_key: str) -> int:
    redis = await connect(url)
    lease = Lease(redis, Keyspace(SessionId.parse(sid)), ttl=timedelta(seconds=ttl), role="worker")
    try:
        await lease.acquire()
    except OwnerBusyError as exc:
        print("BUSY", exc.message, flush=True)
        return 7
    print("ACQUIRED", flush=True)
    lost: list[str] = []
    renew = asyncio.create_task(lease.keep_renewed(lambda reason: lost.append(reason)), name="worker:lease")
    pid = str(os.getpid())
    try:
        while not lost:
            await lease.fenced(lambda pipe: pipe.rpush(effects_key, pid))
            await asyncio.sleep(0.02)
        print("LOST", lost[0], flush=True)
    except LeaseLostError as exc:
        print("LOST", exc.message, flush=True)
    finally:
        renew.cancel()
        await redis.aclose()
    return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4])))
