"""`revagent doctor`: is this wallet ready to trade? Every check is pass, warn, fail (or skip when a
check it depends on failed), each with a one-line reason.

Checks, in order: the config parses and names the wallet; the model (`check_model`: its id, the
thinking and effort each thread kind sends, its price row, probed through the free token-counting
endpoint, which refuses a wrong id, key or parameter as a call would); the agent key's source (env var, or a key
file with mode 0600); Redis reachable and >= 6.2; the venue reachable; the agent approved for the
master and not expired (including the classic trap of a configured master that is itself an agent);
the clock's skew against the exchange; the account's equity; and, on paper and testnet, a probe
order: a far-off post-only (`Alo`) limit order placed and cancelled to prove the keys work.

The probe is a session command (`doctor.probe_order`, in `probe.py`, registered by the session): it
runs in the wallet's owner when a session owns the wallet, or under a one-shot lease otherwise, and
it checks the lease before each signed action. Its client order id is derived from the doctor run's
action id, so a retried probe reuses it and the exchange never holds two.

Exit code of a run (`DoctorReport.exit_code`): 0 when nothing failed; else that of the first failure
in this order: 4 config (including a model that refuses the probe, an unapproved agent or a badly
skewed clock), 5 Redis, 8 the exchange unreachable, 6 the exchange refused the probe.
"""

from __future__ import annotations

import asyncio
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from revagent.errors import ExitCode, RevagentError

if TYPE_CHECKING:
    from revagent.config import Config, ResolvedWallet
    from revagent.config.keys import SecretKey
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge

CheckStatus = Literal["pass", "warn", "fail", "skip"]

SKEW_WARN_MS = 1_000
SKEW_FAIL_MS = 30_000
"""Signed actions expire 60 s after their nonce (local ms): a skew near that makes them fail."""

_FAILURE_ORDER = (ExitCode.CONFIG, ExitCode.REDIS_UNREACHABLE, ExitCode.EXCHANGE_UNREACHABLE, ExitCode.REFUSED)


@dataclass(frozen=True)
class Check:
    """One line of the report. `exit_code` is what a failure of this check makes the run exit with."""

    name: str
    status: CheckStatus
    detail: str
    exit_code: ExitCode = ExitCode.CONFIG
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "status": self.status, "detail": self.detail}
        if self.data:
            doc["data"] = self.data
        return doc


@dataclass
class DoctorReport:
    wallet: str
    network: str
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def exit_code(self) -> int:
        """0, or the code of the first failure in the order config, Redis, exchange, refused; any other
        failure (the wallet's owner did not answer the probe: 7) gives its own code."""
        failed = [c.exit_code for c in self.checks if c.status == "fail"]
        for code in _FAILURE_ORDER:
            if code in failed:
                return int(code)
        return int(failed[0]) if failed else 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_json(self) -> dict[str, Any]:
        return {"wallet": self.wallet, "network": self.network, "ok": self.ok, "exit_code": self.exit_code,
                "checks": [c.as_json() for c in self.checks]}


# ------------------------------------------------------------------------------------- the run
@dataclass
class _Ctx:
    config: Config | None = None
    wallet: ResolvedWallet | None = None
    agent: SecretKey | None = None
    redis: Any = None
    bridge: HyperliquidBridge | None = None


async def run_doctor(config_path: Path | None, wallet_name: str | None, *, probe: bool = True,
                     probe_market: str = "BTC", action_id: str | None = None,
                     timeout_s: float = 30.0) -> DoctorReport:
    """Run every check for one wallet and return the report (never raises for a failed check).

    `action_id` seeds the probe's client order id (made once per doctor run when not given).
    Reads only, except the probe, which is sent as a session command (`PROBE_COMMAND`).
    """
    ctx = _Ctx()
    report = DoctorReport(wallet=wallet_name or "?", network="?")
    try:
        if not _check_config(report, ctx, config_path, wallet_name):
            return _skip_rest(report, "the config does not load")
        await _check_model(report, ctx, timeout_s=timeout_s)
        await _check_agent_key(report, ctx)
        redis_ok = await _check_redis(report, ctx)
        if ctx.agent is None:
            return _skip_rest(report, "no agent key")
        if not await _check_venue(report, ctx):
            return _skip_rest(report, "the venue is unreachable")
        await _check_approval(report, ctx)
        await _check_clock(report, ctx)
        await _check_equity(report, ctx)
        await _check_probe(report, ctx, probe=probe and redis_ok, redis_ok=redis_ok, market=probe_market,
                           action_id=action_id, timeout_s=timeout_s)
        return report
    finally:
        if ctx.bridge is not None:
            await ctx.bridge.aclose()
        if ctx.redis is not None:
            await ctx.redis.aclose()


_LATER = ("model", "agent key", "redis", "venue", "agent approval", "clock skew", "equity", "probe order")


def _skip_rest(report: DoctorReport, why: str) -> DoctorReport:
    done = {c.name for c in report.checks}
    for name in _LATER:
        if name not in done:
            report.add(Check(name, "skip", f"not checked: {why}"))
    return report


def _check_config(report: DoctorReport, ctx: _Ctx, config_path: Path | None, wallet_name: str | None) -> bool:
    from revagent.config import load_config
    from revagent.errors import ConfigError

    try:
        ctx.config = load_config(config_path)
        ctx.wallet = ctx.config.wallet(wallet_name)
    except ConfigError as exc:
        report.add(Check("config", "fail", exc.message.replace("\n", "; ")))
        return False
    report.wallet, report.network = ctx.wallet.name, ctx.wallet.network
    report.add(Check("config", "pass", f"{ctx.config.source}: wallet {ctx.wallet.name!r} on {ctx.wallet.network}",
                     data={"source": ctx.config.source}))
    return True


async def _check_model(report: DoctorReport, ctx: _Ctx, *, timeout_s: float) -> None:
    assert ctx.wallet is not None
    report.add(await check_model(ctx.wallet, timeout_s=timeout_s))


async def check_model(wallet: ResolvedWallet, *, env: dict[str, str] | None = None,
                      timeout_s: float = 30.0) -> Check:
    """The configured model (`[llm]`): its capability row (`capabilities.describe`: limits, thinking
    modes, price), the thinking and effort each thread kind sends, and a probe with exactly those
    parameters through the token-counting endpoint (free; it answers 400/401/404 as a call would).
    fail (exit 4): the model refused the probe (a wrong id, key or parameter: every alert would run
    offline); warn: no key (the offline provider answers), the model has no row (cost '?'), or the
    endpoint did not answer (transient: turns would fall back)."""
    import os

    from revagent.engine.providers.anthropic import AnthropicProvider
    from revagent.engine.providers.base import Message, ModelRequest, ProviderError
    from revagent.engine.providers.capabilities import capabilities_for, describe
    from revagent.engine.settings import EngineSettings

    llm = wallet.llm
    if llm.provider == "offline":
        return Check("model", "pass", "llm.provider = offline: the rule-based policy answers (no model)",
                     data={"provider": "offline"})
    settings = EngineSettings.from_wallet(wallet)
    plans = {kind: settings.model_plan(kind) for kind in ("chat", "alert")}
    data: dict[str, Any] = {
        "model": llm.model, "row": describe(llm.model),
        "thinking": {k: (dict(p.thinking) if p.thinking is not None else None) for k, p in plans.items()},
        "effort": {k: p.effort for k, p in plans.items()},
        "max_tokens": {k: p.max_tokens for k, p in plans.items()}}
    row = capabilities_for(llm.model)
    if row is not None and row.pricing is not None:
        p = row.pricing
        data["price"] = {"input": str(p.input), "output": str(p.output), "cache_write": str(p.cache_write),
                         "cache_read": str(p.cache_read)}
    modes = ", ".join(f"{k} thinking {(p.thinking or {}).get('type', 'default')}"
                      f"{f' effort {p.effort}' if p.effort else ''}" for k, p in plans.items())
    provider = AnthropicProvider.from_settings(llm, os.environ if env is None else env, max_retries=0)
    if not provider.has_key:
        return Check("model", "warn", f"no API key in ${llm.api_key_env}: the offline provider answers every turn "
                     f"({describe(llm.model)})", data=data)
    plan = plans["alert"]
    probe = ModelRequest(model=llm.model, max_tokens=plan.max_tokens, messages=(Message.user("ping"),),
                         thinking=plan.thinking, effort=plan.effort)
    try:
        counted: int | ProviderError = await asyncio.wait_for(provider.count_tokens(probe), timeout_s)
    except TimeoutError:
        counted = ProviderError("timeout", f"no answer within {timeout_s:.0f}s", True)
    finally:
        await provider.aclose()
    if isinstance(counted, ProviderError):
        data["error"] = {"kind": counted.kind, "status": counted.status, "message": counted.message}
        if counted.kind in ("auth", "bad_request"):
            return Check("model", "fail", f"{llm.model} refused the probe ({counted.kind}: {counted.message}); "
                         "alert turns would run on the offline policy: fix [llm]", data=data)
        return Check("model", "warn", f"{llm.model}: the endpoint did not answer ({counted.kind}: "
                     f"{counted.message}); turns would fall back", data=data)
    data["probe_input_tokens"] = counted
    if row is None:
        return Check("model", "warn", f"{llm.model} answers ({modes}) but has no capability row: cost shown as "
                     "'?'; budgets need llm.unknown_model_price", data=data)
    return Check("model", "pass", f"{llm.model} answers ({modes}); {describe(llm.model)}", data=data)


def describe_key_source(wallet: ResolvedWallet, data_dir: Path) -> tuple[str, Path | None]:
    """Where the wallet's agent key comes from, in words, and the key file (None for an env var)."""
    from revagent.config.keys import wallet_dir

    if wallet.agent_key_env:
        return f"env {wallet.agent_key_env}", None
    if wallet.agent_key_file:
        return f"file {wallet.agent_key_file}", Path(wallet.agent_key_file).expanduser()
    path = wallet_dir(data_dir, wallet.name) / "agent.key"
    return f"generated paper key {path}", path


def file_mode(path: Path) -> str | None:
    """The permission bits of `path` as four octal digits, or None if it does not exist."""
    try:
        return f"{stat.S_IMODE(path.stat().st_mode):04o}"
    except FileNotFoundError:
        return None


async def _check_agent_key(report: DoctorReport, ctx: _Ctx) -> None:
    from revagent.config.keys import agent_key
    from revagent.errors import ConfigError

    assert ctx.config is not None and ctx.wallet is not None
    source, path = describe_key_source(ctx.wallet, ctx.config.data_path)
    try:
        ctx.agent = await asyncio.to_thread(agent_key, ctx.wallet, ctx.config.data_path)
    except ConfigError as exc:
        report.add(Check("agent key", "fail", exc.message, data={"source": source}))
        return
    data: dict[str, Any] = {"source": source, "agent_address": ctx.agent.address()}
    if path is not None:
        data["mode"] = file_mode(path)
        detail = f"{source} (mode {data['mode']}), agent {data['agent_address']}"
    else:
        detail = f"{source} is set, agent {data['agent_address']}"
    report.add(Check("agent key", "pass", detail, data=data))


async def _check_redis(report: DoctorReport, ctx: _Ctx) -> bool:
    from revagent.store.connection import open_redis

    assert ctx.config is not None
    try:
        ctx.redis = await open_redis(ctx.config)
        info = await ctx.redis.info("server")
    except RevagentError as exc:
        report.add(Check("redis", "fail", exc.message, ExitCode.REDIS_UNREACHABLE))
        return False
    except Exception as exc:  # anything else from the server or the socket
        report.add(Check("redis", "fail", f"Redis is unreachable: {exc}", ExitCode.REDIS_UNREACHABLE))
        return False
    version = str(info.get("redis_version", "?"))
    where = ctx.config.redis.url or "embedded (data dir)"
    if "@" in where:
        where = where.split("://", 1)[0] + "://***@" + where.split("@", 1)[1]
    report.add(Check("redis", "pass", f"Redis {version} at {where}", ExitCode.REDIS_UNREACHABLE,
                     data={"version": version}))
    return True


async def _check_venue(report: DoctorReport, ctx: _Ctx) -> bool:
    from revagent.config.keys import master_address
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.exchange.hyperliquid.http import RetryPolicy
    from revagent.venue import venue_url

    assert ctx.config is not None and ctx.wallet is not None and ctx.agent is not None
    try:
        base_url = await venue_url(ctx.config, ctx.wallet)
        master = await asyncio.to_thread(master_address, ctx.wallet, ctx.config.data_path)
        budget = None
        if ctx.redis is not None:
            from revagent.store.rate_budget import budget_for

            rate = ctx.config.rate
            budget = budget_for(ctx.redis, network=ctx.wallet.network, base_url=base_url,
                                weight_per_minute=rate.weight_per_minute,
                                paper_weight_per_minute=rate.paper_weight_per_minute, chunk=rate.chunk,
                                egress=rate.egress)
        ctx.bridge = HyperliquidBridge(network=ctx.wallet.network, base_url=base_url, master=master,
                                       signer=ctx.agent.account(), budget=budget,
                                       policy=RetryPolicy(attempts=2, timeout_s=8.0, base_delay_s=0.2))
        started = time.perf_counter()
        meta = await ctx.bridge.meta()
        elapsed_ms = (time.perf_counter() - started) * 1000
    except RevagentError as exc:
        code = ExitCode.CONFIG if exc.exit_code == ExitCode.CONFIG else ExitCode.EXCHANGE_UNREACHABLE
        report.add(Check("venue", "fail", exc.message, code))
        return False
    except Exception as exc:  # the paper venue failed to start, or an unreadable answer
        report.add(Check("venue", "fail", f"the venue does not answer: {exc}", ExitCode.EXCHANGE_UNREACHABLE))
        return False
    prices = None
    if ctx.wallet.network == "paper":  # where the paper venue's market comes from, e.g. synthetic as a fallback
        from revagent.venue import paper_price_source

        prices = await paper_price_source(base_url)
    report.add(Check("venue", "pass", f"{base_url} answers ({len(meta.universe)} markets, {elapsed_ms:.0f} ms"
                     + (f"; {prices})" if prices else ")"),
                     ExitCode.EXCHANGE_UNREACHABLE, data={"url": base_url, "markets": len(meta.universe),
                                                          "latency_ms": round(elapsed_ms, 1), "prices": prices}))
    return True


async def _check_approval(report: DoctorReport, ctx: _Ctx) -> None:
    assert ctx.bridge is not None and ctx.wallet is not None
    try:
        check = await ctx.bridge.check_agent()
    except RevagentError as exc:
        report.add(Check("agent approval", "fail", exc.message, ExitCode.EXCHANGE_UNREACHABLE))
        return
    data: dict[str, Any] = {"master": check.master, "agent": check.agent, "agent_name": check.agent_name,
                            "valid_until_ms": check.valid_until_ms}
    if check.ok:
        until = ""
        if check.valid_until_ms:
            until = ", valid until " + time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime(check.valid_until_ms / 1000))
        name = f" ({check.agent_name})" if check.agent_name else ""
        report.add(Check("agent approval", "pass", f"agent {check.agent}{name} signs for {check.master}{until}",
                         data=data))
        return
    problem = check.problem or "the agent is not approved"
    if ctx.wallet.network == "paper" and "not approved by any account" in problem:
        report.add(Check("agent approval", "warn", f"{problem} (a paper agent is approved at its first trading "
                         "command; the probe below does that)", data=data))
        return
    hint = "" if "itself an agent" in problem else "; approve it with `revagent wallet new` or in Hyperliquid's UI"
    report.add(Check("agent approval", "fail", problem + hint, data=data))


async def _check_clock(report: DoctorReport, ctx: _Ctx) -> None:
    assert ctx.bridge is not None
    try:
        skew = await ctx.bridge.clock_skew_ms()
    except RevagentError as exc:
        report.add(Check("clock skew", "fail", exc.message, ExitCode.EXCHANGE_UNREACHABLE))
        return
    if skew is None:
        report.add(Check("clock skew", "warn", "the exchange did not report its time; skew unknown"))
        return
    data = {"skew_ms": skew}
    words = f"local clock {'ahead of' if skew >= 0 else 'behind'} the exchange by {abs(skew)} ms"
    if abs(skew) >= SKEW_FAIL_MS:
        report.add(Check("clock skew", "fail", f"{words}: signed actions (nonces, 60 s expiry) will fail; "
                         "sync the clock (NTP)", data=data))
    elif abs(skew) >= SKEW_WARN_MS:
        report.add(Check("clock skew", "warn", f"{words}: sync the clock (NTP)", data=data))
    else:
        report.add(Check("clock skew", "pass", words, data=data))


async def _check_equity(report: DoctorReport, ctx: _Ctx) -> None:
    assert ctx.bridge is not None
    try:
        state = await ctx.bridge.account_state()
    except RevagentError as exc:
        report.add(Check("equity", "fail", exc.message, ExitCode.EXCHANGE_UNREACHABLE))
        return
    equity = state.margin_summary.account_value
    data = {"equity_usd": str(equity), "withdrawable_usd": str(state.withdrawable),
            "positions": len(state.positions)}
    if equity <= 0 and not state.positions:
        report.add(Check("equity", "warn", f"the account {ctx.bridge.master} is empty (equity 0): fund it, or "
                         "check that master_address is the master account and not an agent", data=data))
        return
    report.add(Check("equity", "pass", f"equity {equity} USD, withdrawable {state.withdrawable} USD, "
                     f"{len(state.positions)} position(s)", data=data))


async def _check_probe(report: DoctorReport, ctx: _Ctx, *, probe: bool, redis_ok: bool, market: str,
                       action_id: str | None, timeout_s: float) -> None:
    from revagent.runtime.probe import PROBE_COMMAND
    from revagent.runtime.remote import CommandFailedError, call_once
    from revagent.store.commands import new_command_id

    assert ctx.config is not None and ctx.wallet is not None
    if ctx.wallet.network == "mainnet":
        report.add(Check("probe order", "skip", "not on mainnet (paper and testnet only)"))
        return
    if not redis_ok:
        report.add(Check("probe order", "skip", "needs Redis (it runs as a session command under the lease)"))
        return
    if not probe:
        report.add(Check("probe order", "skip", "skipped (--no-probe)"))
        return
    args = {"action_id": action_id or new_command_id(), "market": market}
    try:
        result, via = await call_once(ctx.config, ctx.wallet, PROBE_COMMAND, args, timeout=timeout_s)
    except CommandFailedError as exc:  # the probe raised in the session: its code (3 for an unknown market...)
        code = ExitCode(int(exc.exit_code)) if int(exc.exit_code) in set(ExitCode) else ExitCode.REFUSED
        report.add(Check("probe order", "fail", exc.message, code))
        return
    except RevagentError as exc:  # the owner did not answer (7), the venue went away (8), ...
        report.add(Check("probe order", "fail", exc.message, ExitCode(int(exc.exit_code))))
        return
    where = "through the wallet's owner" if via == "owner" else "under a one-shot lease"
    data = {**result, "via": via}
    if result.get("skipped"):
        report.add(Check("probe order", "skip", f"skipped: {result['message']}", data=data))
    elif result.get("ok"):
        report.add(Check("probe order", "pass", f"placed and cancelled a {result['market']} buy of {result['size']} "
                         f"at {result['price']} {where} ({result['round_trip_ms']} ms)", ExitCode.REFUSED, data=data))
    else:
        report.add(Check("probe order", "fail", f"the exchange refused the probe {where}: {result['message']}",
                         ExitCode.REFUSED, data=data))
