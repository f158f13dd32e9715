"""HTTP transport to `/info` and `/exchange`: timeouts, retries with backoff and jitter, weight budget.

`/info` requests are reads: 5xx, 429, timeouts and connection errors are retried, and after the
last attempt `ExchangeUnavailableError` is raised.

`/exchange` requests change things, so a retry must never place twice:
- a connection that could not be opened (nothing was sent) and a 429 (refused before processing)
  are retried with the same signed body;
- a 5xx is retried with the same signed body too: it carries the same nonce, which the exchange
  refuses to execute twice; the send is marked `ambiguous` so the caller treats a refusal as
  "unknown outcome" rather than "nothing happened";
- a timeout or a connection lost after sending returns `Unknown` at once, without resending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from revagent.errors import ExchangeUnavailableError
from revagent.exchange.hyperliquid.rate_budget import Lane, RateBudget
from revagent.exchange.types import ExchangeResponseError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries per request, each bounded by `timeout_s`; backoff base·2^n capped, ±50% jitter."""

    attempts: int = 4
    timeout_s: float = 10.0
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Pause before retry number `attempt` (1-based)."""
        base: float = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return base * rng.uniform(0.5, 1.5)


@dataclass(frozen=True, slots=True)
class Answered:
    """The exchange answered. `ambiguous`: an earlier attempt of this same body may have been processed."""

    status: int
    text: str
    ambiguous: bool


@dataclass(frozen=True, slots=True)
class Unknown:
    """The body may or may not have been processed; it must not be sent again blindly."""

    reason: str


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HttpTransport:
    """Posts JSON to one base URL (no trailing slash). Owns its aiohttp session unless one is given."""

    def __init__(
        self,
        base_url: str,
        *,
        budget: RateBudget,
        policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._budget = budget
        self.policy = policy or RetryPolicy()
        self._session = session
        self._owns_session = session is None
        self._rng = rng or random.Random()
        self.weight_by_type: dict[str, int] = {}  # weight of every attempt sent, by request type (measuring)

    @property
    def weight_spent(self) -> int:
        """Weight of every request attempt this transport made."""
        return sum(self.weight_by_type.values())

    def _count(self, kind: str, weight: int) -> None:
        self.weight_by_type[kind] = self.weight_by_type.get(kind, 0) + weight

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use, on the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def _backoff(self, attempt: int) -> None:
        if attempt < self.policy.attempts:
            await asyncio.sleep(self.policy.delay(attempt, self._rng))

    async def info(self, payload: dict[str, Any], *, weight: int, lane: Lane = "read") -> Any:
        """POST /info and return the decoded JSON. Raises ExchangeUnavailableError or ExchangeResponseError."""
        endpoint = str(payload.get("type", "info"))
        url = self.base_url + "/info"
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        last = "no attempt made"
        for attempt in range(1, self.policy.attempts + 1):
            await self._budget.acquire(weight, lane)
            self._count(endpoint, weight)
            try:
                async with self.session().post(url, json=payload, timeout=timeout) as resp:
                    status, text, headers = resp.status, await resp.text(), resp.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("info %s attempt %d failed: %s", endpoint, attempt, last)
                await self._backoff(attempt)
                continue
            if status == 429:
                last = "HTTP 429 (rate limited)"
                await self._budget.rate_limited(_retry_after(headers), lane)
                await self._backoff(attempt)
                continue
            if status >= 500:
                last = f"HTTP {status}: {text[:200]}"
                log.warning("info %s attempt %d: %s", endpoint, attempt, last)
                await self._backoff(attempt)
                continue
            if status >= 400:
                raise ExchangeResponseError(endpoint, f"HTTP {status}: {text[:300]}")
            try:
                return json.loads(text)
            except ValueError:
                raise ExchangeResponseError(endpoint, f"not JSON: {text[:120]!r}") from None
        raise ExchangeUnavailableError(
            f"{self.base_url} did not answer {endpoint} after {self.policy.attempts} attempts ({last})"
        )

    async def exchange(self, payload: dict[str, Any], *, weight: int, endpoint: str,
                       lane: Lane = "trade") -> Answered | Unknown:
        """POST a signed body to /exchange without ever risking a double execution (see module doc).

        Raises ExchangeUnavailableError only when no attempt can have reached the exchange.
        """
        url = self.base_url + "/exchange"
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        body = json.dumps(payload)
        headers = {"Content-Type": "application/json"}
        ambiguous = False
        last = "no attempt made"
        for attempt in range(1, self.policy.attempts + 1):
            await self._budget.acquire(weight, lane)
            self._count(endpoint, weight)
            try:
                async with self.session().post(url, data=body, headers=headers, timeout=timeout) as resp:
                    status, text, resp_headers = resp.status, await resp.text(), resp.headers
            except aiohttp.ClientConnectorError as exc:  # the connection never opened: nothing was sent
                last = f"cannot connect: {exc}"
                log.warning("%s attempt %d: %s", endpoint, attempt, last)
                await self._backoff(attempt)
                continue
            except TimeoutError:
                return Unknown(f"no answer within {self.policy.timeout_s:g}s")
            except aiohttp.ClientError as exc:
                return Unknown(f"connection lost after sending: {type(exc).__name__}: {exc}")
            if status == 429:
                last = "HTTP 429 (rate limited)"
                await self._budget.rate_limited(_retry_after(resp_headers), lane)
                await self._backoff(attempt)
                continue
            if status >= 500:
                ambiguous = True
                last = f"HTTP {status}: {text[:200]}"
                log.warning("%s attempt %d: %s", endpoint, attempt, last)
                await self._backoff(attempt)
                continue
            return Answered(status, text, ambiguous)
        if ambiguous:
            return Unknown(f"no usable answer after {self.policy.attempts} attempts ({last})")
        raise ExchangeUnavailableError(
            f"{self.base_url} did not accept {endpoint} after {self.policy.attempts} attempts ({last})"
        )
