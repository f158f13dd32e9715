"""Turn-start retries on top of a provider's own (SDK) retries.

The anthropic SDK retries 408/409/429/5xx answered *before* the stream starts, but an
`event: error` (overloaded) that arrives *inside* a 200 stream is raised without a retry. This
wrapper retries a call whose stream failed with a retryable `ProviderError` as long as nothing the
trader saw (text, a tool call) was emitted yet, with exponential backoff and jitter, honouring the
server's `retry_after_s` hint. Each retry is announced with a `Notice`. Once output was emitted, the
error is passed through: retrying would repeat text, and the turn loop decides what to do.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from revagent.engine.providers.base import (
    ModelRequest,
    Notice,
    Provider,
    ProviderError,
    StreamEvent,
    aclose_stream,
    count_prompt_tokens,
    is_output,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` counts the first call. Delay before retry n (1-based) is
    `min(max_delay_s, base_delay_s * 2**(n-1))` scaled by a random factor in [1 - jitter, 1], or the
    server's hint when it is larger (capped at `max_delay_s`)."""

    attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    jitter: float = 0.25

    def delay_s(
        self, retry: int, hint_s: float | None = None, rand: Callable[[], float] = random.random
    ) -> float:
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1)) * (1.0 - self.jitter * rand())
        if hint_s is not None and hint_s > backoff:
            return min(hint_s, self.max_delay_s)
        return backoff


class RetryingProvider:
    """Wraps `inner`; see the module docstring. `sleep` is injectable for tests."""

    def __init__(
        self,
        inner: Provider,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.name = inner.name
        self._sleep = sleep

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        attempt = 1
        while True:
            error: ProviderError | None = None
            emitted = False
            inner = self.inner.stream(request)
            try:
                async for event in inner:
                    if isinstance(event, ProviderError):
                        error = event
                        break
                    emitted = emitted or is_output(event)
                    yield event
            finally:
                await aclose_stream(inner)
            if error is None:
                return
            if emitted or not error.retryable or attempt >= self.policy.attempts:
                yield error
                return
            delay = self.policy.delay_s(attempt, error.retry_after_s)
            yield Notice(
                f"{self.name}: {error.kind} ({error.message}); retrying in {delay:.1f} s "
                f"(attempt {attempt + 1} of {self.policy.attempts})"
            )
            await self._sleep(delay)
            attempt += 1


    async def count_tokens(self, request: ModelRequest) -> int | ProviderError | None:
        """The wrapped provider's token count (not retried: a count is only ever a hint)."""
        return await count_prompt_tokens(self.inner, request)


def with_retries(provider: Provider, policy: RetryPolicy = RetryPolicy()) -> RetryingProvider:
    """`provider` with turn-start retries (see `RetryingProvider`)."""
    return RetryingProvider(provider, policy)
