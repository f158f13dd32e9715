"""`python -m revagent.tui [--wallet W] [--config PATH]`: the main screen without the CLI."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from revagent.config import load_config
from revagent.errors import RevagentError
from revagent.tui.run import run_screens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revagent.tui")
    parser.add_argument("--wallet", "-w", default=None)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.wallet is not None:
            config.wallet(args.wallet)  # an unknown name is refused before any screen
        asyncio.run(run_screens(config, args.wallet))
    except RevagentError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
