"""``KontextMock``: the one core behind the HTTP API, the CLI and the pytest plugin.

It owns the clock, the store and the event bus, and implements the behaviour model:
listing with derived-status filters, reading, revoke-all, agent sessions, and OAuth
tokens that expire on the mock's own clock.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .auth import KNOWN_SCOPES, covers, secrets_equal
from .clock import VirtualClock
from .config import MockConfig
from .durations import format_instant, parse_duration, parse_instant
from .errors import ApiError, NotFoundError, OAuthError, UnauthorizedError
from .events import EventBus
from .fakedata import SessionFaker, generate
from .model import (
    CONNECTED,
    DISCONNECTED,
    STATUS_FILTERS,
    AccessToken,
    Application,
    DerivedStatus,
    OAuthClient,
    Organization,
    Session,
)
from .store import Store, StoreSnapshot

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["KontextMock", "MockSnapshot"]

Duration = timedelta | str | int | float


@dataclass(frozen=True, slots=True)
class MockSnapshot:
    """Everything :meth:`KontextMock.restore` needs to return to a moment."""

    store: StoreSnapshot
    config: MockConfig
    now: datetime
    frozen: bool


class KontextMock:
    """A stateful mock of the Kontext sessions API, driven from Python or over HTTP.

    >>> mock = KontextMock(seed=7, now="2026-01-01T12:00:00Z", frozen=True)
    >>> app_id = mock.config.dev_application_id
    >>> before = len(mock.list_sessions(app_id))
    >>> _ = mock.advance("PT10M")   # sessions go idle, tokens expire
    """

    def __init__(self, config: MockConfig | None = None, **overrides: Any) -> None:
        if isinstance(overrides.get("now"), str):
            overrides["now"] = parse_instant(overrides["now"])
        for key in ("idle_after", "token_ttl", "session_token_ttl"):
            if isinstance(overrides.get(key), str | int | float):
                overrides[key] = parse_duration(overrides[key])
        base = config or MockConfig()
        self.config = base.with_changes(**overrides) if overrides else base
        if self.config.now is not None:
            self.clock = VirtualClock(self.config.now, frozen=self.config.frozen)
        else:
            self.clock = VirtualClock.system()
            if self.config.frozen:
                self.clock.freeze()
        self.store = Store()
        self.events = EventBus()
        self._app: Flask | None = None
        self.reset()

    # -- the HTTP face ---------------------------------------------------------------------

    @property
    def app(self) -> Flask:
        """The Flask (WSGI) application serving this mock, built on first use."""
        if self._app is None:
            from .app import create_app

            self._app = create_app(self)
        return self._app

    # -- state -----------------------------------------------------------------------------

    @property
    def idle_after(self) -> timedelta:
        """No activity for this long makes a connected session idle."""
        return self.config.idle_after

    def reset(
        self,
        *,
        seed: int | None = None,
        empty: bool = False,
        organizations: int | None = None,
        applications: int | None = None,
        sessions: int | None = None,
        status_mix: dict[str, float] | None = None,
    ) -> None:
        """Back to a seeded state (the configuration's, or with the given changes).

        ``empty=True`` keeps only the dev organization, application and credentials.
        Seeded times are placed relative to the clock's current instant.
        """
        changes = {
            k: v
            for k, v in dict(
                seed=seed, organizations=organizations, applications=applications,
                sessions=sessions, status_mix=status_mix,
            ).items()
            if v is not None
        }
        if changes:
            self.config = self.config.with_changes(**changes)
        config = self.config
        if empty:
            config = config.with_changes(organizations=0, sessions=0)
        population = generate(config, self.clock.now())
        with self.store.lock:
            self.store.clear()
            for org in population.organizations:
                self.store.add_organization(org)
            for app in population.applications:
                self.store.add_application(app)
            for client in population.clients:
                self.store.add_client(client)
            self.store.add_sessions(population.sessions)
            self.store.add_token(
                AccessToken(
                    token=self.config.dev_token,
                    client_id=self.config.dev_client_id,
                    organization_id=self.config.dev_organization_id,
                    scopes=self.config.dev_scopes,
                    application_id=self.config.dev_application_id,
                    expires_at=None,
                )
            )
        self.events.clear()
        self._faker = SessionFaker(config.seed + 1, config.idle_after)

    def snapshot(self) -> MockSnapshot:
        """Capture the state and the clock; :meth:`restore` returns to it in microseconds."""
        with self.store.lock:
            return MockSnapshot(self.store.snapshot(), self.config, self.clock.now(),
                                self.clock.frozen)

    def restore(self, snap: MockSnapshot) -> None:
        """Return to a snapshot: records, configuration and clock (event history cleared)."""
        with self.store.lock:
            self.store.restore(snap.store)
            self.config = snap.config
            self.clock.set(snap.now)
            if snap.frozen and not self.clock.frozen:
                self.clock.freeze()
            elif not snap.frozen and self.clock.frozen:
                self.clock.unfreeze()
            self.events.clear()

    def application_ids(self, organization_id: str | None = None) -> list[str]:
        """Ids of the applications (of one organization, if given), dev application first."""
        with self.store.lock:
            ids = [
                a.id for a in self.store.applications.values()
                if organization_id is None or a.organization_id == organization_id
            ]
        return sorted(ids, key=lambda i: (i != self.config.dev_application_id, i))

    # -- clock -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The mock's current instant."""
        return self.clock.now()

    def advance(self, duration: Duration) -> datetime:
        """Move the clock forward (``"PT10M"``, ``"10m"``, ``600`` or a timedelta)."""
        delta = duration if isinstance(duration, timedelta) else parse_duration(duration)
        return self.clock.advance(delta)

    def set_time(self, instant: datetime | str) -> datetime:
        """Move the clock to an instant."""
        return self.clock.set(parse_instant(instant))

    def freeze(self) -> datetime:
        """Stop the clock."""
        return self.clock.freeze()

    def unfreeze(self) -> datetime:
        """Let the clock run again."""
        return self.clock.unfreeze()

    # -- OAuth -----------------------------------------------------------------------------

    def authenticate(self, token: str) -> AccessToken:
        """The stored token for a bearer string; 401 when unknown or expired on the mock's clock."""
        found = self.store.tokens.get(token)
        if found is None:
            raise UnauthorizedError("unknown bearer token")
        if found.expires_at is not None and found.expires_at <= self.clock.now():
            raise UnauthorizedError("the bearer token has expired")
        return found

    def issue_token(
        self, client_id: str, client_secret: str, scope: str | None = None
    ) -> dict[str, Any]:
        """RFC 6749 client credentials: a token for a registered client, scoped as asked."""
        client = self.store.clients.get(client_id)
        # Compare even for unknown clients, so timing does not tell which ids exist.
        expected = client.client_secret if client else secrets.token_hex(16)
        if not secrets_equal(client_secret, expected) or client is None:
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        if scope is None or not scope.strip():
            granted = client.scopes
        else:
            wanted = frozenset(scope.split())
            unknown = sorted(wanted - KNOWN_SCOPES)
            if unknown:
                raise OAuthError(400, "invalid_scope", f"unknown scope: {' '.join(unknown)}")
            refused = sorted(s for s in wanted if not covers(client.scopes, s))
            if refused:
                raise OAuthError(
                    400, "invalid_scope", f"the client may not request: {' '.join(refused)}"
                )
            granted = wanted
        ttl = self.config.token_ttl
        token = AccessToken(
            token=secrets.token_urlsafe(32),
            client_id=client.client_id,
            organization_id=client.organization_id,
            scopes=granted,
            application_id=client.application_id,
            expires_at=self.clock.now() + ttl,
        )
        self.store.add_token(token)
        return {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": max(1, int(ttl.total_seconds())),
            "scope": " ".join(sorted(granted)),
        }

    # -- sessions: the management API --------------------------------------------------------

    def visible_application(self, application_id: str, organization_id: str | None) -> Application:
        """The application, if the caller's organization (None: any) owns it; else 404."""
        app = self.store.applications.get(application_id)
        if app is None or (organization_id is not None and app.organization_id != organization_id):
            raise NotFoundError(f"application {application_id} not found")
        return app

    def select_sessions(
        self, application_id: str, status: str = "active", limit: int = 100,
        organization_id: str | None = None,
    ) -> list[tuple[Session, DerivedStatus]]:
        """The application's sessions that pass the ``status`` filter, in list order, with
        their derived status. Call with the store's lock held to serialize consistently."""
        wanted = STATUS_FILTERS[status]
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            now, idle_after = self.clock.now(), self.config.idle_after
            picked: list[tuple[Session, DerivedStatus]] = []
            scanned = 0
            for session in self.store.application_sessions(application_id):
                scanned += 1
                derived = session.derived_status(now, idle_after)
                if derived in wanted:
                    picked.append((session, derived))
                    if len(picked) >= limit:
                        break
            self.store.sessions_scanned += scanned
            return picked

    def list_sessions(
        self, application_id: str, *, status: str = "active", limit: int = 100,
        organization_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """What ``GET .../sessions`` lists, as Session objects."""
        with self.store.lock:
            return [
                s.to_public(d)
                for s, d in self.select_sessions(application_id, status, limit, organization_id)
            ]

    def find_session(
        self, application_id: str, session_id: str, organization_id: str | None = None
    ) -> tuple[Session, DerivedStatus]:
        """The session and its derived status; 404 unless it belongs to this visible application."""
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            session = self.store.session_of(application_id, session_id)
            if session is None:
                raise NotFoundError(f"session {session_id} not found")
            return session, session.derived_status(self.clock.now(), self.config.idle_after)

    def get_session(
        self, application_id: str, session_id: str, organization_id: str | None = None
    ) -> dict[str, Any]:
        """What ``GET .../sessions/{id}`` answers, as a Session object."""
        with self.store.lock:
            session, derived = self.find_session(application_id, session_id, organization_id)
            return session.to_public(derived)

    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        """Disconnect every connected session of the application; how many changed."""
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            now = self.clock.now()
            changed = [
                s for s in self.store.application_sessions(application_id) if s.status == CONNECTED
            ]
            for session in changed:
                self._disconnect(session, now, "revoked")
        return len(changed)

    # -- sessions: the agent side ------------------------------------------------------------

    def open_session(
        self,
        application_id: str,
        *,
        token_identifier: str,
        authenticated_user_id: str,
        client_session_id: str,
        hostname: str | None = None,
        user_agent: str | None = None,
        client_info: dict[str, Any] | None = None,
    ) -> Session:
        """An agent connects: a new connected session, active now."""
        with self.store.lock:
            app = self.store.applications.get(application_id)
            if app is None:
                raise NotFoundError(f"application {application_id} not found")
            now = self.clock.now()
            name_base = (client_info or {}).get("name") or "mcp-client"
            session = Session(
                id=str(uuid.uuid4()),
                application_id=app.id,
                organization_id=app.organization_id,
                name=f"{name_base}@{hostname}" if hostname else f"{name_base} session",
                status=CONNECTED,
                created_at=now,
                connected_at=now,
                last_active_at=now,
                token_expires_at=now + self.config.session_token_ttl,
                hostname=hostname,
                user_agent=user_agent,
                client_info=client_info,
                client_session_id=client_session_id,
                authenticated_user_id=authenticated_user_id,
                token_identifier=token_identifier,
            )
            self.store.add_session(session)
            self._publish("session.created", session, now)
            return session

    def heartbeat(self, application_id: str, session_id: str) -> Session:
        """An agent's heartbeat: ``lastActiveAt`` becomes now. 409 when the session is gone."""
        with self.store.lock:
            session, derived = self.find_session(application_id, session_id)
            now = self.clock.now()
            if session.status == DISCONNECTED:
                reason = session.disconnect_reason or "agent"
                raise ApiError(
                    409, "session_disconnected",
                    f"the session was disconnected ({reason}); re-authenticate to open a new one",
                    reason=reason,
                )
            if derived == "expired":
                raise ApiError(
                    409, "session_expired",
                    "the session token has expired; re-authenticate to open a new one",
                    reason="expired",
                )
            session.last_active_at = now
            session.changed()
            self._publish("session.heartbeat", session, now)
            return session

    def disconnect(
        self, application_id: str, session_id: str, reason: str = "agent"
    ) -> Session:
        """End one session (idempotent: a disconnected session stays as it is)."""
        with self.store.lock:
            session, _ = self.find_session(application_id, session_id)
            if session.status == CONNECTED:
                self._disconnect(session, self.clock.now(), reason)
            return session

    # -- internals -------------------------------------------------------------------------

    def _disconnect(self, session: Session, now: datetime, reason: str) -> None:
        session.status = DISCONNECTED
        session.disconnected_at = now
        session.disconnect_reason = reason  # type: ignore[assignment]
        session.changed()
        self._publish("session.disconnected", session, now, reason=reason)

    def _publish(self, type_: str, session: Session, now: datetime, **extra: Any) -> None:
        self.events.publish(
            type_,
            now,
            {
                "sessionId": session.id,
                "applicationId": session.application_id,
                "organizationId": session.organization_id,
                "at": format_instant(now),
                **extra,
            },
        )

    def add_client(self, client: OAuthClient) -> OAuthClient:
        """Register an OAuth client."""
        return self.store.add_client(client)

    def add_organization(self, org: Organization) -> Organization:
        """Add an organization."""
        return self.store.add_organization(org)
