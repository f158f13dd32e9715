"""Client order ids: 16 bytes as `0x` + 32 lowercase hex digits, derived from the action behind an order.

`cloid_for("thread-7", "toolcall-42", "entry")` is deterministic: the same parts give the same
cloid in every process, so a retried action reuses its id and the exchange refuses a duplicate;
different parts (including a different split into parts) give different ids.
"""

from __future__ import annotations

import hashlib
import re

_CLOID = re.compile(r"^0x[0-9a-f]{32}$")


def cloid_for(*parts: str) -> str:
    """The cloid of the action named by `parts` (sha256 of the length-prefixed parts, first 16 bytes)."""
    if not parts:
        raise ValueError("cloid_for needs at least one part")
    digest = hashlib.sha256(b"revagent-cloid-v1")
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"cloid parts are strings, got {type(part).__name__}")
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return "0x" + digest.digest()[:16].hex()


def is_cloid(value: str) -> bool:
    """True for a well-formed cloid (`0x` + 32 lowercase hex digits)."""
    return bool(_CLOID.match(value))
