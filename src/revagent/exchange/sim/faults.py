"""Faults the test controls inject: latency, HTTP errors, lost responses of accepted orders, a websocket
outage."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class HttpFault:
    status: int  # e.g. 500, 502, 429
    remaining: int  # how many requests still get it
    path: str | None = None  # "/info", "/exchange", or None for both


@dataclass(slots=True)
class Faults:
    latency_ms: int = 0
    http: list[HttpFault] = field(default_factory=list)
    lose_order_responses: int = 0  # accepted order actions whose response is dropped (connection closed)
    refuse_websockets: bool = False  # new websocket connections are answered HTTP 503 (an outage)

    def take_http(self, path: str) -> int | None:
        """The status to answer `path` with instead of handling it, consuming one use; None when healthy."""
        for fault in self.http:
            if fault.remaining > 0 and (fault.path is None or fault.path == path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.http.remove(fault)
                return fault.status
        return None

    def take_lost_response(self) -> bool:
        if self.lose_order_responses > 0:
            self.lose_order_responses -= 1
            return True
        return False

    def clear(self) -> None:
        self.latency_ms = 0
        self.http.clear()
        self.lose_order_responses = 0
        self.refuse_websockets = False
