"""`revagent doctor` for real against a paper venue: the happy path (the probe order placed and
cancelled, under a one-shot lease and through the owner) and each exit code."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from revagent.config.keys import SecretKey, write_key_file
from tests.cli_trading.conftest import Daemon, ThreadedSim, ok_json, point_at, rv

CHECKS = ["config", "model", "agent key", "redis", "venue", "agent approval", "clock skew", "equity", "probe order"]


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    out = rv("doctor", *args, "--json", doctor=True, env=env)
    return out.returncode, json.loads(out.stdout)


def statuses(report: dict[str, object]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}  # type: ignore[attr-defined]


def check(report: dict[str, object], name: str) -> dict[str, object]:
    return next(c for c in report["checks"] if c["name"] == name)  # type: ignore[attr-defined]


@pytest.fixture
def venue(revagent_home: Path, live_clock_sim: ThreadedSim, monkeypatch: pytest.MonkeyPatch) -> ThreadedSim:
    point_at(monkeypatch, live_clock_sim)
    return live_clock_sim


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_on_paper_passes_and_the_probe_leaves_nothing_behind(venue: ThreadedSim) -> None:
    no_key = {"ANTHROPIC_API_KEY": ""}  # the model check warns: the offline provider answers
    code, first = doctor(env=no_key)
    assert code == 0, first
    assert list(statuses(first)) == CHECKS
    # a fresh paper agent is approved at its first trading command: here, the probe's
    assert statuses(first)["agent approval"] in ("warn", "pass")
    assert statuses(first)["model"] == "warn" and "no API key" in str(check(first, "model")["detail"])
    assert all(s == "pass" for n, s in statuses(first).items() if n not in ("agent approval", "model")), first
    probe = check(first, "probe order")["data"]
    assert probe["via"] == "local" and probe["ok"] is True  # type: ignore[index]

    code, second = doctor(env=no_key)
    assert code == 0
    assert {s for n, s in statuses(second).items() if n != "model"} == {"pass"}, second
    assert check(second, "agent key")["data"]["mode"] == "0600"  # type: ignore[index]
    master = ok_json("wallet", "show", "--no-check")["master_address"]
    assert venue.open_orders(master) == []  # every probe was cancelled
    text = rv("doctor", doctor=True)
    assert text.returncode == 0
    assert "ready to trade" in text.stdout


def test_doctor_probe_goes_through_the_owner(venue: ThreadedSim, tmp_path: Path) -> None:
    owner = Daemon(tmp_path / "daemon.log")
    try:
        owner.wait_owner()
        code, report = doctor()
        assert code == 0, report
        probe = check(report, "probe order")["data"]
        assert probe["via"] == "owner" and probe["ok"] is True  # type: ignore[index]
    finally:
        assert owner.stop() == 0


def test_probe_refused_by_the_exchange_exits_6(venue: ThreadedSim) -> None:
    assert doctor()[0] == 0  # approves the paper agent
    venue.call(lambda s: s.inject_http_fault(422, count=1, path="/exchange"))
    code, report = doctor()
    assert code == 6, report
    assert statuses(report)["probe order"] == "fail"
    assert "422" in str(check(report, "probe order")["detail"])


def test_bad_config_exits_4(venue: ThreadedSim, revagent_home: Path) -> None:
    (revagent_home / "config" / "config.toml").write_text("[risk\nmax_leverage = 3\n")
    code, report = doctor()
    assert code == 4
    assert statuses(report)["config"] == "fail"
    assert set(list(statuses(report).values())[1:]) == {"skip"}


def test_key_file_readable_by_others_exits_4(venue: ThreadedSim, revagent_home: Path) -> None:
    key_file = revagent_home / "agent.key"
    write_key_file(key_file, SecretKey.generate())
    key_file.chmod(0o644)
    (revagent_home / "config" / "config.toml").write_text(
        f'[wallets.p]\nnetwork = "paper"\nagent_key_file = "{key_file}"\n')
    code, report = doctor("--no-probe")
    assert code == 4
    detail = str(check(report, "agent key")["detail"])
    assert "chmod 600" in detail and "0644" in detail


def test_master_that_is_an_agent_is_the_classic_trap_exit_4(venue: ThreadedSim, revagent_home: Path) -> None:
    assert doctor()[0] == 0  # the default paper wallet's agent is now approved for its master
    agent_of_paper = ok_json("wallet", "show", "--no-check")["agent_address"]
    key_file = revagent_home / "other.key"
    write_key_file(key_file, SecretKey.generate())
    (revagent_home / "config" / "config.toml").write_text(
        '[wallets.paper]\nnetwork = "paper"\n\n'
        f'[wallets.trap]\nnetwork = "paper"\nmaster_address = "{agent_of_paper}"\nagent_key_file = "{key_file}"\n')
    code, report = doctor("--wallet", "trap")
    assert code == 4, report
    assert statuses(report)["agent approval"] == "fail"
    assert "itself an agent" in str(check(report, "agent approval")["detail"])
    assert statuses(report)["equity"] == "warn"  # and the account it queries is empty


def test_redis_unreachable_exits_5(venue: ThreadedSim) -> None:
    code, report = doctor(env={"REVAGENT_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert code == 5
    assert statuses(report)["redis"] == "fail"
    assert statuses(report)["probe order"] == "skip"


def test_venue_unreachable_exits_8(venue: ThreadedSim) -> None:
    code, report = doctor(env={"REVAGENT_PAPER__VENUE_URL": f"http://127.0.0.1:{free_port()}"})
    assert code == 8
    assert statuses(report)["venue"] == "fail"
    assert statuses(report)["probe order"] == "skip"


def test_exit_code_is_that_of_the_first_failure_in_priority_order() -> None:
    from revagent.errors import ExitCode
    from revagent.runtime.doctor import Check, DoctorReport

    report = DoctorReport("w", "mainnet", [Check("probe order", "skip", "not on mainnet"),
                                           Check("clock skew", "warn", "1.5 s")])
    assert report.exit_code == 0 and report.ok
    report.add(Check("probe order", "fail", "refused", ExitCode.REFUSED))
    assert report.exit_code == 6
    report.add(Check("venue", "fail", "down", ExitCode.EXCHANGE_UNREACHABLE))
    assert report.exit_code == 8
    report.add(Check("redis", "fail", "down", ExitCode.REDIS_UNREACHABLE))
    assert report.exit_code == 5
    report.add(Check("agent approval", "fail", "not approved"))
    assert report.exit_code == 4


def test_agent_key_from_an_env_var(venue: ThreadedSim, revagent_home: Path) -> None:
    (revagent_home / "config" / "config.toml").write_text(
        '[wallets.p]\nnetwork = "paper"\nagent_key_env = "REVAGENT_TEST_AGENT_KEY"\n')
    agent = SecretKey.generate()
    code, report = doctor("--no-probe", env={"REVAGENT_TEST_AGENT_KEY": agent.reveal()})
    assert code == 0, report
    assert check(report, "agent key")["detail"] == f"env REVAGENT_TEST_AGENT_KEY is set, agent {agent.address()}"
    assert statuses(report)["probe order"] == "skip"
    assert agent.reveal().removeprefix("0x") not in json.dumps(report)
    code, report = doctor("--no-probe", env={"REVAGENT_TEST_AGENT_KEY": ""})
    assert code == 4
    assert "is not set" in str(check(report, "agent key")["detail"])


def test_an_expired_agent_fails_with_exit_4(venue: ThreadedSim, revagent_home: Path) -> None:
    import asyncio
    import time

    from revagent.exchange.onboarding import approve_agent

    master, agent = SecretKey.generate(), SecretKey.generate()
    past_ms = int(time.time() * 1000) - 60_000
    asyncio.run(approve_agent(venue.url, master, agent.address(), f"old valid_until {past_ms}", is_mainnet=False))
    key_file = revagent_home / "agent.key"
    write_key_file(key_file, agent)
    (revagent_home / "config" / "config.toml").write_text(
        f'[wallets.old]\nnetwork = "paper"\nmaster_address = "{master.address()}"\nagent_key_file = "{key_file}"\n')
    code, report = doctor("--no-probe")
    assert code == 4, report
    assert "expired" in str(check(report, "agent approval")["detail"])


def test_probe_on_an_unknown_market_exits_3(venue: ThreadedSim) -> None:
    code, report = doctor("--market", "NOPE")
    assert code == 3, report
    assert "NOPE" in str(check(report, "probe order")["detail"])


def _journal_roles() -> list[tuple[str, str]]:
    import asyncio

    from revagent.config import load_config

    async def read() -> list[tuple[str, str]]:
        from revagent.runtime.session import open_redis, resolve_session_id
        from revagent.store.keys import Keyspace
        from revagent.store.orders import OrderJournal

        cfg = load_config()
        redis = await open_redis(cfg)
        try:
            records = await OrderJournal(redis, Keyspace(await resolve_session_id(cfg, cfg.wallet())), None).all()
            return sorted((r.role, r.status) for r in records)
        finally:
            await redis.aclose()

    return asyncio.run(read())


def test_the_probe_is_journalled_and_skipped_while_trading_is_halted(venue: ThreadedSim) -> None:
    """Issue 12 item 9: the probe goes through the gateway (journalled) and is skipped when halted."""
    code, report = doctor()
    assert code == 0, report
    assert ("probe", "cancelled") in _journal_roles()  # journalled, then cancelled
    master = ok_json("wallet", "show", "--no-check")["master_address"]
    assert rv("risk", "halt").returncode == 0
    before = _journal_roles()
    code, report = doctor()
    assert code == 0, report
    assert statuses(report)["probe order"] == "skip", report
    assert "halted" in str(check(report, "probe order")["detail"]).lower()
    assert _journal_roles() == before  # nothing sent
    assert venue.open_orders(master) == []
