"""The action layer sits under every door: it imports risk, models and errors only, and risk never
imports it back."""

from __future__ import annotations

from tests.test_layering import modules

ACTIONS_MAY_IMPORT = ("revagent.actions", "revagent.risk", "revagent.models", "revagent.errors")


def test_actions_import_only_risk_models_and_errors() -> None:
    bad = [(rel, m) for _, rel, imps in modules() if rel.startswith("actions/") for m in imps
           if m.startswith("revagent") and not m.startswith(ACTIONS_MAY_IMPORT)]
    assert bad == []


def test_risk_does_not_import_actions() -> None:
    assert [(rel, m) for _, rel, imps in modules() if rel.startswith("risk/") for m in imps
            if m.startswith("revagent.actions")] == []


def test_the_tui_does_not_import_the_cli() -> None:
    assert [(rel, m) for _, rel, imps in modules() if rel.startswith("tui/") for m in imps
            if m.startswith("revagent.cli")] == []
