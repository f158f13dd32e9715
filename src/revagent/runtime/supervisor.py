"""`revagent daemon --all` (or `--wallet A --wallet B`): one daemon *process* per wallet.

Never two wallets on one event loop: each wallet runs `revagent daemon --wallet NAME --supervised`
as its own process, started with the minimal environment of `childenv` (PATH, HOME, the locale,
the Python and desktop groups). What it needs beyond that, its `REVAGENT_*` settings and the
secrets its config names by env var (`agent_key_env`, `llm.api_key_env`), is written once to its
stdin as JSON and never put in its environment (`/proc/PID/environ`). A key file is passed as its
path in the config, as always.

Exit codes of a child (README, "Conventions"), and what the supervisor does:

- 0 (asked to stop: someone sent it SIGTERM), 2 (usage), 4 (config), 7 (another process owns the
  wallet): not restarted. Retrying does not help, or the stop was wanted.
- 1 (a task died), 5 (Redis unreachable at start-up), 10 (the lease was lost: another process
  took the wallet, or Redis forgot it; a restart takes it again or exits 7), killed by a signal,
  any other code: restarted after a backoff of 1 s, doubling to 60 s; a child that ran 60 s
  resets it. The same policy as `contrib/revagent@.service`.

SIGTERM or SIGINT to the supervisor: SIGTERM is forwarded to every child (in start order; each
drains its running alert turn, up to 30 s, in parallel), the supervisor waits up to
`STOP_SECONDS`, SIGKILLs what is left, and exits 0. It exits by itself when no child is left to
run: 0 if they all stopped with 0, else the first stop code (4 or 7).

Each child's state (pid, start time, restarts, last exit) is written to the store under
`rev:host:{<egress>}:supervisor`, which `revagent server status` reads with each wallet's lease
holder, sync phase, trading state and last alert.

Hyperliquid caps user-specific websocket subscriptions at 10 users per IP: the supervisor refuses
to run more than `MAX_USERS_PER_IP` distinct master addresses of one non-paper network on one
egress address (`[rate] egress`, default this host), and says how to shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from revagent.childenv import child_env
from revagent.errors import ConfigError

if TYPE_CHECKING:
    from revagent.config import Config, ResolvedWallet
    from revagent.store.connection import AnyRedis

log = logging.getLogger("revagent.supervisor")

STOP_CODES = {0: "asked to stop", 2: "usage error", 4: "config error", 7: "owned by another process"}
"""Child exit codes after which it is not restarted (any other code, or a signal, restarts it)."""
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 60.0
STABLE_AFTER = 60.0
"""A child that ran this long before it exited restarts after `BACKOFF_INITIAL` again."""
STOP_SECONDS = 45.0
"""How long a SIGTERM waits for the children (a daemon drains its alert turn up to 30 s) before SIGKILL."""
MAX_USERS_PER_IP = 10
"""Hyperliquid: user-specific websocket subscriptions for at most 10 distinct users per IP."""


def egress_of(config: Config) -> str:
    """The egress address the wallets' requests leave from: `[rate] egress`, else this host's name."""
    return config.rate.egress or socket.gethostname()


def check_users_per_ip(config: Config, wallets: Sequence[ResolvedWallet], *,
                       running: Mapping[str, str] | None = None) -> None:
    """Refuse (ConfigError) more than `MAX_USERS_PER_IP` distinct users of one non-paper network on
    this egress address. `running`: any key -> "network:address" of other sessions whose owners
    already run on this address (counted too)."""
    users: dict[str, set[str]] = {}
    for w in wallets:
        if w.network != "paper":
            users.setdefault(w.network, set()).add(w.master_address.lower())
    for ident in (running or {}).values():
        network, _, address = ident.partition(":")
        if network != "paper":
            users.setdefault(network, set()).add(address.lower())
    for network, addresses in sorted(users.items()):
        if len(addresses) > MAX_USERS_PER_IP:
            raise ConfigError(
                f"{len(addresses)} {network} users on one egress address ({egress_of(config)}): Hyperliquid "
                f"serves user-specific websocket subscriptions for at most {MAX_USERS_PER_IP} users per IP. "
                f"Shard them: run at most {MAX_USERS_PER_IP} per host (`revagent daemon --wallet A --wallet B ...` "
                "on each), or give this host another egress address and set `[rate] egress` to it",
                code="too_many_users_per_ip")


def supervisor_key(egress: str) -> str:
    from revagent.store.keys import supervisor_key as key

    return key(egress)


@dataclass
class Child:
    wallet: str
    ident: str
    proc: asyncio.subprocess.Process | None = None
    state: str = "starting"  # starting | running | backoff | stopped | failed
    started_at: float = 0.0  # wall clock of the current (or last) process
    restarts: int = 0
    failures: int = 0  # consecutive quick failures (the backoff exponent)
    last_exit: int | None = None
    last_reason: str = ""
    next_start: float = 0.0

    def doc(self, supervisor_pid: int) -> dict[str, Any]:
        return {"wallet": self.wallet, "session": self.ident, "pid": self.proc.pid if self.proc else None,
                "state": self.state, "started_at": self.started_at, "restarts": self.restarts,
                "last_exit": self.last_exit, "last_reason": self.last_reason, "next_start": self.next_start,
                "supervisor_pid": supervisor_pid}


@dataclass
class Supervisor:
    config: Config
    wallets: Sequence[ResolvedWallet]
    idents: Mapping[str, str]
    """wallet name -> its session id ("network:address")."""
    child_environ: Mapping[str, str]
    """What each child gets on its stdin: its REVAGENT_* settings and the secrets its config names."""
    log_json: bool = False
    backoff_initial: float = BACKOFF_INITIAL
    backoff_max: float = BACKOFF_MAX
    stable_after: float = STABLE_AFTER
    stop_seconds: float = STOP_SECONDS
    redis: AnyRedis | None = None
    children: dict[str, Child] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def argv(self, wallet: str) -> list[str]:
        args = [sys.executable, "-m", "revagent", "daemon", "--wallet", wallet, "--supervised"]
        return args + (["--log-json"] if self.log_json else [])

    def stdin_doc(self, wallet: ResolvedWallet) -> bytes:
        names = {wallet.agent_key_env, wallet.llm.api_key_env} - {""}
        env = {k: v for k, v in self.child_environ.items() if k.startswith("REVAGENT_") or k in names}
        return json.dumps({"environ": env}).encode()

    async def _spawn(self, child: Child, wallet: ResolvedWallet) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(child.wallet), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            env=child_env(python=True, desktop=True), start_new_session=True, preexec_fn=_die_with_parent)
        assert proc.stdin is not None
        proc.stdin.write(self.stdin_doc(wallet))
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        proc.stdin.close()
        child.proc, child.state, child.started_at = proc, "running", time.time()
        log.info("started the daemon of %s (pid %d)", child.wallet, proc.pid)
        self._changed.set()

    async def _watch(self, wallet: ResolvedWallet) -> None:
        """Run one wallet's daemon until it stops for good or the supervisor stops."""
        child = self.children[wallet.name]
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                await self._spawn(child, wallet)
            except OSError as exc:  # the interpreter cannot be started: nothing to supervise
                child.state, child.last_reason, child.last_exit = "failed", f"cannot start: {exc}", 1
                log.error("cannot start the daemon of %s: %s", wallet.name, exc)
                break
            assert child.proc is not None
            began = loop.time()
            code = await child.proc.wait()
            ran = loop.time() - began
            child.last_exit = code
            if self._stopping.is_set():
                child.state, child.last_reason = "stopped", "the supervisor stopped"
                break
            if code in STOP_CODES:
                child.state = "stopped" if code == 0 else "failed"
                child.last_reason = f"exit {code}: {STOP_CODES[code]}; not restarted"
                log.warning("the daemon of %s exited %d (%s): not restarting it", wallet.name, code, STOP_CODES[code])
                self._changed.set()
                break
            child.failures = 1 if ran >= self.stable_after else child.failures + 1
            delay = min(self.backoff_initial * 2 ** (child.failures - 1), self.backoff_max)
            why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            child.state, child.last_reason = "backoff", f"{why} after {ran:.1f}s; restarting in {delay:.1f}s"
            child.next_start = time.time() + delay
            log.warning("the daemon of %s %s", wallet.name, child.last_reason)
            self._changed.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                child.state, child.last_reason = "stopped", "the supervisor stopped"
                break
            child.restarts += 1
        self._changed.set()

    async def _publish(self) -> None:
        """Write every child's state to the store on each change (and every 5 s); Redis down: skipped."""
        if self.redis is None:
            return
        key = supervisor_key(egress_of(self.config))
        me = os.getpid()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._changed.wait()
            self._changed.clear()
            docs = {name: json.dumps(c.doc(me)) for name, c in self.children.items()}
            try:
                await self.redis.hset(key, mapping=docs)
            except Exception as exc:  # the supervision never depends on Redis
                log.warning("could not publish the supervisor's state: %s", exc)

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping %d daemon(s)", sum(c.proc is not None and c.proc.returncode is None
                                                   for c in self.children.values()))
        self._stopping.set()
        for child in self.children.values():  # in start order
            if child.proc is not None and child.proc.returncode is None:
                try:
                    child.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for w in self.wallets:
            self.children[w.name] = Child(w.name, self.idents[w.name])
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        publisher = loop.create_task(self._publish(), name="supervisor:publish")
        watchers = [loop.create_task(self._watch(w), name=f"supervisor:{w.name}") for w in self.wallets]
        stop_wait = loop.create_task(self._stopping.wait(), name="supervisor:stopping")
        try:
            pending: set[asyncio.Task[Any]] = set(watchers)
            while pending:
                done, pending = await asyncio.wait(pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stop_wait)
                if stop_wait in done:
                    break
            if self._stopping.is_set():
                await self._reap(watchers)
        finally:
            stop_wait.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            for t in watchers:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            await self._publish_final()
        if self._stopping.is_set():
            return 0
        codes = [c.last_exit for c in self.children.values() if c.last_exit]
        return codes[0] if codes else 0

    async def _reap(self, watchers: list[asyncio.Task[None]]) -> None:
        """After SIGTERM went out: wait up to `stop_seconds`, then SIGKILL whatever is left."""
        _, late = await asyncio.wait(watchers, timeout=self.stop_seconds)
        if not late:
            return
        for child in self.children.values():
            if child.proc is not None and child.proc.returncode is None:
                log.warning("the daemon of %s did not stop in %.0fs: SIGKILL", child.wallet, self.stop_seconds)
                try:
                    child.proc.kill()
                except ProcessLookupError:
                    pass
        await asyncio.wait(late, timeout=10.0)

    async def _publish_final(self) -> None:
        if self.redis is None:
            return
        me = os.getpid()
        docs = {name: json.dumps(c.doc(me)) for name, c in self.children.items()}
        try:
            await self.redis.hset(supervisor_key(egress_of(self.config)), mapping=docs)
        except Exception as exc:
            log.warning("could not publish the supervisor's final state: %s", exc)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it (its orderly stop) if the supervisor dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the child outlives a killed supervisor
        pass


def select_wallets(config: Config, names: Sequence[str], *, all_wallets: bool) -> list[ResolvedWallet]:
    """The wallets to supervise: every configured one (`--all`) or the named ones (each once)."""
    if all_wallets and names:
        from revagent.errors import UsageError

        raise UsageError("give --all or --wallet NAME (repeatable), not both")
    chosen = config.wallet_names() if all_wallets else list(dict.fromkeys(names))
    return [config.wallet(n) for n in chosen]


async def run_supervisor(config: Config, wallets: Sequence[ResolvedWallet], *, log_json: bool,
                         environ: Mapping[str, str] | None = None) -> int:
    """Check the per-IP limit, bring up the shared services (Redis, the paper venue) once, then supervise."""
    from revagent.runtime.daemon import setup_logging
    from revagent.store.connection import open_redis, resolve_session_id

    check_users_per_ip(config, wallets)
    idents = {w.name: str(await resolve_session_id(config, w)) for w in wallets}
    redis = await open_redis(config)  # the embedded Redis is started here once, not by 50 children at once
    try:
        check_users_per_ip(config, wallets, running=await _other_users_here(redis, set(idents.values())))
        setup_logging(config.log_level, log_json=log_json, log_file=config.data_path / "logs" / "supervisor.log")
        paper = [w for w in wallets if w.network == "paper"]
        if paper:
            from revagent.venue import venue_url

            await venue_url(config, paper[0])  # the local paper venue, started once under its lock
        sup = Supervisor(config, wallets, idents, dict(os.environ if environ is None else environ),
                         log_json=log_json, redis=redis)
        log.info("supervising %d wallet(s): %s", len(wallets), ", ".join(w.name for w in wallets))
        return await sup.run()
    finally:
        await redis.aclose()


async def _other_users_here(redis: AnyRedis, mine: set[str]) -> dict[str, str]:
    """Sessions not supervised here whose live owner (a daemon or a TUI: each subscribes to its user's
    websocket feeds) runs on this host: they count against the same IP's 10 users. Owners on other
    hosts behind one egress address are not seen (run one supervisor per address, or shard)."""
    from revagent.store.lease import live_owners

    here = socket.gethostname()
    return {o.session: o.session for o in await live_owners(redis)
            if o.session not in mine and o.holder.host == here and o.holder.role != "cli"}


def read_supervised_environ(stream: Any = None) -> dict[str, str]:
    """In a supervised child: the settings and secrets its supervisor wrote to stdin (one JSON doc)."""
    raw = (stream or sys.stdin).read()
    try:
        doc = json.loads(raw or "{}")
        env = doc.get("environ", {})
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError("environ is not an object of strings")
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"--supervised: stdin is not the supervisor's JSON document ({exc})") from None
    return env
