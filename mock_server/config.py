"""How a mock is set up (:class:`MockConfig`), and the one set of rules that reads a setting.

Every way of configuring a mock reads its values here: environment variables
(:meth:`MockConfig.from_env`), ``kontext-mock serve``'s options, the pytest plugin's
marker, options and ini keys, and ``KontextMock(**overrides)``. Each field has one
reader (:data:`FIELD_READERS`); a reader takes a Python value or its text form, and a
value it cannot use is refused with one :class:`ConfigError` whose message names the
field, the value and what would do, whichever way it came in::

    strict='ture': expected true or false (or 1/0, yes/no, on/off)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kontext_mock.core.durations import parse_duration, parse_instant

__all__ = [
    "DEFAULT_STATUS_MIX",
    "DEV_SCOPES",
    "FIELD_READERS",
    "FLUSH_INTERVAL",
    "STATES",
    "ConfigError",
    "MockConfig",
    "OriginError",
    "Reader",
    "check_origin",
    "env_name",
    "optional",
    "read_bool",
    "read_count",
    "read_duration",
    "read_field",
    "read_fields",
    "read_instant",
    "read_int",
    "read_status_mix",
    "read_text",
]

#: the derived states a status mix weighs
STATES = ("active", "idle", "expired", "disconnected")
DEFAULT_STATUS_MIX: dict[str, float] = {
    "active": 0.5,
    "idle": 0.2,
    "expired": 0.1,
    "disconnected": 0.2,
}
DEV_SCOPES: frozenset[str] = frozenset({"management:all"})
#: how often a state file writes changes made without a request (a running clock playing
#: lifecycles), in seconds (``serve --state-interval``)
FLUSH_INTERVAL = 1.0


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
    #: the user the authorization endpoint approves at once, with no page to click
    oauth_dev_user: str = "dev-user"
    #: redirect URIs every application's public client accepts besides loopback http ones
    oauth_redirect_uris: tuple[str, ...] = ()
    #: refuse an MCP ``initialize`` whose ``clientInfo`` has no ``sessionId``, as the
    #: hosted gateway does (off: stock MCP SDK clients cannot send one)
    mcp_require_client_session_id: bool = False
    #: refuse (406) a request to ``/mcp`` whose ``Accept`` does not take both
    #: application/json and text/event-stream (``POST``) or text/event-stream (``GET``), as
    #: the MCP transport asks of clients and the SDKs' servers do (an assumption,
    #: mcp-require-accept: on by default)
    mcp_require_accept: bool = True
    #: an authorization code redeemed a second time revokes the tokens issued from it, and
    #: those refreshed from them (RFC 6749 4.1.2's SHOULD; an assumption,
    #: oauth-code-reuse-revokes: on by default; off, a reuse is only refused)
    oauth_code_reuse_revokes: bool = True

    def with_changes(self, **changes: Any) -> MockConfig:
        """A copy with some fields changed (values as the fields hold them; to read text
        or check values first, pass them through :func:`read_fields`)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> MockConfig:
        """Defaults, then ``KONTEXT_MOCK_<FIELD>`` environment variables, then ``overrides``
        (None: not given). Every value goes through the field's reader; :class:`ConfigError`
        names the variable (or the field, for an override) and what was wrong."""
        env = os.environ if environ is None else environ
        given = {name: env[env_name(name)] for name in FIELD_READERS if env_name(name) in env}
        values = read_fields(given, sources={name: env_name(name) for name in given})
        values.update(read_fields({k: v for k, v in overrides.items() if v is not None}))
        return cls(**values)


def env_name(name: str) -> str:
    """The environment variable of a field: ``idle_after`` -> ``KONTEXT_MOCK_IDLE_AFTER``."""
    return f"KONTEXT_MOCK_{name.upper()}"


# -- reading values ------------------------------------------------------------------------


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it, shows the value and says what
    would do. ``key`` is the setting's name (None for a problem with no one key)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


#: reads one value, given as a Python value or as text; ``ValueError`` says what would do
Reader = Callable[[object], Any]
_T = TypeVar("_T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_WHOLE = re.compile(r"[-+]?\d+")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def read_bool(value: object) -> bool:
    """``True``/``False``, or text: 1/0, true/false, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false (or 1/0, yes/no, on/off)")


def read_int(value: object) -> int:
    """A whole number, or its text (``"7"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value)
    raise ValueError("expected a whole number")


def read_count(value: object) -> int:
    """A whole number of 0 or more."""
    number = read_int(value)
    if number < 0:
        raise ValueError("expected a count of 0 or more")
    return number


def _read_size(value: object) -> int:
    number = read_int(value)
    if number < 1:
        raise ValueError("expected a whole number of 1 or more")
    return number


def read_duration(value: object) -> timedelta:
    """A ``timedelta``, seconds, or text: ISO 8601 (``PT10M``) or compact (``1h30m``)."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration must not be negative")
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)  # its DurationError (a ValueError) says what would do
    raise ValueError("expected a duration like 90, PT10M or 1h30m")


def read_instant(value: object) -> datetime:
    """An aware ``datetime``, or ISO 8601 text (``2026-01-01T12:00:00Z``); naive is UTC."""
    if isinstance(value, str | datetime):
        return parse_instant(value)
    raise ValueError("expected an instant like 2026-01-01T12:00:00Z")


def read_status_mix(value: object) -> dict[str, float]:
    """Weights of the derived states: a mapping, or text like ``active=0.5,idle=0.5``."""
    problem = f"expected weights of {', '.join(STATES)} like active=0.5,idle=0.5"
    if isinstance(value, str):
        pairs = [part.split("=", 1) for part in value.split(",")]
        if not all(len(pair) == 2 for pair in pairs):
            raise ValueError(problem)
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, Mapping) or not value:
        raise ValueError(problem)
    unknown = sorted(str(k) for k in value if k not in STATES)
    if unknown:
        raise ValueError(f"unknown state {', '.join(unknown)} ({problem})")
    mix: dict[str, float] = {}
    for state, weight in value.items():
        if isinstance(weight, bool) or not (
            isinstance(weight, int | float) or (isinstance(weight, str) and _NUMBER.fullmatch(weight))
        ):
            raise ValueError(f"{state}: expected a weight of 0 or more ({problem})")
        mix[state] = float(weight)
        if not 0 <= mix[state] <= 1000:
            raise ValueError(f"{state}: expected a weight from 0 to 1000")
    return mix


def read_text(value: object) -> str:
    """Text that is not empty."""
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError("expected text that is not empty")


def _words(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Iterable) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("expected names separated by spaces, or a list of them")


# scheme://host[:port] with no path: what a browser sends in its Origin header.
_ORIGIN = re.compile(
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)


class OriginError(ValueError):
    """An origin that is not ``scheme://host[:port]``."""


def check_origin(origin: str) -> str:
    """``origin`` without a trailing slash; :class:`OriginError` unless it is an exact origin
    (what ``cors_origins`` may hold)."""
    value = origin.strip().rstrip("/")
    if not _ORIGIN.match(value):
        raise OriginError(
            f"not an origin: {origin!r} (give scheme://host[:port], e.g. http://localhost:3000;"
            " wildcards and paths are not accepted)"
        )
    return value


def _read_origins(value: object) -> tuple[str, ...]:
    return tuple(check_origin(origin) for origin in _words(value))


def _read_scopes(value: object) -> frozenset[str]:
    return frozenset(_words(value))


def optional(reader: Callable[[object], _T]) -> Callable[[object], _T | None]:
    """``reader``, with None for "none"."""

    def read(value: object) -> _T | None:
        return None if value is None else reader(value)

    read.__doc__ = f"None, or {reader.__doc__ or 'a value'}"
    return read


#: every field of :class:`MockConfig`, with the function that reads its value
FIELD_READERS: dict[str, Reader] = {
    "seed": read_int,
    "organizations": read_count,
    "applications": read_count,
    "sessions": read_count,
    "status_mix": read_status_mix,
    "now": optional(read_instant),
    "frozen": read_bool,
    "idle_after": read_duration,
    "token_ttl": read_duration,
    "session_token_ttl": read_duration,
    "strict": read_bool,
    "max_body_bytes": _read_size,
    "max_header_bytes": _read_size,
    "cors_origins": _read_origins,
    "host": read_text,
    "admin_token": optional(read_text),
    "scenario_dirs": _words,
    "max_sessions": read_count,
    "journal_size": read_count,
    "event_stream_max": optional(read_duration),
    "max_event_streams": read_count,
    "allowed_hosts": _words,
    "dev_organization_id": read_text,
    "dev_organization_name": read_text,
    "dev_application_id": read_text,
    "dev_application_name": read_text,
    "dev_session_id": read_text,
    "dev_client_id": read_text,
    "dev_client_secret": read_text,
    "dev_token": read_text,
    "dev_scopes": _read_scopes,
    "oauth_dev_user": read_text,
    "oauth_redirect_uris": _words,
    "mcp_require_client_session_id": read_bool,
    "mcp_require_accept": read_bool,
    "oauth_code_reuse_revokes": read_bool,
}
assert set(FIELD_READERS) == {f.name for f in fields(MockConfig)}, "a field without a reader"


def _shown(value: object) -> str:
    # A number typed on a command line and the same number in Python read alike.
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return value.strip()
    return repr(value)


def read_field(key: str, value: object, readers: Mapping[str, Reader] = FIELD_READERS) -> Any:
    """One setting, read by its reader: ``read_field("idle_after", "2m")`` -> 2 minutes.
    :class:`ConfigError` (``idle_after='soon': not a duration ...``) when it cannot be used."""
    if key not in readers:
        raise ConfigError(f"unknown key {key} (known: {', '.join(readers)})", key)
    try:
        return readers[key](value)
    except ValueError as exc:
        raise ConfigError(f"{key}={_shown(value)}: {exc}", key) from None


def read_fields(values: Mapping[str, object], readers: Mapping[str, Reader] = FIELD_READERS,
                *, sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Several settings, every key and value checked (unknown keys first).

    ``sources`` names where a key's value came from (``--idle-after``,
    ``KONTEXT_MOCK_IDLE_AFTER``); its error then starts with it.
    """
    unknown = sorted(set(values) - set(readers))
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
            f" (known: {', '.join(readers)})", unknown[0])
    read: dict[str, Any] = {}
    for key, value in values.items():
        try:
            read[key] = read_field(key, value, readers)
        except ConfigError as exc:
            source = (sources or {}).get(key)
            if source is None:
                raise
            raise ConfigError(f"{source}: {exc}", key) from None
    return read
