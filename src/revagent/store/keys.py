"""The keyspace: every Redis key revagent uses is named here and nowhere else.

A session's keys carry its identity as a hash tag, `rev:{paper:0xabc...}:notes`, so one session
lives in one Redis Cluster slot and its multi-key transactions stay legal. Host-wide keys (the
schema version, the shared rate budget) live under `rev:global:` and `rev:host:`; the rate budget's
keys share their own tag (`rev:host:{host:upstream}:rate:...`), and no transaction or script ever
mixes a host-wide key with a session's (tests/e2e/test_cluster_session.py runs on a real cluster).
"""

from __future__ import annotations

from revagent.models import SessionId

SCHEMA_VERSION = 1
SCHEMA_KEY = "rev:global:schema"
SESSIONS_KEY = "rev:global:sessions"


class Keyspace:
    """Key names of one wallet session."""

    __slots__ = ("prefix", "sid")

    def __init__(self, sid: SessionId) -> None:
        self.sid = sid
        self.prefix = f"rev:{{{sid}}}:"

    def key(self, name: str) -> str:
        return self.prefix + name

    # One hash per concept: field = id, value = the model's JSON.
    @property
    def notes(self) -> str:
        return self.prefix + "notes"

    @property
    def watchers(self) -> str:
        return self.prefix + "watchers"

    @property
    def time_alerts(self) -> str:
        return self.prefix + "time_alerts"

    @property
    def time_alerts_due(self) -> str:
        """Sorted set: time alert id scored by its next fire time (epoch seconds)."""
        return self.prefix + "time_alerts:due"

    @property
    def settings(self) -> str:
        """Hash of runtime setting overrides (`risk.max_leverage` -> JSON value)."""
        return self.prefix + "settings"

    @property
    def risk_state(self) -> str:
        return self.prefix + "risk_state"

    @property
    def lease(self) -> str:
        return self.prefix + "lease"

    @property
    def lease_fence(self) -> str:
        return self.prefix + "lease:fence"

    @property
    def commands(self) -> str:
        return self.prefix + "commands"

    def turn_image(self, thread_id: str, turn_id: str) -> str:
        """JSON `{"media_type", "data_b64"}`: a running turn's alert-brief chart, kept (a day's TTL)
        so a resumed turn replays its user message byte for byte; deleted when the turn ends."""
        return self.prefix + f"thread:{thread_id}:image:{turn_id}"

    def reply(self, command_id: str) -> str:
        return self.prefix + f"reply:{command_id}"

    @property
    def events(self) -> str:
        """Pub/sub channel mirroring selected bus events and every store invalidation."""
        return self.prefix + "events"

    @property
    def meta(self) -> str:
        """Hash: wallet name, created time, schema version of this session's data."""
        return self.prefix + "meta"

    @property
    def account_view(self) -> str:
        """JSON: the last account view a screen showed, with its risk status and usage (`account_views`)."""
        return self.prefix + "account_view"

    @property
    def owner_status(self) -> str:
        """Hash a daemon keeps current: its start-up phase, sync phase and reason, its pid, when."""
        return self.prefix + "owner_status"


def supervisor_key(egress: str) -> str:
    """Hash of a `daemon --all` supervisor's children on one egress address: wallet -> JSON state."""
    return f"rev:host:{{{egress}}}:supervisor"
