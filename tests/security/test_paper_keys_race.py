"""A fresh paper wallet's keys are made once, whoever asks first: a daemon, a TUI and shell commands
starting together all read the same complete keys (CI saw a daemon read an `addresses` file another
process was still writing: "not enough values to unpack")."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def _ask(data_dir: str, start: object, out: object) -> None:
    from revagent.config.keys import paper_keys, read_key_file

    start.wait()  # type: ignore[attr-defined]
    try:
        keys = paper_keys(Path(data_dir), "paper")
        agent = read_key_file(keys.agent_key_file).address()
        out.put((keys.master_address, keys.agent_address, agent))  # type: ignore[attr-defined]
    except Exception as exc:  # the test reports what each process saw
        out.put(("error", repr(exc), ""))  # type: ignore[attr-defined]


@pytest.mark.parametrize("round_", range(3))
def test_processes_starting_together_make_one_set_of_paper_keys(tmp_path: Path, round_: int) -> None:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_ask, args=(str(tmp_path / "data"), start, out)) for _ in range(8)]
    for p in procs:
        p.start()
    start.set()
    seen = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert [s for s in seen if s[0] == "error"] == []
    assert len(set(seen)) == 1, seen
    _master, agent, agent_from_file = seen[0]
    assert agent == agent_from_file
