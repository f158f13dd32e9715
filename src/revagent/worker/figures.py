"""Where a `run_python` figure is kept for the trader: one PNG per figure under the session's data
dir (`<data dir>/figures/<wallet>/`), the dir owner-only (0700) and each file owner-only (0600),
at most `keep` files (the oldest are pruned at each save). The model gets the image itself; the
path is for the TUI's link and `revagent ask --json`. Blocking file I/O: call `save` off the loop.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

KEEP = 100
"""How many figures a session keeps (about 100 x 30-100 KB)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class FigureStore:
    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        if keep < 1:
            raise ValueError("keep at least one figure")
        self.directory = directory
        self.keep = keep

    def save(self, png: bytes, call_id: str) -> Path:
        """Write `png` as `<UTC time>-<call id>.png` (0600), prune the oldest past `keep`; its path."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # an existing dir made loosely (or umask) is tightened
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() // 1000 % 1_000_000:06d}"
        name = f"{stamp}-{_UNSAFE.sub('_', call_id)[:64] or 'figure'}.png"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(png)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        self.prune()
        return path

    def prune(self) -> None:
        """Keep the newest `keep` figures (the names sort by time)."""
        pngs = sorted(p for p in self.directory.iterdir() if p.suffix == ".png" and p.is_file())
        for old in pngs[:-self.keep]:
            old.unlink(missing_ok=True)
