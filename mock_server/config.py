"""How a mock is set up: seed, population, thresholds and the well-known dev credentials."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from kontext_mock.core.durations import parse_duration, parse_instant

__all__ = ["DEFAULT_STATUS_MIX", "DEV_SCOPES", "MockConfig"]

DEFAULT_STATUS_MIX: dict[str, float] = {
    "active": 0.5,
    "idle": 0.2,
    "expired": 0.1,
    "disconnected": 0.2,
}
DEV_SCOPES: frozenset[str] = frozenset({"management:all"})


@dataclass(frozen=True, slots=True)
class MockConfig:
    """Everything that shapes a mock. Every field has a default; the CLI and env override them.

    ``idle_after`` and ``session_token_ttl`` are the mock's answers to rules the public
    material does not state (see openapi.yaml's "Assumption" notes).
    """

    seed: int = 1
    #: seeded organizations besides the dev organization
    organizations: int = 1
    #: applications per seeded organization (the dev organization has the dev application)
    applications: int = 2
    #: sessions per application, the dev application included
    sessions: int = 20
    status_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STATUS_MIX))
    #: a virtual clock starting here; None starts at the system's time
    now: datetime | None = None
    #: the clock moves only when told to
    frozen: bool = False
    #: no activity for this long makes a connected session idle (assumption)
    idle_after: timedelta = timedelta(minutes=5)
    #: lifetime of tokens from /oauth2/token
    token_ttl: timedelta = timedelta(hours=1)
    #: lifetime of a session token opened through the agent endpoints (assumption)
    session_token_ttl: timedelta = timedelta(hours=1)
    #: validate every response against the spec and answer 500 on a mismatch
    strict: bool = False
    #: largest request body accepted, in bytes (413 JSON above it)
    max_body_bytes: int = 64 * 1024
    #: largest request header block accepted, in bytes (431 JSON above it); the HTTP
    #: server's own hard limits sit above these (see serve.py)
    max_header_bytes: int = 16 * 1024
    #: browser origins allowed by CORS; empty: CORS off (no Access-Control-* headers)
    cors_origins: tuple[str, ...] = ()
    #: the address the HTTP server is bound to; off loopback the control plane needs an
    #: admin token
    host: str = "127.0.0.1"
    #: the control plane's bearer token; None: open, on loopback only
    admin_token: str | None = None
    #: folders searched for scenario names before ``fixtures/scenarios``
    scenario_dirs: tuple[str, ...] = ()
    #: the most sessions the mock holds: every way of making one stops there (409)
    max_sessions: int = 100_000
    #: public API requests kept in the journal
    journal_size: int = 10_000
    #: end every event stream after this long (None: when its client goes)
    event_stream_max: timedelta | None = None
    #: event streams open at once; past this a stream is refused 503 with Retry-After
    max_event_streams: int = 100
    #: Host names answered besides loopback names while the mock listens on loopback
    allowed_hosts: tuple[str, ...] = ()
    dev_organization_id: str = "0b8d6c84-5f2e-4c1a-9d3e-1f7a2b3c4d5e"
    dev_organization_name: str = "Kontext Dev"
    # The application and session ids of the vendor's own examples, so that the docs'
    # curl lines work against the mock as written.
    dev_application_id: str = "550e8400-e29b-41d4-a716-446655440000"
    dev_application_name: str = "Dev Application"
    dev_session_id: str = "44444444-4444-4444-8444-444444444444"
    dev_client_id: str = "dev-client"
    dev_client_secret: str = "dev-secret"  # noqa: S105 - a documented, public dev secret
    dev_token: str = "dev-token"  # noqa: S105 - a documented, public dev token
    dev_scopes: frozenset[str] = DEV_SCOPES

    def with_changes(self, **changes: Any) -> MockConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> MockConfig:
        """Defaults, then ``KONTEXT_MOCK_<FIELD>`` environment variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"KONTEXT_MOCK_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _from_text(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _from_text(name: str, raw: str) -> Any:
    """Read one configuration field from its text form (environment variables)."""
    default = getattr(MockConfig(), name)
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, timedelta):
        return parse_duration(raw)
    if name == "now":
        return parse_instant(raw)
    if name == "event_stream_max":
        return parse_duration(raw)
    if isinstance(default, frozenset):
        return frozenset(raw.split())
    if isinstance(default, tuple):
        return tuple(raw.split())
    if isinstance(default, dict):
        return {k: float(v) for k, v in (p.split("=", 1) for p in raw.split(","))}
    return raw
