"""A primary provider with a fallback (another model, or the offline provider).

The primary is usually a `RetryingProvider`, so its `ProviderError` means "failed after retries".
When it fails before any text or tool call was emitted, and the error kind is in `switch_on`
(default: every kind, bad requests included, so an alert thread's protection never depends on the
model), the same request goes to the fallback, announced with a `Notice`. After output was
emitted, the error is passed through unchanged (the turn loop decides).

`fallback_model` replaces `request.model` for the fallback (for a second Anthropic model); leave it
None for the offline provider.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from revagent.engine.providers.base import (
    ErrorKind,
    ModelRequest,
    Notice,
    Provider,
    ProviderError,
    StreamEvent,
    aclose_stream,
    is_output,
)

ALL_KINDS: frozenset[ErrorKind] = frozenset(
    ("overloaded", "rate_limited", "auth", "bad_request", "timeout", "connection", "other")
)


class FallbackProvider:
    def __init__(
        self,
        primary: Provider,
        fallback: Provider,
        *,
        fallback_model: str | None = None,
        switch_on: frozenset[ErrorKind] = ALL_KINDS,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fallback_model = fallback_model
        self.switch_on = switch_on
        self.name = f"{primary.name}+{fallback.name}"

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        emitted = False
        error: ProviderError | None = None
        primary = self.primary.stream(request)
        try:
            async for event in primary:
                if isinstance(event, ProviderError):
                    error = event
                    break
                emitted = emitted or is_output(event)
                yield event
        finally:
            await aclose_stream(primary)
        if error is None:
            return
        if emitted or error.kind not in self.switch_on:
            yield error
            return
        target = self.fallback_model or self.fallback.name
        yield Notice(f"{self.primary.name} failed ({error.kind}: {error.message}); switching to {target}.")
        req = dataclasses.replace(request, model=self.fallback_model) if self.fallback_model else request
        secondary = self.fallback.stream(req)
        try:
            async for event in secondary:
                yield event
        finally:
            await aclose_stream(secondary)
