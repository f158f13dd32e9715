"""`revagent notes ...`: the wallet's persistent notes (they go into every prompt)."""

from __future__ import annotations

from typing import Annotated

import typer

from revagent.cli.common import (
    ConfigOpt,
    JsonOpt,
    WalletOpt,
    command,
    load,
    print_json,
    remove_record,
    say,
    session_store,
    table,
)

app = typer.Typer(help="Persistent notes the agent reads in every turn.", no_args_is_help=True)


@app.command("add")
@command
async def add(
    text: Annotated[str, typer.Argument(help="The note's text.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeatable).")] = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add a note."""
    from revagent.actions import AddNote
    from revagent.models import utc_now

    note = AddNote.parse(text=text, tag=tag).resolve(None).build(utc_now())
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        await store.notes.put(note)
    if json_out:
        print_json(note)
    else:
        say(f"added note [bold]{note.id}[/bold]")


@app.command("list")
@command
async def list_(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only notes with this tag.")] = None,
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List notes, oldest first."""
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        notes = await store.notes.all()
    if tag:
        notes = [n for n in notes if tag.lstrip("#") in n.tags]
    if json_out:
        print_json({"notes": notes})
        return
    if not notes:
        say("no notes")
        return
    table("Notes", ["id", "text", "tags", "updated"],
          [[n.id, n.text, " ".join(f"#{t}" for t in n.tags), n.updated_at.strftime("%Y-%m-%d %H:%M")]
           for n in notes])


@app.command("rm")
@command
async def rm(
    note_id: Annotated[str, typer.Argument(metavar="ID", help="The note's id.")],
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Remove a note."""
    await remove_record(config, wallet, "notes", note_id, "note", json_out)


@app.command("edit")
@command
async def edit(
    note_id: Annotated[str, typer.Argument(metavar="ID", help="The note's id.")],
    text: Annotated[str, typer.Argument(help="The new text.")],
    wallet: WalletOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Replace a note's text."""
    from revagent.errors import NotFoundError, UsageError
    from revagent.models import utc_now

    if not text.strip():
        raise UsageError("TEXT: a note cannot be empty")
    cfg = load(config)
    async with session_store(cfg, cfg.wallet(wallet)) as store:
        note = await store.notes.get(note_id)
        if note is None:
            raise NotFoundError(f"no note with id {note_id!r}")
        note = note.model_copy(update={"text": text.strip(), "updated_at": utc_now()})
        await store.notes.put(note)
    if json_out:
        print_json(note)
    else:
        say(f"updated note {note_id}")
