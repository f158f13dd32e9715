"""`revagent trade/positions/orders/risk` run for real in subprocesses against a paper venue, first
under a one-shot lease (no owner), then through a running `revagent daemon` (the owner).

Every assertion about orders and positions is also checked on the exchange itself (the venue's
`/info`), not only in what the CLI prints."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.cli_trading.conftest import BTC, ETH, Daemon, ThreadedSim, master_of, ok_json, rv


def _triggers(user: str, venue: ThreadedSim) -> list[tuple[str, Decimal, Decimal]]:
    """(coin, trigger price, size) of every trigger order resting on the exchange."""
    return sorted((o["coin"], Decimal(o["triggerPx"]), Decimal(o["sz"])) for o in venue.open_orders(user)
                  if o.get("isTrigger"))


def test_open_stop_close_flatten_under_a_one_shot_lease(paper: ThreadedSim) -> None:
    master = master_of()
    opened = ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "20", "--yes")
    assert opened["status"] == "done", opened
    assert Decimal(opened["verdict"]["stop_px"]) == BTC * Decimal("0.98")  # --stop 2% from the mark
    size = Decimal(opened["verdict"]["size"])
    assert size > 0
    assert Decimal(opened["verdict"]["risk_usd"]) <= 20
    assert paper.positions(master) == {"BTC": size}
    assert _triggers(master, paper) == [("BTC", Decimal(58800), size)]

    positions = ok_json("positions")["positions"]
    assert [(p["market"], Decimal(p["size"]), Decimal(p["stop_px"])) for p in positions] == \
        [("BTC", size, Decimal(58800))]
    assert positions[0]["trade_id"] == opened["trade_id"]
    orders = ok_json("orders")
    assert orders["entries"] == []
    assert [(t["market"], t["kind"], Decimal(t["trigger_px"])) for t in orders["triggers"]] == \
        [("BTC", "stop", Decimal(58800))]

    moved = ok_json("trade", "stop", "BTC", "59000")
    assert moved["status"] == "done", moved
    assert _triggers(master, paper) == [("BTC", Decimal(59000), size)]

    half = ok_json("trade", "close", "BTC", "--fraction", "0.5", "--yes")
    assert half["status"] == "done", half
    assert paper.positions(master) == {"BTC": size / 2}

    flat = ok_json("trade", "flatten", "--yes")
    assert flat["ok"] is True
    assert [(r["kind"], r["market"], r["status"]) for r in flat["results"]] == [("close", "BTC", "done")]
    assert paper.positions(master) == {}
    assert ok_json("positions")["positions"] == []


def test_preview_without_yes_asks_and_the_answer_comes_from_stdin(paper: ThreadedSim) -> None:
    master = master_of()
    declined = rv("trade", "open", "ETH", "short", "--stop", "2%", "--risk", "10", input="n\n")
    assert declined.returncode == 11, declined.stderr  # declined (README exit codes)
    for label in ("size", "notional", "risk $", "fees $", "leverage"):
        assert label in declined.stdout
    assert "send this order?" in declined.stdout
    assert paper.positions(master) == {}

    accepted = rv("trade", "open", "ETH", "short", "--stop", "2%", "--risk", "10", input="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "done" in accepted.stdout
    (size,) = paper.positions(master).values()
    assert size < 0
    assert _triggers(master, paper) == [("ETH", ETH * Decimal("1.02"), -size)]  # a short's stop is above


def test_risk_check_refusal_exits_6_with_every_reason(paper: ThreadedSim) -> None:
    refused = rv("risk", "check", "BTC", "long", "--stop", "50%", "--risk", "100000", "--json")
    assert refused.returncode == 6, refused.stderr
    verdict = json.loads(refused.stdout)
    codes = {r["code"] for r in verdict["reasons"]}
    assert {"risk_per_trade", "order_notional", "portfolio_risk", "margin"} <= codes
    text = rv("risk", "check", "BTC", "long", "--stop", "50%", "--risk", "100000")
    assert text.returncode == 6
    flat = " ".join(text.stdout.split())  # rich wraps long lines
    assert "refused" in flat
    for reason in verdict["reasons"]:
        assert f"({reason['code']})" in flat
    approved = ok_json("risk", "check", "BTC", "long", "--stop", "2%", "--risk", "10")
    assert approved["approved"] is True and approved["reasons"] == []


def test_risk_set_bad_value_is_exit_2_and_changes_nothing(paper: ThreadedSim) -> None:
    before = ok_json("risk", "show")["settings"]
    bad = rv("risk", "set", "max_leverage", "banana")
    assert bad.returncode == 2
    assert "max_leverage" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    unknown = rv("risk", "set", "max_levrage", "3", "--json")
    assert unknown.returncode == 2
    assert "error" in json.loads(unknown.stdout)
    assert ok_json("risk", "show")["settings"] == before
    changed = ok_json("risk", "set", "max_leverage", "3")
    assert changed == {"key": "max_leverage", "value": "3"}
    assert ok_json("risk", "show")["settings"]["max_leverage"] == {"value": "3", "source": "runtime"}


def test_halt_refuses_new_trades_until_resume(paper: ThreadedSim) -> None:
    master = master_of()
    assert ok_json("risk", "halt") == {"halted": True, "by": "human"}
    refused = rv("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes")
    assert refused.returncode == 6
    assert "halted" in refused.stdout
    assert paper.positions(master) == {}
    assert ok_json("risk", "resume", "--yes") == {"halted": False}
    assert ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes")["status"] == "done"
    assert set(paper.positions(master)) == {"BTC"}


def test_the_same_commands_through_a_running_daemon(paper: ThreadedSim, daemon: Daemon) -> None:
    master = master_of()
    assert ok_json("ping")["via"] == "owner"
    opened = ok_json("trade", "open", "ETH", "long", "--stop", "2%", "--risk", "15", "--yes")
    assert opened["status"] == "done", opened
    size = Decimal(opened["verdict"]["size"])
    assert paper.positions(master) == {"ETH": size}
    assert [p["market"] for p in ok_json("positions")["positions"]] == ["ETH"]
    assert ok_json("trade", "stop", "ETH", "1%")["status"] == "done"
    assert _triggers(master, paper) == [("ETH", ETH * Decimal("0.99"), size)]
    assert [t["kind"] for t in ok_json("orders")["triggers"]] == ["stop"]

    ok_json("risk", "halt")
    refused = rv("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes", "--json")
    assert refused.returncode == 6
    assert [r["code"] for r in json.loads(refused.stdout)["reasons"]] == ["halted"]
    checked = rv("risk", "check", "BTC", "long", "--stop", "2%", "--risk", "10")
    assert checked.returncode == 6
    ok_json("risk", "resume", "--yes")

    flat = ok_json("trade", "flatten", "--yes")
    assert flat["ok"] is True
    assert paper.positions(master) == {}
    # the owner kept the lease all along: no command ran under a one-shot lease of its own
    status = ok_json("status")
    assert status["owner"]["pid"] == daemon.proc.pid
    assert daemon.stop() == 0


def test_limit_entry_rests_and_trade_cancel_removes_it_with_its_stop(paper: ThreadedSim) -> None:
    master = master_of()
    opened = ok_json("trade", "open", "BTC", "long", "--entry", "1%", "--stop", "3%", "--risk", "10", "--yes")
    assert opened["status"] == "done", opened
    assert Decimal(opened["verdict"]["price"]) == BTC * Decimal("0.99")  # a long's limit entry is below the mark
    assert paper.positions(master) == {}
    (entry,) = ok_json("orders")["entries"]
    assert (entry["market"], entry["side"], Decimal(entry["limit_px"])) == ("BTC", "long", Decimal(59400))
    assert Decimal(entry["risk_usd"]) <= 10
    assert len(paper.open_orders(master)) == 2  # the entry and its stop, parked until the entry fills

    missing = rv("trade", "cancel", "999999")
    assert missing.returncode == 3, missing.stderr
    assert rv("trade", "cancel", "not-an-oid").returncode == 2
    cancelled = ok_json("trade", "cancel", str(entry["oid"]))
    assert cancelled["status"] == "done", cancelled
    assert paper.open_orders(master) == []
    assert ok_json("orders") == {"entries": [], "triggers": []}


def test_json_without_yes_keeps_stdout_one_json_document(paper: ThreadedSim) -> None:
    out = rv("trade", "open", "ETH", "short", "--stop", "2%", "--risk", "10", "--json", input="y\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "done"  # the preview and the question went to stderr
    assert "send this order?" in out.stderr and "notional" in out.stderr
    declined = rv("trade", "close", "ETH", "--json", input="n\n")
    assert declined.returncode == 11 and declined.stdout.strip() == ""  # click echoes one space there


def test_a_trade_opened_after_a_full_close_is_a_new_trade(paper: ThreadedSim) -> None:
    first = ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes")
    assert ok_json("trade", "close", "BTC", "--yes")["status"] == "done"
    second = ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes")
    assert second["status"] == "done"
    assert second["trade_id"] != first["trade_id"]


def test_a_full_close_leaves_no_stop_behind(paper: ThreadedSim) -> None:
    master = master_of()
    assert ok_json("trade", "open", "BTC", "long", "--stop", "2%", "--risk", "10", "--yes")["status"] == "done"
    assert ok_json("trade", "close", "BTC", "--yes")["status"] == "done"
    assert paper.positions(master) == {}
    assert _triggers(master, paper) == []
