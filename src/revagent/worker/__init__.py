"""The python worker: model-written Python run in a confined, short-lived process.

`sandbox` starts and talks to the worker (asyncio subprocesses, bounded results); `_enter` builds
the confinement inside the new namespaces; `_runner` is the one program inside. The worker decides
nothing: it has no network, no key, no Redis, no gateway; it computes and returns text, a value and
a figure. The guarantees are in docs/WORKER.md.
"""

from revagent.worker.sandbox import Limits, SandboxUnavailable, Worker, WorkerPool, WorkerResult, detect, probe

__all__ = ["Limits", "SandboxUnavailable", "Worker", "WorkerPool", "WorkerResult", "detect", "probe"]
