"""Records given by people: camelCase fields, times relative to now, and coherence.

The control plane (HTTP and Python), scenario files and state import all describe
sessions, clients and the rest in the API's camelCase words. This module reads those
records into the model, fakes what is not given, keeps the faked times in order around
the given ones, and refuses a record whose own facts do not hold together
(``createdAt <= connectedAt <= lastActiveAt <= disconnectedAt``, nothing after now,
``disconnectedAt`` exactly on disconnected sessions).
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from kontext_mock.core.credentials import KNOWN_SCOPES
from kontext_mock.core.durations import DurationError, format_instant, parse_duration, parse_instant
from kontext_mock.core.errors import UnprocessableError
from kontext_mock.core.fakedata import DERIVED_STATES, SessionFaker
from kontext_mock.core.nesting import JsonDepthError, json_depth
from kontext_mock.core.records import (
    CONNECTED,
    DISCONNECTED,
    AccessToken,
    Application,
    OAuthClient,
    Organization,
    Session,
)

__all__ = [
    "MAX_STORED_DEPTH",
    "SESSION_FIELDS",
    "RecordError",
    "application_record",
    "build_session",
    "check_session",
    "checked_client_info",
    "client_from_record",
    "client_record",
    "parse_time",
    "session_from_record",
    "token_from_record",
    "token_record",
    "unprocessable",
    "update_session",
]

_T = TypeVar("_T")

#: how deep a free-form value kept with a session (``clientInfo``) may nest: every document
#: that holds it stays far inside the 64 levels a JSON body may have (limits.MAX_JSON_DEPTH)
MAX_STORED_DEPTH = 16

# camelCase field -> Session attribute
SESSION_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "name",
    "status": "status",
    "createdAt": "created_at",
    "connectedAt": "connected_at",
    "lastActiveAt": "last_active_at",
    "tokenExpiresAt": "token_expires_at",
    "disconnectedAt": "disconnected_at",
    "disconnectReason": "disconnect_reason",
    "hostname": "hostname",
    "userAgent": "user_agent",
    "clientInfo": "client_info",
    "clientSessionId": "client_session_id",
    "authenticatedUserId": "authenticated_user_id",
    "tokenIdentifier": "token_identifier",
}
_TIMES = ("createdAt", "connectedAt", "lastActiveAt", "tokenExpiresAt", "disconnectedAt")
# The times that must be in this order, and not after now.
_ORDERED = ("createdAt", "connectedAt", "lastActiveAt", "disconnectedAt")
_REASONS = ("revoked", "agent", "timeout")
# Instants the mock accepts: far enough from datetime's ends that adding a century of
# durations never overflows.
_EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class RecordError(ValueError):
    """A field that cannot be read or does not fit with the others."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def unprocessable(make: Callable[[], _T], field: str | None = None) -> _T:
    """``make()``, with a RecordError (or ValueError) turned into the 422 it is, naming the
    field (``field.subfield`` when ``make`` names one inside ``field``)."""
    try:
        return make()
    except RecordError as exc:
        name = f"{field}.{exc.field}" if field and exc.field and exc.field != field else (
            exc.field or field)
        raise UnprocessableError([{"field": name, "message": exc.message}]) from None
    except ValueError as exc:
        raise UnprocessableError([{"field": field, "message": str(exc)}]) from None


def check_instant(instant: datetime, field: str | None = None) -> datetime:
    """The instant, if the mock can work with it (1971 to 9000); RecordError otherwise."""
    if not _EARLIEST <= instant <= _LATEST:
        raise RecordError(field, f"{format_instant(instant)} is out of range (1971 to 9000)")
    return instant


def parse_time(value: Any, now: datetime, field: str | None = None) -> datetime | None:
    """An instant from ISO 8601 text or a datetime, ``now``, or a signed duration from
    now (``-3m``, ``+PT1H``). None stays None."""
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            instant = parse_instant(value)
        elif isinstance(value, str) and value.strip().lower() == "now":
            instant = now
        elif isinstance(value, str) and value.strip()[:1] in "+-":
            instant = now + parse_duration(value, allow_negative=True)
        elif isinstance(value, str):
            instant = parse_instant(value)
        else:
            raise RecordError(field, f"expected a time (ISO 8601, now, or like -3m), not {value!r}")
    except (DurationError, OverflowError) as exc:
        raise RecordError(field, str(exc)) from None
    return check_instant(instant.replace(microsecond=instant.microsecond // 1000 * 1000), field)


def checked_client_info(value: Mapping[str, Any]) -> dict[str, Any]:
    """``clientInfo`` as stored: JSON that nests at most :data:`MAX_STORED_DEPTH` levels, so
    that every document holding it (an answer, a state export, the state file) is JSON the
    mock itself reads back. RecordError otherwise."""
    try:
        json_depth(value, MAX_STORED_DEPTH)
        orjson.dumps(value)
    except JsonDepthError:
        raise RecordError("clientInfo", f"nests deeper than {MAX_STORED_DEPTH} levels") from None
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise RecordError("clientInfo", f"is not JSON data: {exc}") from None
    return dict(value)


def _check_fields(fields: Mapping[str, Any], allowed: Mapping[str, str]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise RecordError(unknown[0], f"unknown session field (known: {', '.join(allowed)})")


def _set(session: Session, fields: Mapping[str, Any], now: datetime) -> None:
    for name, value in fields.items():
        attr = SESSION_FIELDS[name]
        if name in _TIMES:
            value = parse_time(value, now, name)
        elif name == "status" and value not in (CONNECTED, DISCONNECTED):
            raise RecordError(name, f"must be active or disconnected, not {value!r}")
        elif name == "disconnectReason" and value is not None and value not in _REASONS:
            raise RecordError(name, f"must be one of {', '.join(_REASONS)}, not {value!r}")
        elif name == "id":
            value = _uuid(value, name)
        elif name == "clientInfo" and value is not None:
            if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
                raise RecordError(name, "must be an object with a name (MCP clientInfo)")
            value = checked_client_info(value)
        elif name == "name" and (not isinstance(value, str) or not value):
            raise RecordError(name, "must be a non-empty string")
        elif value is not None and not isinstance(value, str):
            raise RecordError(name, f"must be a string or null, not {value!r}")
        setattr(session, attr, value)


def _uuid(value: Any, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise RecordError(field, f"must be a UUID, not {value!r}") from None


def _keep_order(session: Session, explicit: set[str]) -> None:
    """Move faked times so they keep their order around the given ones."""
    attrs = [SESSION_FIELDS[f] for f in _ORDERED]
    values: list[datetime | None] = [getattr(session, a) for a in attrs]
    given = [f in explicit for f in _ORDERED]
    for i, value in enumerate(values):
        if not given[i] and value is not None:
            later = [v for j, v in enumerate(values) if j > i and given[j] and v is not None]
            if later:
                values[i] = min(value, *later)
    for i, value in enumerate(values):
        if not given[i] and value is not None:
            earlier = [v for v in values[:i] if v is not None]
            if earlier:
                values[i] = max(value, *earlier)
    for attr, value in zip(attrs, values, strict=True):
        setattr(session, attr, value)


def _active_before_expiry(session: Session, explicit: set[str]) -> None:
    """Move faked times that fall after a given token expiry back to it: nothing was
    active on a dead token. (Given times stay as given.)"""
    expires = session.token_expires_at
    if "tokenExpiresAt" not in explicit or expires is None:
        return
    floor: datetime | None = None  # a given earlier time still comes first
    for field in ("createdAt", "connectedAt", "lastActiveAt"):
        attr = SESSION_FIELDS[field]
        value = getattr(session, attr)
        if field in explicit:
            floor = value if value is not None else floor
        elif value is not None and value > expires:
            setattr(session, attr, max(expires, floor) if floor is not None else expires)


def _check_order(named: list[tuple[str, datetime]]) -> None:
    for (first, a), (second, b) in itertools.pairwise(named):
        if a > b:
            raise RecordError(
                second,
                f"times out of order: {second} ({format_instant(b)}) is before {first}"
                f" ({format_instant(a)}); they must keep createdAt <= connectedAt <="
                " lastActiveAt <= disconnectedAt",
            )


def check_session(session: Session, now: datetime | None) -> None:
    """RecordError unless the session's facts hold together (and, given ``now``, none of
    its times is after it)."""
    named = [(f, getattr(session, SESSION_FIELDS[f])) for f in _ORDERED]
    present = [(f, t) for f, t in named if t is not None]
    for field, instant in present:
        if now is not None and instant > now:
            raise RecordError(field, f"{format_instant(instant)} is after now ({format_instant(now)})")
    _check_order(present)
    if session.status == DISCONNECTED and session.disconnected_at is None:
        raise RecordError("disconnectedAt", "a disconnected session needs disconnectedAt")
    if session.status == CONNECTED and session.disconnected_at is not None:
        raise RecordError("disconnectedAt", "only a disconnected session has disconnectedAt")
    if session.status == CONNECTED and session.disconnect_reason is not None:
        raise RecordError("disconnectReason", "only a disconnected session has a disconnectReason")


def build_session(
    faker: SessionFaker,
    application: Application,
    state: str,
    fields: Mapping[str, Any],
    now: datetime,
) -> Session:
    """A session of ``application``: ``fields`` as given, the rest faked for ``state`` at
    ``now`` and placed around the given times. RecordError when it does not hold together."""
    _check_fields(fields, SESSION_FIELDS)
    if state not in DERIVED_STATES:
        raise RecordError("state", f"must be one of {', '.join(DERIVED_STATES)}, not {state!r}")
    if state == "active" and (
        fields.get("status") == DISCONNECTED or fields.get("disconnectedAt") is not None
    ):
        state = "disconnected"  # the given facts say so; fake a disconnected session
    session = faker.session(application, state, now)
    _set(session, fields, now)
    explicit = set(fields)
    if session.status == CONNECTED and "disconnectedAt" not in explicit:
        session.disconnected_at = None
        if "disconnectReason" not in explicit:
            session.disconnect_reason = None
    if session.status == DISCONNECTED and session.disconnected_at is None:
        session.disconnected_at = now
    if session.status == DISCONNECTED and "disconnectReason" not in explicit and not (
        session.disconnect_reason
    ):
        session.disconnect_reason = "agent"
    if "hostname" in explicit and "name" not in explicit:
        client = (session.client_info or {}).get("name") or "mcp-client"
        session.name = f"{client}@{session.hostname}" if session.hostname else f"{client} session"
    # Given times out of order are the caller's mistake: name them, not the faked ones.
    _check_order([(f, t) for f in _ORDERED if f in explicit
                  and (t := getattr(session, SESSION_FIELDS[f])) is not None])
    _keep_order(session, explicit)
    _active_before_expiry(session, explicit)
    check_session(session, now)
    session.changed()
    return session


def update_session(session: Session, fields: Mapping[str, Any], now: datetime) -> Session:
    """A changed copy of ``session`` (the original is untouched); RecordError when the
    result does not hold together. Disconnecting sets ``disconnectedAt`` (default now) and
    a reason (default ``agent``); reconnecting clears them."""
    allowed = {k: v for k, v in SESSION_FIELDS.items() if k != "id"}
    _check_fields(fields, allowed)
    changed = copy.copy(session)
    _set(changed, fields, now)
    status_given = "status" in fields
    if not status_given and fields.get("disconnectedAt") is not None:
        changed.status = DISCONNECTED
    if changed.status == DISCONNECTED and session.status == CONNECTED:
        if changed.disconnected_at is None:
            changed.disconnected_at = now
        if changed.disconnect_reason is None:
            changed.disconnect_reason = "agent"
    elif changed.status == CONNECTED and session.status == DISCONNECTED:
        if "disconnectedAt" not in fields:
            changed.disconnected_at = None
        if "disconnectReason" not in fields:
            changed.disconnect_reason = None
    check_session(changed, now)
    changed.changed()
    return changed


# -- export and import ---------------------------------------------------------------------


def session_from_record(record: Mapping[str, Any]) -> Session:
    """A session from :meth:`Session.to_record` (exported state); RecordError when unreadable."""
    def instant(field: str) -> datetime | None:
        value = record.get(field)
        if value is None:
            return None
        try:
            return check_instant(parse_instant(value), field)
        except (DurationError, TypeError, OverflowError) as exc:
            raise RecordError(field, str(exc)) from None

    created = instant("createdAt")
    if created is None:
        raise RecordError("createdAt", "is required")
    session = Session(
        id=_uuid(record.get("id"), "id"),
        application_id=_uuid(record.get("applicationId"), "applicationId"),
        organization_id=str(record.get("organizationId")),
        name=str(record.get("name")),
        status=record.get("status"),  # type: ignore[arg-type]
        created_at=created,
        connected_at=instant("connectedAt"),
        last_active_at=instant("lastActiveAt"),
        token_expires_at=instant("tokenExpiresAt"),
        disconnected_at=instant("disconnectedAt"),
    )
    _set(session, {k: record.get(k) for k in (
        "status", "disconnectReason", "hostname", "userAgent", "clientInfo",
        "clientSessionId", "authenticatedUserId", "tokenIdentifier",
    )}, created)
    # Not against now: a clock set back may leave times after it, and that state exports.
    check_session(session, None)
    return session


def application_record(app: Application) -> dict[str, Any]:
    """An application as data."""
    return {"id": app.id, "organizationId": app.organization_id, "name": app.name}


def client_record(client: OAuthClient, *, secret: bool = True) -> dict[str, Any]:
    """An OAuth client as data (with its secret only when ``secret``)."""
    record: dict[str, Any] = {
        "clientId": client.client_id,
        "organizationId": client.organization_id,
        "applicationId": client.application_id,
        "scopes": sorted(client.scopes),
        "name": client.name,
    }
    if secret:
        record["clientSecret"] = client.client_secret
    return record


def scopes_of(value: Any, field: str = "scopes") -> frozenset[str]:
    """Known management scopes from a list (RecordError for anything else)."""
    if not isinstance(value, list | tuple | set | frozenset) or not value:
        raise RecordError(field, "must be a non-empty list of scopes")
    unknown = sorted(str(s) for s in value if s not in KNOWN_SCOPES)
    if unknown:
        raise RecordError(field, f"unknown scope {unknown[0]!r} (known: {', '.join(sorted(KNOWN_SCOPES))})")
    return frozenset(value)


def client_from_record(record: Mapping[str, Any]) -> OAuthClient:
    """An OAuth client from :func:`client_record`."""
    client_id = record.get("clientId")
    secret = record.get("clientSecret")
    if not isinstance(client_id, str) or not client_id:
        raise RecordError("clientId", "must be a non-empty string")
    if not isinstance(secret, str) or not secret:
        raise RecordError("clientSecret", "must be a non-empty string")
    app_id = record.get("applicationId")
    return OAuthClient(
        client_id=client_id,
        client_secret=secret,
        organization_id=str(record.get("organizationId")),
        scopes=scopes_of(record.get("scopes")),
        application_id=None if app_id is None else _uuid(app_id, "applicationId"),
        name=str(record.get("name") or ""),
    )


def token_record(token: AccessToken) -> dict[str, Any]:
    """A bearer token as data."""
    return {
        "token": token.token,
        "clientId": token.client_id,
        "organizationId": token.organization_id,
        "applicationId": token.application_id,
        "scopes": sorted(token.scopes),
        "expiresAt": None if token.expires_at is None else format_instant(token.expires_at),
    }


def token_from_record(record: Mapping[str, Any]) -> AccessToken:
    """A bearer token from :func:`token_record`."""
    expires = record.get("expiresAt")
    try:
        expires_at = None if expires is None else parse_instant(expires)
    except DurationError as exc:
        raise RecordError("expiresAt", str(exc)) from None
    return AccessToken(
        token=str(record.get("token")),
        client_id=str(record.get("clientId")),
        organization_id=str(record.get("organizationId")),
        scopes=scopes_of(record.get("scopes")),
        application_id=record.get("applicationId"),
        expires_at=expires_at,
    )


def organization_record(org: Organization) -> dict[str, Any]:
    """An organization as data."""
    return {"id": org.id, "name": org.name}
