"""A Hyperliquid-compatible exchange simulator: the paper venue and the test bed for every money path.

Embed it in-process with `SimServer(SimConfig(...))` (`await start()` returns the base URL, `await stop()`),
or run it as a process with `revagent sim serve`. The unmodified `hyperliquid-python-sdk` works against it.
"""

from revagent.exchange.sim.config import SimConfig
from revagent.exchange.sim.server import SimServer

__all__ = ["SimConfig", "SimServer"]
