"""A planted canary key must never appear in logs, Redis, or anything the process prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis as sync_redis

CANARY = "0x" + "c0ffee" * 10 + "beef"  # 64 hex digits
CANARY_BARE = CANARY[2:]


def _dump_redis(url: str) -> str:
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    parts = []
    try:
        for key in client.scan_iter("*"):
            kind = client.type(key)
            parts.append(key)
            if kind == "string":
                parts.append(str(client.get(key)))
            elif kind == "hash":
                parts.append(json.dumps(client.hgetall(key)))
            elif kind == "list":
                parts.append(json.dumps(client.lrange(key, 0, -1)))
            elif kind == "set":
                parts.append(json.dumps(sorted(client.smembers(key))))
            elif kind == "zset":
                parts.append(json.dumps(client.zrange(key, 0, -1)))
            elif kind == "stream":
                parts.append(json.dumps(client.xrange(key)))
    finally:
        client.close()
    return "\n".join(parts)


def test_the_agent_key_never_leaks_into_logs_redis_or_output(revagent_home: Path, redis_url: str) -> None:
    (revagent_home / "config" / "config.toml").write_text(
        "log_level = 'debug'\n[wallets.canary]\nnetwork = 'testnet'\n"
        f"master_address = '0x{'ab' * 20}'\nagent_key_env = 'CANARY_AGENT_KEY'\n")
    env = {**os.environ, "CANARY_AGENT_KEY": CANARY}
    daemon = subprocess.Popen([sys.executable, "-m", "revagent", "daemon", "--log-json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = subprocess.run([sys.executable, "-m", "revagent", "status", "--json"], env=env,
                                capture_output=True, text=True, timeout=30)
            outputs += [st.stdout, st.stderr]
            if st.returncode == 0 and json.loads(st.stdout)["owner"]:
                break
            time.sleep(0.2)
        for args in (["ping", "--json", "--timeout", "30"], ["notes", "add", "canary check"],
                     ["wallet", "list", "--json"], ["config", "check", "--json"]):
            out = subprocess.run([sys.executable, "-m", "revagent", *args], env=env, capture_output=True,
                                 text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            outputs += [out.stdout, out.stderr]
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=20)
        print("\n".join(line for line in err.splitlines() if "attempt" not in line))  # shown on failure
    outputs += [out, err]
    assert "started as daemon" in err  # the daemon did log (at debug level), and we read it
    everything = "\n".join(outputs) + _dump_redis(redis_url)
    for f in (revagent_home / "data").rglob("*"):
        if f.is_file() and f.suffix in (".log", ".json", ".txt", ""):
            everything += f.read_text(errors="replace")
    assert CANARY_BARE not in everything.lower()
