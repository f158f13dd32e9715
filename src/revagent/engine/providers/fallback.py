"""A primary provider with a fallback (another model, or the offline provider).

The primary is usually a `RetryingProvider`, so its `ProviderError` means "failed after retries".
The fallback helps only when the failure is transient: when the primary fails before any text or
tool call was emitted with a kind in `switch_on` (default `TRANSIENT`: connection, timeout,
overloaded, rate limited once the retries are spent, 5xx), the same request goes to the fallback,
announced with a `Notice`. A 400/401/403/404 (`bad_request`, `auth`) is a configuration error that
another call will not fix: in a chat thread it is passed through, so the trader reads the API's
message and the thread stays on the model; in an alert thread (nobody may be watching, the
protection must run) the fallback runs and the `Notice` carries the error (`config_error`) so the
runner raises the model health alert. After output was emitted, the error is passed through
unchanged (the turn loop decides).

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
    count_prompt_tokens,
    is_output,
)

ALL_KINDS: frozenset[ErrorKind] = frozenset(
    ("overloaded", "rate_limited", "auth", "bad_request", "timeout", "connection", "other")
)
TRANSIENT: frozenset[ErrorKind] = frozenset(("overloaded", "rate_limited", "timeout", "connection"))
CONFIG_ERRORS: frozenset[ErrorKind] = frozenset(("auth", "bad_request"))


class FallbackProvider:
    def __init__(
        self,
        primary: Provider,
        fallback: Provider,
        *,
        fallback_model: str | None = None,
        switch_on: frozenset[ErrorKind] = TRANSIENT,
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
        transient = error.kind in self.switch_on or (error.kind == "other" and error.retryable)
        config = error.kind in CONFIG_ERRORS and request.thread_kind == "alert"
        if emitted or not (transient or config):
            yield error
            return
        target = self.fallback_model or self.fallback.name
        if config:
            yield Notice(f"{self.primary.name} refused the request as misconfigured ({error.kind}: {error.message}); "
                         f"this alert runs on {target}. Fix the [llm] settings (`revagent doctor` checks them).",
                         config_error=error)
        else:
            yield Notice(f"{self.primary.name} failed ({error.kind}: {error.message}); switching to {target}.")
        req = dataclasses.replace(request, model=self.fallback_model) if self.fallback_model else request
        secondary = self.fallback.stream(req)
        try:
            async for event in secondary:
                yield event
        finally:
            await aclose_stream(secondary)

    async def count_tokens(self, request: ModelRequest) -> int | ProviderError | None:
        """The primary's token count (the prompt is sized for the model; the fallback needs no count)."""
        return await count_prompt_tokens(self.primary, request)
