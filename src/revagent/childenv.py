"""The environment of every process revagent starts: an explicit minimum, never a secret.

A child inherits nothing by default: the agent key, `ANTHROPIC_API_KEY`, a mainnet key exported in
the shell or a Redis password in `REVAGENT_REDIS__URL` would otherwise sit in its
`/proc/PID/environ` for as long as it lives (the paper venue and the embedded Redis outlive the
process that started them). Only what a child needs to run is passed on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

BASE = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
PYTHON = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
"""A Python child (the paper venue) must import the same revagent as its parent."""
DESKTOP = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
"""A desktop notifier (`notify-send`) reaches the session's notification daemon through these."""


def child_env(*, python: bool = False, desktop: bool = False, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: PATH, HOME and the locale, plus the named groups."""
    names = BASE + (PYTHON if python else ()) + (DESKTOP if desktop else ())
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.setdefault("PATH", os.defpath)
    if extra:
        env.update(extra)
    return env
