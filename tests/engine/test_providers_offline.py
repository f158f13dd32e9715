"""The offline provider (chat text, alert policy as tool calls) and the pure policy, with worked numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revagent.engine.providers.base import (
    Finished,
    Message,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResultBlock,
    ToolUseBlock,
)
from revagent.engine.providers.offline import SLASH_COMMANDS, OfflineProvider
from revagent.engine.providers.policy import (
    AlertDescription,
    PolicyAction,
    TradeRef,
    half_risk_stop,
    open_risk_usd,
    rule_based_policy,
)

LONG = TradeRef(
    "t-1", "BTC", "long", entry_px=Decimal("100000"), size=Decimal("0.2"), stop_px=Decimal("98000")
)
SHORT = TradeRef("t-2", "ETH", "short", entry_px=Decimal("3000"), size=Decimal("4"), stop_px=Decimal("3100"))


async def collect(provider: OfflineProvider, req: ModelRequest) -> list[StreamEvent]:
    return [e async for e in provider.stream(req)]


def alert_request(alert: AlertDescription, *messages: Message) -> ModelRequest:
    return ModelRequest(
        model="offline",
        max_tokens=1024,
        messages=messages or (Message.user(f"alert: {alert.title}"),),
        thread_kind="alert",
        alert=alert,
    )


# --- the pure policy, worked numbers ---


def test_stop_loss_verification_re_places_the_stop() -> None:
    d = rule_based_policy(AlertDescription("stop_loss_verification", "a1", "BTC stop check", LONG))
    assert d.actions == (PolicyAction("ensure_stop", {"trade_id": "t-1"}),)


def test_early_warning_long_halves_open_risk_from_the_mark() -> None:
    # long 0.2 BTC, stop 98000, mark fell to 99000: open risk (99000 - 98000) * 0.2 = 200 USD.
    # Midpoint stop 98500 leaves (99000 - 98500) * 0.2 = 100 USD.
    alert = AlertDescription("early_warning", "a2", "BTC near stop", LONG, reference_px=Decimal("99000"))
    assert open_risk_usd(LONG, Decimal("99000")) == Decimal("200")
    d = rule_based_policy(alert)
    assert len(d.actions) == 1
    action = d.actions[0]
    assert action.tool == "modify_stop"
    assert action.arguments["trade_id"] == "t-1" and Decimal(action.arguments["stop_px"]) == Decimal("98500")
    assert "200" in d.text and "100" in d.text


def test_early_warning_short_halves_open_risk() -> None:
    # short 4 ETH, stop 3100, mark rose to 3060: open risk (3100 - 3060) * 4 = 160; new stop 3080 -> 80.
    new_stop = half_risk_stop(SHORT, Decimal("3060"))
    assert new_stop == Decimal("3080")
    d = rule_based_policy(AlertDescription("early_warning", "a3", "ETH near stop", SHORT, Decimal("3060")))
    assert Decimal(d.actions[0].arguments["stop_px"]) == Decimal("3080")
    moved = TradeRef("t-2", "ETH", "short", Decimal("3000"), Decimal("4"), stop_px=Decimal("3080"))
    assert open_risk_usd(moved, Decimal("3060")) == open_risk_usd(SHORT, Decimal("3060")) / 2 == Decimal("80")


def test_early_warning_without_a_mark_uses_the_entry() -> None:
    d = rule_based_policy(AlertDescription("early_warning", "a4", "BTC", LONG))
    assert Decimal(d.actions[0].arguments["stop_px"]) == Decimal("99000")  # (100000 + 98000) / 2


def test_early_warning_without_a_stop_places_one_first() -> None:
    naked = TradeRef("t-9", "SOL", "long", Decimal("150"), Decimal("10"))
    d = rule_based_policy(AlertDescription("early_warning", "a5", "SOL", naked, Decimal("149")))
    assert d.actions == (PolicyAction("ensure_stop", {"trade_id": "t-9"}),)


def test_early_warning_when_the_stop_already_locks_profit_does_nothing() -> None:
    locked = TradeRef("t-3", "BTC", "long", Decimal("100000"), Decimal("1"), stop_px=Decimal("101000"))
    d = rule_based_policy(AlertDescription("early_warning", "a6", "BTC", locked, Decimal("100500")))
    assert d.actions == ()


def test_profit_target_takes_half_and_moves_the_stop_to_break_even() -> None:
    d = rule_based_policy(AlertDescription("profit_target", "a7", "BTC target", LONG, Decimal("104000")))
    assert [a.tool for a in d.actions] == ["close_position", "modify_stop"]
    assert d.actions[0].arguments["fraction"] == "0.5"
    assert d.actions[1].arguments["stop_px"] == "100000"


@pytest.mark.parametrize("kind", ["watcher", "time", "system"])
def test_watchers_time_and_system_alerts_never_trade(kind: str) -> None:
    d = rule_based_policy(
        AlertDescription(kind, "a8", "BTC 95k", LONG, Decimal("95000"), summary="equity 10,000 USD")  # type: ignore[arg-type]
    )
    assert d.actions == ()
    assert "BTC 95k" in d.text
    if kind != "watcher":
        assert "equity 10,000 USD" in d.text
    else:
        assert "never trades" in d.text


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("200000"), places=2)


@settings(max_examples=200, deadline=None)
@given(
    entry=prices,
    stop=prices,
    mark=prices,
    size=st.decimals(min_value=Decimal("0.001"), max_value=100, places=3),
    side=st.sampled_from(["long", "short"]),
)
def test_half_risk_stop_halves_risk_and_never_widens(
    entry: Decimal, stop: Decimal, mark: Decimal, size: Decimal, side: str
) -> None:
    trade = TradeRef("t", "X", side, entry, size, stop_px=stop)  # type: ignore[arg-type]
    before = open_risk_usd(trade, mark)
    new_stop = half_risk_stop(trade, mark)
    if before == 0:
        assert new_stop is None
        return
    assert new_stop is not None
    after = open_risk_usd(TradeRef("t", "X", side, entry, size, stop_px=new_stop), mark)  # type: ignore[arg-type]
    assert after == before / 2
    assert (new_stop > stop) if side == "long" else (new_stop < stop)  # tighter, never wider


# --- the provider ---


async def test_chat_explains_that_no_model_is_configured_and_lists_slash_commands() -> None:
    req = ModelRequest(model="offline", max_tokens=100, messages=(Message.user("should I long BTC?"),))
    events = await collect(OfflineProvider(chunk_chars=80), req)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1  # streamed in pieces
    text = "".join(d.text for d in deltas)
    assert "No language model is configured" in text
    for cmd in (
        "/long",
        "/short",
        "/close",
        "/flatten",
        "/stop",
        "/target",
        "/cancel",
        "/leverage",
        "/margin",
        "/watch",
        "/alert",
        "/note",
        "/risk",
        "/halt",
        "/resume",
        "/mode",
        "/cost",
        "/help",
    ):
        assert cmd in text
    assert len(SLASH_COMMANDS) == 18
    assert events[-1] == Finished("end_turn")


async def test_alert_thread_emits_policy_tool_calls_with_deterministic_ids_per_firing() -> None:
    import dataclasses
    import re

    alert = AlertDescription("profit_target", "alert:42/x", "BTC target", LONG, Decimal("104000"),
                             trigger_key="tr_42#profit_target:g1")
    provider = OfflineProvider()
    first = await collect(provider, alert_request(alert))
    again = await collect(provider, alert_request(alert))
    calls = [e for e in first if isinstance(e, ToolCall)]
    assert [c.name for c in calls] == ["close_position", "modify_stop"]
    assert [c.id[-2:] for c in calls] == ["_0", "_1"]
    assert calls[0].id.startswith("toolu_offline_tr_42_profit_target_g1_")
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,100}", c.id) for c in calls)
    assert [c.id for c in again if isinstance(c, ToolCall)] == [c.id for c in calls]  # a resume: the same ids
    assert first[-1] == Finished("tool_use")
    # the next firing of the same alert (same thread) never reuses an id, hence never a gateway action key
    later = await collect(provider, alert_request(dataclasses.replace(alert, trigger_key="tr_42#profit_target:g2")))
    assert not {c.id for c in later if isinstance(c, ToolCall)} & {c.id for c in calls}


def test_a_liquidation_warning_closes_the_fraction_that_restores_the_distance() -> None:
    from revagent.engine.providers.policy import TradeRef, liquidation_fraction

    # long: mark 60000, liquidation 57000 (5% away); 10% wanted: liq <= 54545
    f = liquidation_fraction("long", Decimal(60000), Decimal(57000), Decimal(10))
    assert Decimal("0.4") < f < Decimal("0.6")
    assert (Decimal(60000) - Decimal(57000)) / (1 - f) >= Decimal(60000) - Decimal(60000) / Decimal("1.1")
    assert liquidation_fraction("long", Decimal(60000), Decimal(50000), Decimal(10)) == 0  # already far
    assert liquidation_fraction("short", Decimal(60000), Decimal(63000), Decimal(10)) > 0
    assert liquidation_fraction("short", Decimal(60000), Decimal(59000), Decimal(10)) == 1  # past it: all
    trade = TradeRef("tr_1", "BTC", "long", Decimal(61000), Decimal("0.1"), Decimal(59000), None, Decimal(57000))
    d = rule_based_policy(AlertDescription("liquidation_warning", "tr_1", "BTC liq", trade, Decimal(60000)))
    [action] = d.actions
    assert action.tool == "close_position" and Decimal(action.arguments["fraction"]) == f


async def test_alert_thread_summarises_tool_results_and_ends_the_turn() -> None:
    alert = AlertDescription("stop_loss_verification", "a9", "BTC stop check", LONG)
    history = (
        Message.user("alert"),
        Message("assistant", (ToolUseBlock("toolu_offline_a9_0", "ensure_stop", {"trade_id": "t-1"}),)),
        Message(
            "user", (ToolResultBlock("toolu_offline_a9_0", "exchange refused: rate limited", is_error=True),)
        ),
    )
    events = await collect(OfflineProvider(), alert_request(alert, *history))
    assert not any(isinstance(e, ToolCall) for e in events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "1 of 1 actions failed" in text and "rate limited" in text
    assert events[-1] == Finished("end_turn")


async def test_a_pluggable_policy_is_used() -> None:
    from revagent.engine.providers.policy import PolicyDecision

    def flatten_everything(alert: AlertDescription) -> PolicyDecision:
        return PolicyDecision((PolicyAction("flatten_all", {}),), "custom")

    events = await collect(
        OfflineProvider(policy=flatten_everything),
        alert_request(AlertDescription("system", "s1", "liq warning")),
    )
    assert [e.name for e in events if isinstance(e, ToolCall)] == ["flatten_all"]


@pytest.mark.parametrize("kind", ["stop_loss_verification", "early_warning", "profit_target"])
def test_policy_actions_validate_against_the_engine_tools_argument_models(kind: str) -> None:
    from revagent.engine.tools.trade import ClosePositionArgs, EnsureStopArgs, ModifyStopArgs

    models = {
        "close_position": ClosePositionArgs,
        "modify_stop": ModifyStopArgs,
        "ensure_stop": EnsureStopArgs,
    }
    decision = rule_based_policy(AlertDescription(kind, "a", "t", LONG, Decimal("99000")))  # type: ignore[arg-type]
    assert decision.actions
    for action in decision.actions:
        args = models[action.tool].model_validate(action.arguments)
        assert args.trade_id == "t-1"


def test_a_liquidation_warning_without_a_liquidation_price_does_not_trade() -> None:
    from revagent.engine.providers.policy import TradeRef

    trade = TradeRef("tr_2", "BTC", "long", Decimal(61000), Decimal("0.1"), Decimal(59000), None, None)
    d = rule_based_policy(AlertDescription("liquidation_warning", "tr_2", "BTC liq", trade, Decimal(60000)))
    assert d.actions == () and "cannot be liquidated" in d.text
