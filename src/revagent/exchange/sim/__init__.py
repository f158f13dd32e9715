"""A Hyperliquid-compatible exchange simulator: the paper venue and the test bed for every money path.

Embed it in-process with `SimServer(SimConfig(...))` (`await start()` returns the base URL, `await stop()`),
or run it as a process with `revagent sim serve`. The unmodified `hyperliquid-python-sdk` works against it.

`SimServer` is imported on first use (PEP 562): a client that only reads `service` or `config` (the
shell's one-shot commands) does not pay for the server's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from revagent.exchange.sim.config import SimConfig

if TYPE_CHECKING:
    from revagent.exchange.sim.server import SimServer

__all__ = ["SimConfig", "SimServer"]


def __getattr__(name: str) -> Any:
    if name == "SimServer":
        from revagent.exchange.sim.server import SimServer

        return SimServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
