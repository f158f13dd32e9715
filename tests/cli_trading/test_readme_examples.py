"""Issue 23 item 17: every command line of the README's runnable block works, in order, on a fresh
paper wallet (each prompt answered yes),."""

from __future__ import annotations

import shlex
from decimal import Decimal
from pathlib import Path

import pytest

from tests.cli_trading.conftest import ThreadedSim, rv

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- runnable: tests/cli_trading/test_readme_examples.py -->"

pytestmark = pytest.mark.timeout(600)


def runnable_commands(text: str) -> list[list[str]]:
    """The `$R ...` commands of the block after the marker, split at `;`, comments dropped."""
    assert MARKER in text, "the README lost its runnable block"
    block = text.split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands: list[list[str]] = []
    for line in block.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
        lexer.whitespace_split = True
        argv: list[str] = []
        for word in [*lexer, ";"]:
            if word != ";":
                argv.append(word)
                continue
            if argv and not argv[0].startswith("R="):
                assert argv[0] == "$R", line
                commands.append(argv[1:])
            argv = []
    return commands


def test_the_parser_splits_lines_and_drops_comments() -> None:
    text = f'{MARKER}\n```bash\nR=x\n$R a b; $R c "d e"   # note\n$R f 2%\n```\n'
    assert runnable_commands(text) == [["a", "b"], ["c", "d e"], ["f", "2%"]]


def test_every_runnable_readme_line_works_on_a_fresh_paper_wallet(paper: ThreadedSim) -> None:
    paper.call(lambda server: server.set_price("ETH", Decimal(3300)))  # where the paper venue had it
    commands = runnable_commands(README.read_text())
    assert len(commands) >= 15
    for argv in commands:
        out = rv(*argv, input="y\n" * 3)
        assert out.returncode == 0, (argv, out.returncode, out.stdout[-1500:], out.stderr[-1500:])

