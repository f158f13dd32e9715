"""`revagent ask MESSAGE`: one chat turn from the shell; `revagent proposals ...`: copilot proposals.

`ask` runs the turn in the wallet's owner (a running daemon or TUI) through the command channel, or,
with no owner, in a short local session; the thread persists, so the next `ask` on it continues
the conversation. With `--json` it prints JSON Lines, one event per line with a `type`: `thread`,
`text`, `tool_call`, `tool_result`, `proposal`, `usage`, `notice`, `error` (the turn's, e.g. a budget
stop), and last `done` (the turn's outcome: status, text, cost, tokens, proposals, trades).

Exit codes: 0 the turn finished (or was interrupted), 6 it was refused (budget, stopped thread),
1 it failed (model unreachable after retries and no fallback, internal error), plus the usual ones
(4 config, 5 Redis, 7 the owner did not answer).

Mount (cli/main.py): `app.command("ask")(ask.ask)` and `app.add_typer(ask.proposals_app, name="proposals")`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from revagent.cli.common import ConfigOpt, JsonOpt, WalletOpt, command, load, print_json, say, session_store, table

proposals_app = typer.Typer(help="Copilot proposals: orders the agent proposed, waiting for you.",
                            no_args_is_help=True)

ThreadOpt = Annotated[str | None, typer.Option("--thread", "-t", help="Thread name or id (default: main).")]
TimeoutOpt = Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the owner between events.")]
EXIT_FOR_STATUS = {"done": 0, "interrupted": 0, "max_steps": 0, "budget": 6, "refused": 6, "error": 1}


def jsonl(kind: str, data: Any) -> str:
    """One `ask --json` line: `{"type": kind, ...data}`."""
    doc = {"type": kind, **data} if isinstance(data, dict) else {"type": kind, "data": data}
    return json.dumps(doc, separators=(",", ":"), default=str)


class TextRenderer:
    """Human output: the answer streams on stdout; tool calls, usage and notices go to stderr.

    Text written after a tool call starts a new paragraph (the model's text before and after a call
    are two messages, never glued together); long tool inputs and results are cut at a word with an
    ellipsis (only the display: the model gets the tool's full result).
    """

    def __init__(self) -> None:
        self.text_open = False  # the last thing on stdout is answer text without a line end
        self.after_tool = False  # a tool ran since the last text

    def __call__(self, kind: str, data: Any) -> None:
        from revagent.format import clip

        out, err = sys.stdout, sys.stderr
        if kind == "text":
            text = str(data.get("text", ""))
            if not text:
                return
            if self.after_tool and self.text_open:
                out.write("\n\n")
            self.after_tool = False
            out.write(text)
            out.flush()
            self.text_open = not text.endswith("\n")
        elif kind == "tool_call":
            self.after_tool = True
            err.write(f"\n[{data.get('name')} {clip(json.dumps(data.get('input', {}), default=str), 200)}]\n")
        elif kind == "tool_result":
            self.after_tool = True
            mark = "error" if data.get("is_error") else "ok"
            err.write(f"[{data.get('name')} -> {mark}: {clip(str(data.get('content', '')), 300)}]\n")
        elif kind == "proposal":
            err.write(f"[proposal {data.get('id')}: {data.get('summary', '')}; approve with "
                      f"`revagent proposals approve {data.get('id')}`]\n")
        elif kind in ("notice", "turn_error"):
            err.write(f"[{'error' if kind == 'turn_error' else 'notice'}: "
                      f"{data.get('text') or data.get('message')}]\n")
        elif kind == "done":
            out.write("\n")
            self.text_open = False
            err.write(f"({data.get('status')}, {data.get('input_tokens', 0)} in / {data.get('output_tokens', 0)} "
                      f"out tokens, ${data.get('cost_usd', '0')})\n")


def render_text(kind: str, data: Any) -> None:
    """One event rendered on its own (no paragraph state); `ask` uses a `TextRenderer`."""
    TextRenderer()(kind, data)


@command
async def ask(
    message: Annotated[str, typer.Argument(help="What to ask the agent.")],
    thread: ThreadOpt = None,
    wallet: WalletOpt = None,
    timeout: TimeoutOpt = 300.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON Lines, one event per line.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run one chat turn and stream the answer (in the wallet's running session when one owns it)."""
    from revagent.errors import UsageError
    from revagent.runtime.remote import call

    if not message.strip():
        raise UsageError("MESSAGE: say something")
    cfg = load(config)
    w = cfg.wallet(wallet)
    status = "done"
    render = TextRenderer()
    async for entry in call(cfg, w, "chat", {"thread": thread, "message": message}, timeout=timeout):
        kind, data = entry["type"], entry["data"]
        if kind == "done" and isinstance(data, dict):
            status = str(data.get("status", "done"))
        if json_out:
            sys.stdout.write(jsonl("error" if kind == "turn_error" else kind, data) + "\n")
            sys.stdout.flush()
        else:
            render(kind, data)
    code = EXIT_FOR_STATUS.get(status, 1)
    if code:
        raise typer.Exit(code)


@proposals_app.command("list")
@command
async def proposals_list(
    status: Annotated[str | None, typer.Option(help="pending, approved, rejected, expired, executed, failed")] = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The proposals (read from the store; no owner needed)."""
    from revagent.store.threads import ThreadStore

    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        items = await ThreadStore(store.redis, store.keys).proposals()
    items = [p for p in items if status is None or p.status == status]
    if json_out:
        print_json([p.model_dump(mode="json") for p in items])
        return
    if not items:
        say("no proposals")
        return
    table("proposals", ["id", "status", "created", "summary", "preview"],
          [[p.id, p.status, p.created_at.isoformat(timespec="seconds"), p.summary,
            "approved" if p.preview.get("approved") else "; ".join(p.preview.get("reasons", []))[:120]]
           for p in items])


async def _decide(proposal_id: str, approve: bool, wallet: str | None, json_out: bool, config: Any,
                  timeout: float) -> None:
    from revagent.runtime.remote import call_once

    cfg = load(config)
    result, via = await call_once(cfg, cfg.wallet(wallet), "proposal.decide",
                                  {"id": proposal_id, "approve": approve, "by": "cli"}, timeout=timeout)
    if json_out:
        print_json({**result, "via": via})
    else:
        say(f"{result['id']}: {result['status']}" + (f" — {result['result']}" if result.get("result") else ""))
    if result.get("status") == "failed":
        raise typer.Exit(6)


@proposals_app.command("approve")
@command
async def proposals_approve(
    proposal_id: Annotated[str, typer.Argument(metavar="ID")],
    wallet: WalletOpt = None,
    timeout: TimeoutOpt = 30.0,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Approve a proposal: the owner executes it through the risk engine and the gateway."""
    await _decide(proposal_id, True, wallet, json_out, config, timeout)


@proposals_app.command("reject")
@command
async def proposals_reject(
    proposal_id: Annotated[str, typer.Argument(metavar="ID")],
    wallet: WalletOpt = None,
    timeout: TimeoutOpt = 30.0,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Reject a proposal: nothing is sent."""
    await _decide(proposal_id, False, wallet, json_out, config, timeout)
