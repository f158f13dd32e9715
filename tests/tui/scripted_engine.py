"""A scripted turn engine at the adapter's `ChatEngine` seam (the real runner lands separately).

`send()` plays a script of turn events on the real session bus, the way the runner will: started,
text deltas, tool calls and results, proposals, done. `interrupt()` ends a running turn early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from revagent.bus import Bus
from revagent.events import TurnEvent
from revagent.tui.port import HistoryEntry, ThreadInfo

Step = tuple[str, dict[str, Any]]


class ScriptedEngine:
    def __init__(self, bus: Bus, script: Sequence[Step] = (), *, hold: bool = False, main_id: str = "main") -> None:
        self.bus = bus
        self.script = list(script)
        self.hold = hold  # keep the turn running after the script until interrupted
        self.sent: list[tuple[str, str]] = []
        self.answers: list[tuple[str, bool]] = []
        self.interrupted: list[str] = []
        self._threads = {main_id: ThreadInfo(main_id, "chat", "main")}
        self._release = asyncio.Event()
        self._turn = 0

    async def threads(self) -> Sequence[ThreadInfo]:
        return list(self._threads.values())

    async def history(self, thread_id: str) -> Sequence[HistoryEntry]:
        return []

    async def new_thread(self, title: str) -> ThreadInfo:
        info = ThreadInfo(f"c{len(self._threads)}", "chat", title)
        self._threads[info.id] = info
        return info

    async def rename_thread(self, thread_id: str, title: str) -> None:
        self._threads[thread_id] = ThreadInfo(thread_id, "chat", title)

    async def close_thread(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)

    def _emit(self, thread_id: str, kind: str, data: dict[str, Any]) -> None:
        self.bus.publish(TurnEvent(thread_id=thread_id, turn_id=f"turn{self._turn}", kind=kind,
                                   data=data))

    async def send(self, thread_id: str, text: str) -> None:
        self.sent.append((thread_id, text))
        self._turn += 1
        self._emit(thread_id, "started", {})
        for kind, data in self.script:
            self._emit(thread_id, kind, data)
        if self.hold:
            asyncio.get_running_loop().create_task(self._finish_later(thread_id), name="scripted-turn")
        else:
            self._emit(thread_id, "done", {})

    async def _finish_later(self, thread_id: str) -> None:
        await self._release.wait()
        self._emit(thread_id, "done", {"interrupted": True})

    async def interrupt(self, thread_id: str) -> bool:
        self.interrupted.append(thread_id)
        self._release.set()
        return True

    async def aclose(self) -> None:
        """The session closes its engine when it stops."""
        self._release.set()

    async def answer_proposal(self, proposal_id: str, approve: bool) -> dict[str, Any]:
        self.answers.append((proposal_id, approve))
        # the shape of the engine's Proposal.model_dump(mode="json")
        return {"id": proposal_id, "status": "executed" if approve else "rejected",
                "result": "opened ETH long 0.412 @ 3,101" if approve else ""}
