"""The records the mock keeps, and the one rule computed from them: ``derived_status``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from kontext_mock.core.durations import format_instant

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "STATUS_FILTERS",
    "AccessToken",
    "Application",
    "DerivedStatus",
    "OAuthClient",
    "Organization",
    "Page",
    "Session",
    "derived_status",
    "derived_until",
    "pick_sessions",
    "session_list_json",
]

Status = Literal["active", "disconnected"]
DerivedStatus = Literal["active", "idle", "expired", "disconnected"]
DisconnectReason = Literal["revoked", "agent", "timeout"]

CONNECTED: Status = "active"
DISCONNECTED: Status = "disconnected"

# What each value of the list endpoint's ``status`` filter admits (see openapi.yaml).
STATUS_FILTERS: dict[str, frozenset[str]] = {
    "active": frozenset({"active", "idle"}),
    "inactive": frozenset({"expired", "disconnected"}),
    "all": frozenset({"active", "idle", "expired", "disconnected"}),
}


def derived_status(
    status: str,
    token_expires_at: datetime | None,
    last_active_at: datetime | None,
    now: datetime,
    idle_after: timedelta,
) -> DerivedStatus:
    """The status a reader sees at ``now``.

    Precedence: disconnected, then expired (token expiry not after now), then idle
    (no activity for ``idle_after``), else active. A session with no recorded activity
    counts as idle: nothing says it was active recently.
    """
    return _derive(status, token_expires_at, last_active_at, now, now - idle_after)


def _derive(status: str, token_expires_at: datetime | None, last_active_at: datetime | None,
            now: datetime, idle_since: datetime) -> DerivedStatus:
    """The rule of :func:`derived_status` (:func:`pick_sessions` inlines it: keep the two
    alike); ``idle_since`` is ``now`` less the idle threshold (a list computes it once for
    all its sessions)."""
    if status == DISCONNECTED:
        return "disconnected"
    if token_expires_at is not None and token_expires_at <= now:
        return "expired"
    if last_active_at is None or last_active_at <= idle_since:
        return "idle"
    return "active"


@dataclass(slots=True)
class Organization:
    """An organization: owns applications and OAuth clients."""

    id: str
    name: str


@dataclass(slots=True)
class Application:
    """An application; its sessions are kept in the store's per-application index."""

    id: str
    organization_id: str
    name: str


@dataclass(slots=True)
class OAuthClient:
    """A client of ``/oauth2/token``. A client bound to an application can open agent sessions."""

    client_id: str
    client_secret: str
    organization_id: str
    scopes: frozenset[str]
    application_id: str | None = None
    name: str = ""


@dataclass(slots=True)
class AccessToken:
    """A bearer token; ``expires_at`` None means it never expires (the static dev token).
    ``audience``, ``user_id`` and ``grant`` are set on the MCP gateway's tokens only."""

    token: str
    client_id: str
    organization_id: str
    scopes: frozenset[str]
    application_id: str | None
    expires_at: datetime | None
    audience: str | None = None
    user_id: str | None = None
    #: the authorization code a gateway token descends from (through refreshes too): a
    #: reused code revokes them all
    grant: str | None = None


@dataclass(slots=True, eq=False)
class Session:
    """One session. Mutate it only through the store, which keeps indexes and caches right."""

    id: str
    application_id: str
    organization_id: str
    name: str
    status: Status
    created_at: datetime
    connected_at: datetime | None
    last_active_at: datetime | None
    token_expires_at: datetime | None
    disconnected_at: datetime | None = None
    disconnect_reason: DisconnectReason | None = None
    hostname: str | None = None
    user_agent: str | None = None
    client_info: dict[str, Any] | None = None
    client_session_id: str | None = None
    authenticated_user_id: str | None = None
    token_identifier: str | None = None
    # The serialized session: (derivedStatus it was written with, JSON bytes, where that
    # value starts in them). derivedStatus is the one field that moves with time without
    # the session changing, so only it is spliced in anew; the rest is rebuilt only after
    # the session changes.
    _json: tuple[str, bytes, int] | None = field(default=None, repr=False, compare=False)

    @property
    def sort_key(self) -> tuple[float, str]:
        """The list order: newest ``createdAt`` first, ties by ``id`` ascending."""
        return (-self.created_at.timestamp(), self.id)

    def derived_status(self, now: datetime, idle_after: timedelta) -> DerivedStatus:
        """This session's derivedStatus at ``now`` (:func:`derived_status`)."""
        return _derive(self.status, self.token_expires_at, self.last_active_at, now,
                       now - idle_after)

    def derived_span(self, derived: str, idle_after: timedelta
                     ) -> tuple[datetime | None, datetime | None]:
        """The instants at which this session, its fields as they are, has the derivedStatus
        ``derived``: from the first (None: any earlier) until just before the second (None:
        for ever). The rule of :func:`derived_status` read the other way round: expired
        from the token's expiry on, idle from the end of its activity until then, active
        before both. (A status the rule never gives from these fields spans nothing.)"""
        if self.status == DISCONNECTED:
            return (None, None) if derived == "disconnected" else _NEVER
        expires, active = self.token_expires_at, self.last_active_at
        if derived == "expired":
            return _NEVER if expires is None else (expires, None)
        if active is None:  # (no activity: idle until it expires, never active)
            return (None, expires) if derived == "idle" else _NEVER
        try:
            idle_at: datetime | None = active + idle_after
        except OverflowError:  # (a threshold past the last instant there is: never idle)
            idle_at = None
        if derived == "idle":
            return _NEVER if idle_at is None else (idle_at, expires)
        if derived == "active":
            if idle_at is None or (expires is not None and expires < idle_at):
                return None, expires
            return None, idle_at
        return _NEVER

    def read_holds(self, derived: str, idle_after: timedelta) -> Callable[[datetime], bool]:
        """Whether what this session reads as now (its JSON with ``derived``, made by
        :meth:`to_json`) is still what it reads at another instant: nothing changed since
        (every change drops the JSON made, :meth:`changed`) and the instant within
        :meth:`derived_span`. Call after :meth:`to_json`, with the lock it was read under."""
        since, until = self.derived_span(derived, idle_after)
        made = self._json
        if made is None:  # (no JSON made: nothing to hold to)
            return lambda now: False

        def holds(now: datetime) -> bool:
            return (self._json is made and (since is None or since <= now)
                    and (until is None or now < until))

        return holds

    def changed(self) -> None:
        """Drop the cached serialization; call after every change to a field."""
        self._json = None

    def to_public(self, derived: str) -> dict[str, Any]:
        """The API's Session object, given its derivedStatus."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "derivedStatus": derived,
            "tokenExpiresAt": _ts(self.token_expires_at),
            "lastActiveAt": _ts(self.last_active_at),
            "connectedAt": _ts(self.connected_at),
            "disconnectedAt": _ts(self.disconnected_at),
            "createdAt": format_instant(self.created_at),
            "agentId": self.application_id,
            "organizationId": self.organization_id,
            "hostname": self.hostname,
            "userAgent": self.user_agent,
            "clientInfo": self.client_info,
        }

    def to_json(self, derived: str) -> bytes:
        """The Session object as JSON bytes, from the cache when the session has not changed
        (no copy at all while its derivedStatus stays the same)."""
        cached = self._json
        if cached is not None:
            was, whole, start = cached
            if was == derived:
                return whole
            whole = whole[:start] + derived.encode() + whole[start + len(was):]
        else:
            # Copied to a bytes of its own size: orjson's result keeps its whole write buffer
            # (4 KiB or more), which the cache would hold for every session.
            whole = memoryview(orjson.dumps(self.to_public(derived))).tobytes()
            # The key can only occur as the key: a string value has its quotes escaped.
            start = whole.index(_DERIVED_KEY) + len(_DERIVED_KEY)
        self._json = (derived, whole, start)
        return whole

    def to_record(self) -> dict[str, Any]:
        """Every stored fact, for export; :meth:`from_record` reads it back."""
        record = self.to_public("")
        del record["derivedStatus"], record["agentId"]
        record.update(
            applicationId=self.application_id,
            disconnectReason=self.disconnect_reason,
            clientSessionId=self.client_session_id,
            authenticatedUserId=self.authenticated_user_id,
            tokenIdentifier=self.token_identifier,
        )
        return record


_DERIVED_KEY = b'"derivedStatus":"'


def pick_sessions(
    sessions: Iterable[Session], wanted: frozenset[str], limit: int, now: datetime,
    idle_after: timedelta,
) -> tuple[list[tuple[Session, DerivedStatus]], int]:
    """The first ``limit`` of ``sessions`` whose derivedStatus at ``now`` is in ``wanted``,
    each with it, and how many sessions were looked at."""
    picked: list[tuple[Session, DerivedStatus]] = []
    idle_since = now - idle_after  # no activity since then: idle
    scanned = 0
    derived: DerivedStatus
    for session in sessions:
        scanned += 1
        # (the rule of _derive, inline: the loop runs for every session a list passes)
        if session.status == DISCONNECTED:
            derived = "disconnected"
        elif (expires := session.token_expires_at) is not None and expires <= now:
            derived = "expired"
        elif (active := session.last_active_at) is None or active <= idle_since:
            derived = "idle"
        else:
            derived = "active"
        if derived in wanted:
            picked.append((session, derived))
            if len(picked) >= limit:
                break
    return picked, scanned


class Page(list[tuple[Session, DerivedStatus]]):
    """Listed sessions with their derived status, from a store's list cache: each reader
    gets a copy of its own; their JSON is made once and used while a copy reads the same."""

    __slots__ = ("_cell",)

    def __init__(self, rows: Iterable[tuple[Session, DerivedStatus]],
                 cell: list[Any] | None = None) -> None:
        super().__init__(rows)
        # [the rows as listed (never handed out), their JSON once made]
        self._cell: list[Any] = cell if cell is not None else [list(self), None]

    def fresh(self) -> Page:
        """A copy for another reader, sharing the JSON."""
        return Page(self._cell[0], self._cell)


def session_list_json(rows: Iterable[tuple[Session, str]]) -> bytes:
    """The list endpoint's ``{"items": [...]}`` body, copied once from the cached sessions
    (a :class:`Page`'s made once, while its reader left it as listed)."""
    cell = rows._cell if isinstance(rows, Page) else None
    if cell is not None and cell[1] is not None and rows == cell[0]:
        return cell[1]  # type: ignore[no-any-return]
    body = b'{"items":[' + b",".join([s.to_json(d) for s, d in rows]) + b"]}"
    if cell is not None and rows == cell[0]:
        cell[1] = body
    return body


#: a span of no instant (``Session.derived_span`` of a status the fields never give)
_NEVER: tuple[datetime | None, datetime | None] = (
    datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))


def derived_until(sessions: Iterable[Session], now: datetime, idle_after: timedelta
                  ) -> datetime | None:
    """The first instant after ``now`` at which one of ``sessions`` gets another derived
    status (an expiry, or the end of its activity); None: never, as time moves forward."""
    idle_since = now - idle_after
    until: datetime | None = None
    for session in sessions:
        if session.status == DISCONNECTED:
            continue
        expires = session.token_expires_at
        if expires is not None and expires > now and (until is None or expires < until):
            until = expires
        active = session.last_active_at
        if active is not None and active > idle_since:
            idle_at = active + idle_after
            if until is None or idle_at < until:
                until = idle_at
    return until


def _ts(instant: datetime | None) -> str | None:
    return None if instant is None else format_instant(instant)
