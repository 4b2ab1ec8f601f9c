"""``KontextMock``: the one core behind the HTTP API, the CLI and the pytest plugin.

It owns the clock, the store and the event bus, and implements the behaviour model:
listing with derived-status filters, reading, revoke-all, agent sessions, and OAuth
tokens that expire on the mock's own clock. It is also the control plane in Python:
clock moves that play lifecycles, reset and seed, explicit data, scenarios, state export
and import, faults, the rate limit and the request journal (``control_api`` serves the
same operations over HTTP).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kontext_mock.config import MockConfig
from kontext_mock.core import scenarios as scenario_files
from kontext_mock.core.clock import ClockError, VirtualClock
from kontext_mock.core.credentials import KNOWN_SCOPES, covers, secrets_equal
from kontext_mock.core.durations import format_instant, parse_duration, parse_instant
from kontext_mock.core.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    OAuthError,
    UnauthorizedError,
    UnprocessableError,
    ValidationError,
)
from kontext_mock.core.events import EventBus
from kontext_mock.core.fakedata import SessionFaker, generate
from kontext_mock.core.faults import Faults
from kontext_mock.core.fields import (
    SESSION_FIELDS,
    RecordError,
    application_record,
    build_session,
    check_instant,
    checked_client_info,
    client_record,
    scopes_of,
    update_session,
)
from kontext_mock.core.journal import Journal
from kontext_mock.core.lifecycles import Lifecycles, script_from_spec
from kontext_mock.core.ratelimit import PRODUCTION_PER_MINUTE, RateLimiter
from kontext_mock.core.records import (
    CONNECTED,
    DISCONNECTED,
    STATUS_FILTERS,
    AccessToken,
    Application,
    DerivedStatus,
    OAuthClient,
    Organization,
    Session,
    pick_sessions,
)
from kontext_mock.core.statedoc import export_state, read_state
from kontext_mock.core.store import Store, StoreError, StoreSnapshot

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["KontextMock", "MockSnapshot"]

Duration = timedelta | str | int | float
_T = TypeVar("_T")

#: issued tokens kept before the mock first looks for long-expired ones to forget
TOKEN_SWEEP_FROM = 10_000
#: how long an expired token is still known (and answers "expired", not "unknown")
TOKEN_MEMORY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MockSnapshot:
    """Everything :meth:`KontextMock.restore` needs to return to a moment."""

    store: StoreSnapshot
    config: MockConfig
    now: datetime
    frozen: bool
    faults: tuple[dict[str, Any], ...] = ()
    faults_made: int = 0
    rate_limit: int | None = None
    scripts: tuple[Any, ...] = ()
    horizon: datetime | None = None
    sessions_made: int = 0


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
        self._token_sweep_at = TOKEN_SWEEP_FROM
        self.events = EventBus()
        #: what clients sent to the public API
        self.journal = Journal(self.config.journal_size)
        #: fault rules applied to public API requests
        self.faults = Faults()
        #: the per-credential rate limit (off until :meth:`rate_limit`)
        self.limiter = RateLimiter()
        #: sessions' scripted futures, played as the clock moves
        self.lifecycles = Lifecycles()
        self._sessions_made = 0
        self._app: Flask | None = None
        self.reset()

    # -- the HTTP face ---------------------------------------------------------------------

    @property
    def app(self) -> Flask:
        """The Flask (WSGI) application serving this mock, built on first use."""
        if self._app is None:
            from kontext_mock.http.app import create_app

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
        candidate = self.config.with_changes(**changes) if changes else self.config
        config = candidate.with_changes(organizations=0, sessions=0) if empty else candidate
        total = (1 + config.organizations * config.applications) * config.sessions
        if total > config.max_sessions:
            raise UnprocessableError([{
                "field": "sessions",
                "message": f"{total} sessions in all; the mock holds at most {config.max_sessions}",
            }])
        self.config = candidate
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
            self._clear_control(self.clock.now())
        self._faker = SessionFaker(config.seed + 1, config.idle_after)

    def _clear_control(self, now: datetime) -> None:
        """Forget faults, the rate limit, lifecycles, the journal and event history."""
        self.events.clear()
        self.faults.clear()
        self.limiter.set(None)
        self.lifecycles.reset(now)
        self.journal.clear()
        self._sessions_made = 0

    def snapshot(self) -> MockSnapshot:
        """Capture the state, the clock, faults, the rate limit and lifecycles;
        :meth:`restore` returns to it in microseconds."""
        with self.store.lock:
            return MockSnapshot(
                self.store.snapshot(), self.config, self.clock.now(), self.clock.frozen,
                faults=tuple(self.faults.export()), faults_made=self.faults.made,
                rate_limit=self.limiter.per_minute,
                scripts=tuple(self.lifecycles.scripts.values()),
                horizon=self.lifecycles.horizon, sessions_made=self._sessions_made,
            )

    def restore(self, snap: MockSnapshot) -> None:
        """Return to a snapshot: records, configuration, clock, faults, the rate limit and
        lifecycles (event history and the journal cleared)."""
        with self.store.lock:
            self.store.restore(snap.store)
            self.config = snap.config
            self.clock.set(snap.now)
            if snap.frozen and not self.clock.frozen:
                self.clock.freeze()
            elif not snap.frozen and self.clock.frozen:
                self.clock.unfreeze()
            self.events.clear()
            self.journal.clear()
            self.faults.replace(list(snap.faults), snap.faults_made)
            self.limiter.set(snap.rate_limit)
            self.lifecycles.reset(snap.horizon or snap.now, list(snap.scripts))
            self._sessions_made = snap.sessions_made
            # Reseeding the faker is as good as a new one and ~20x cheaper (a new Faker
            # costs ~1 ms); restore runs before every test of the pytest plugin.
            self._faker.rng.seed(self.config.seed + 1)
            self._faker.fake.seed_instance(self.config.seed + 1)
            self._faker.idle_after = self.config.idle_after

    def application_ids(self, organization_id: str | None = None) -> list[str]:
        """Ids of the applications (of one organization, if given), dev application first."""
        with self.store.lock:
            ids = [
                a.id for a in self.store.applications.values()
                if organization_id is None or a.organization_id == organization_id
            ]
        return sorted(ids, key=lambda i: (i != self.config.dev_application_id, i))

    def applications(self) -> list[dict[str, Any]]:
        """Every application with its organization's name and how many sessions it holds:
        the dev application first, then by organization and application name."""
        with self.store.lock:
            orgs = self.store.organizations
            rows = [
                {**application_record(app), "organizationName": orgs[app.organization_id].name,
                 "sessions": len(self.store.application_sessions(app.id))}
                for app in self.store.applications.values()
            ]
        dev = self.config.dev_application_id
        return sorted(rows, key=lambda r: (r["id"] != dev, r["organizationName"], r["name"], r["id"]))

    # -- clock -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The mock's current instant."""
        return self.clock.now()

    def advance(self, duration: Duration) -> datetime:
        """Move the clock forward (``"PT10M"``, ``"10m"``, ``600`` or a timedelta), playing
        what is due on the way: scripted lifecycle steps, and ``session.idle`` and
        ``session.expired`` events, in time order."""
        delta = duration if isinstance(duration, timedelta) else parse_duration(duration)
        if delta < timedelta(0):
            raise ClockError("the clock only advances; use set_time() to go back")
        with self.store.lock:
            self._in_range(self.clock.now() + delta)
            now = self.clock.advance(delta)
            self._play(now)
            return now

    def set_time(self, instant: datetime | str) -> datetime:
        """Move the clock to an instant; forwards it plays what is due, as :meth:`advance`
        does; backwards nothing is undone."""
        target = self._in_range(parse_instant(instant))
        with self.store.lock:
            now = self.clock.set(target)
            self._play(now)
            return now

    def freeze(self) -> datetime:
        """Stop the clock."""
        with self.store.lock:
            self._play(self.clock.now())
            return self.clock.freeze()

    def unfreeze(self) -> datetime:
        """Let the clock run again."""
        return self.clock.unfreeze()

    def tick(self) -> None:
        """Play what is due up to now (a running clock moves without being told)."""
        with self.store.lock:
            self._play(self.clock.now())

    def clock_state(self) -> dict[str, Any]:
        """``{"now": ..., "frozen": ...}``."""
        return {"now": format_instant(self.clock.now()), "frozen": self.clock.frozen}

    def _play(self, now: datetime) -> None:
        self.lifecycles.run(self.store, self.config.idle_after, now, self._publish,
                            self._disconnect)

    @staticmethod
    def _in_range(instant: datetime) -> datetime:
        try:
            return check_instant(instant)
        except RecordError as exc:
            raise ClockError(exc.message) from None

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
        if len(self.store.tokens) >= self._token_sweep_at:
            # A long run that asks for many tokens (a load test) would keep every one;
            # those expired for a day go (asked for again, they answer "unknown").
            self.store.forget_tokens_expired_before(self.clock.now() - TOKEN_MEMORY)
            self._token_sweep_at = max(TOKEN_SWEEP_FROM, 2 * len(self.store.tokens))
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
            # Only connected sessions can be active or idle: the default filter reads those.
            sessions = (self.store.connected_sessions(application_id) if status == "active"
                        else self.store.application_sessions(application_id))
            picked, scanned = pick_sessions(
                sessions, wanted, limit, self.clock.now(), self.config.idle_after,
            )
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

    def session_page(
        self, application_id: str, *, status: str = "active", offset: int = 0, limit: int = 100,
    ) -> dict[str, Any]:
        """A page of an application's sessions (any organization) from ``offset`` on, in
        list order and filtered as the list is: ``items``, ``total`` (how many pass the
        filter) and ``counts`` of every session by derived status."""
        wanted = STATUS_FILTERS[status]
        with self.store.lock:
            self.visible_application(application_id, None)
            sessions = self.store.application_sessions(application_id)
            every, _ = pick_sessions(sessions, STATUS_FILTERS["all"], len(sessions),
                                     self.clock.now(), self.config.idle_after)
            counts = dict.fromkeys(STATUS_FILTERS["all"], 0)
            for _, derived in every:
                counts[derived] += 1
            picked = [(s, d) for s, d in every if d in wanted]
            items = [s.to_public(d) for s, d in picked[offset:offset + limit]]
        return {"items": items, "total": len(picked), "offset": offset, "limit": limit,
                "counts": counts}

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
        """An agent connects: a new connected session, active now. 400 when ``client_info``
        nests too deep to be stored; 409 when the mock holds ``max_sessions`` sessions."""
        if client_info is not None:
            try:
                client_info = checked_client_info(client_info)
            except RecordError as exc:
                raise ValidationError([{"location": "body", "field": "clientInfo",
                                        "message": exc.message}]) from None
        with self.store.lock:
            app = self.store.applications.get(application_id)
            if app is None:
                raise NotFoundError(f"application {application_id} not found")
            self._room_for_a_session()
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
            self.store.touch(session)
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

    def _room_for_a_session(self) -> None:
        """409 when the mock holds as many sessions as it may (a state it could not reload)."""
        cap = self.config.max_sessions
        if len(self.store.sessions) >= cap:
            raise ApiError(409, "too_many_sessions",
                           f"the mock holds {cap} sessions, the most it keeps (max_sessions);"
                           " reset it or load a smaller scenario before adding more")

    def _disconnect(self, session: Session, now: datetime, reason: str) -> None:
        session.status = DISCONNECTED
        session.disconnected_at = now
        session.disconnect_reason = reason  # type: ignore[assignment]
        self.store.touch(session)
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

    # -- the control plane: explicit data -------------------------------------------------

    def add_organization(
        self, org: Organization | None = None, *, id: str | None = None,
        name: str | None = None,
    ) -> Organization:
        """Add an organization (an :class:`Organization`, or its id and name, faked when
        not given). 409 when the id is taken."""
        with self.store.lock:
            if org is None:
                org = Organization(id or self._faker.uuid(), name or self._faker.fake.company())
            if org.id in self.store.organizations:
                raise ConflictError(f"organization {org.id!r} already exists")
            return self.store.add_organization(org)

    def add_application(
        self, organization_id: str | None = None, *, id: str | None = None,
        name: str | None = None,
    ) -> Application:
        """Add an application to an organization (default: the dev organization)."""
        org_id = organization_id or self.config.dev_organization_id
        with self.store.lock:
            if org_id not in self.store.organizations:
                raise NotFoundError(f"organization {org_id} not found")
            app_id = self._record(lambda: str(uuid.UUID(id)), "id") if id else self._faker.uuid()
            if app_id in self.store.applications:
                raise ConflictError(f"application {app_id} already exists")
            app = Application(app_id, org_id, name or f"{self._faker.fake.word().title()} Agent")
            return self.store.add_application(app)

    def add_client(
        self, client: OAuthClient | None = None, *, client_id: str | None = None,
        client_secret: str | None = None, scopes: Any = ("management:all",),
        organization_id: str | None = None, application_id: str | None = None,
        name: str | None = None, token: str | None = None,
    ) -> OAuthClient:
        """Register an OAuth client of ``/oauth2/token`` with its scopes (an
        :class:`OAuthClient`, or its fields; the organization defaults to the application's,
        else the dev organization). ``token`` also registers a static bearer token of the
        client that never expires."""
        with self.store.lock:
            if client is None:
                if not client_id or not client_secret:
                    raise UnprocessableError([{"field": "clientId",
                                               "message": "client_id and client_secret are needed"}])
                app = None
                if application_id is not None:
                    app = self.store.applications.get(application_id)
                    if app is None:
                        raise NotFoundError(f"application {application_id} not found")
                org_id = organization_id or (app.organization_id if app else
                                             self.config.dev_organization_id)
                if org_id not in self.store.organizations:
                    raise NotFoundError(f"organization {org_id} not found")
                if app is not None and app.organization_id != org_id:
                    raise UnprocessableError([{"field": "applicationId", "message":
                                               f"application {app.id} is not of organization {org_id}"}])
                client = OAuthClient(client_id, client_secret, org_id,
                                     self._record(lambda: scopes_of(list(scopes)), "scopes"),
                                     application_id, name or "")
            if client.client_id in self.store.clients:
                raise ConflictError(f"client {client.client_id!r} already exists")
            if token is not None and token in self.store.tokens:
                raise ConflictError("this token is already taken")
            try:
                self.store.add_client(client)
            except StoreError as exc:
                raise NotFoundError(str(exc)) from None
            if token is not None:
                self.store.add_token(AccessToken(token, client.client_id, client.organization_id,
                                                 client.scopes, client.application_id, None))
            return client

    def client_info(self, client_id: str) -> dict[str, Any]:
        """A registered client as data, without its secret."""
        client = self.store.clients.get(client_id)
        if client is None:
            raise NotFoundError(f"client {client_id!r} not found")
        return client_record(client, secret=False)

    def add_session(
        self, application_id: str | None = None, state: str = "active", **fields: Any
    ) -> dict[str, Any]:
        """Add a session whose derivedStatus is ``state`` now (default application: the dev
        one). ``fields`` are the API's camelCase names, kept as given (times ISO 8601 or
        relative like ``lastActiveAt="-3m"``); the rest is faked and placed in order around
        them. ``lifecycle={"until": "+20m", "then": "disconnect"}`` scripts its future.
        Returns the Session object as the API shows it. 422 when the given fields do not
        hold together, 409 for a taken id, 404 for an unknown application."""
        lifecycle = fields.pop("lifecycle", None)
        app_id = application_id or self.config.dev_application_id
        with self.store.lock:
            app = self.store.applications.get(app_id)
            if app is None:
                raise NotFoundError(f"application {app_id} not found")
            now = self.clock.now()
            # Each made session draws from its own seed: the n-th one is the same whatever
            # else happened, so an exported and re-imported mock makes the same next session.
            seed = self.config.seed * 1_000_003 + self._sessions_made
            self._faker.rng.seed(seed)
            self._faker.fake.seed_instance(seed)
            self._room_for_a_session()
            session = self._record(lambda: build_session(self._faker, app, state, fields, now))
            if session.id in self.store.sessions:
                raise ConflictError(f"session {session.id} already exists")
            script = None
            if lifecycle is not None:
                script = self._record(lambda: script_from_spec(session.id, lifecycle, now),
                                      "lifecycle")
            self._sessions_made += 1
            self.store.add_session(session)
            if script is not None:
                self.lifecycles.attach(script)
            self._publish("session.created", session, now)
            return session.to_public(session.derived_status(now, self.config.idle_after))

    def update_session(self, session_id: str, **fields: Any) -> dict[str, Any]:
        """Change a session's fields (camelCase; times may be relative). ``status=
        "disconnected"`` disconnects it (``disconnectedAt`` default now, ``disconnectReason``
        default ``agent``) and publishes ``session.disconnected``; ``lifecycle=None`` removes
        its script. Returns the Session object; 422 when the result does not hold together."""
        has_lifecycle = "lifecycle" in fields
        lifecycle = fields.pop("lifecycle", None)
        with self.store.lock:
            session = self.store.sessions.get(session_id)
            if session is None:
                raise NotFoundError(f"session {session_id} not found")
            now = self.clock.now()
            changed = self._record(lambda: update_session(session, fields, now))
            script = None
            if lifecycle is not None:
                script = self._record(lambda: script_from_spec(session_id, lifecycle, now),
                                      "lifecycle")
            was_connected = session.status == "active"
            reorder = changed.created_at != session.created_at
            for attr in SESSION_FIELDS.values():
                setattr(session, attr, getattr(changed, attr))
            self.store.touch(session)
            if reorder:
                self.store.reorder(session)
            if has_lifecycle:
                self.lifecycles.detach(session_id)
            if script is not None:
                self.lifecycles.attach(script)
            if was_connected and session.status != "active":
                self.lifecycles.detach(session_id)
                at = session.disconnected_at or now
                self._publish("session.disconnected", session, at,
                              reason=session.disconnect_reason)
            return session.to_public(session.derived_status(now, self.config.idle_after))

    def session_detail(self, session_id: str) -> dict[str, Any]:
        """A session of any application: the public object, its disconnect reason and script."""
        with self.store.lock:
            session = self.store.sessions.get(session_id)
            if session is None:
                raise NotFoundError(f"session {session_id} not found")
            script = self.lifecycles.scripts.get(session_id)
            lifecycle = None
            if script is not None:
                lifecycle = script.to_dict()
                del lifecycle["sessionId"]
            return {
                "session": session.to_public(
                    session.derived_status(self.clock.now(), self.config.idle_after)),
                "disconnectReason": session.disconnect_reason,
                "lifecycle": lifecycle,
            }

    @property
    def sessions_made(self) -> int:
        """How many sessions :meth:`add_session` made since the last reset."""
        return self._sessions_made

    @staticmethod
    def _record(make: Callable[[], _T], field: str | None = None) -> _T:
        """``make()``, with a RecordError turned into the 422 it is."""
        try:
            return make()
        except RecordError as exc:
            name = f"{field}.{exc.field}" if field and exc.field and exc.field != field else (
                exc.field or field)
            raise UnprocessableError([{"field": name, "message": exc.message}]) from None
        except ValueError as exc:
            raise UnprocessableError([{"field": field, "message": str(exc)}]) from None

    # -- the control plane: scenarios and state -------------------------------------------

    def scenarios(self) -> list[tuple[str, str]]:
        """``(name, description)`` of the scenarios :meth:`load_scenario` finds by name."""
        return scenario_files.available(self.config)

    def load_scenario(self, name_or_path: str | Path) -> None:
        """Replace the state with a scenario: a name of ``fixtures/scenarios/`` (or of a
        folder in ``config.scenario_dirs``), or a path to a ``.yaml`` file. A bad scenario
        raises :class:`~kontext_mock.core.scenarios.ScenarioError` naming file, line and field, and
        changes nothing."""
        self._install(scenario_files.load(name_or_path, self.config, self.clock.now()))

    def load_scenario_text(self, text: str, name: str = "inline") -> str:
        """Replace the state with a scenario given as YAML text; returns its name."""
        self._install(scenario_files.build(text, f"<{name}>", name, self.config, self.clock.now()))
        return name

    @staticmethod
    def _taken_over(store: Store) -> StoreSnapshot:
        """A snapshot that shares a throwaway store's records (restore copies them once)."""
        return StoreSnapshot(
            dict(store.organizations), dict(store.applications), dict(store.clients),
            dict(store.tokens),
            {app_id: store.application_sessions(app_id) for app_id in store.applications},
        )

    def _install(self, blueprint: scenario_files.Blueprint) -> None:
        snap = self._taken_over(blueprint.store)
        with self.store.lock:
            self.config = self.config.with_changes(seed=blueprint.seed)
            if blueprint.idle_after is not None:
                self.config = self.config.with_changes(idle_after=blueprint.idle_after)
            self.store.restore(snap)
            self.clock.set(blueprint.now)
            if blueprint.frozen is True:
                self.clock.freeze()
            elif blueprint.frozen is False:
                self.clock.unfreeze()
            self._clear_control(blueprint.now)
            self.lifecycles.reset(blueprint.now, blueprint.scripts)
            self._faker = SessionFaker(blueprint.seed + 1, self.config.idle_after)

    def export_state(self) -> dict[str, Any]:
        """The whole state as JSON-ready data: records, clock, settings, lifecycles, faults
        and the rate limit. :meth:`import_state` of it gives an identical mock."""
        with self.store.lock:
            state: dict[str, Any] = export_state(self)
            return state

    def import_state(self, data: dict[str, Any]) -> None:
        """Replace everything with an exported state (checked whole first; 422 naming the
        first bad field, and nothing changes)."""
        imported = read_state(data, self.config.max_sessions)
        snap = self._taken_over(imported.store)
        with self.store.lock:
            self.config = self.config.with_changes(**imported.settings)
            self.store.restore(snap)
            self.clock.set(imported.now)
            if imported.frozen and not self.clock.frozen:
                self.clock.freeze()
            elif not imported.frozen and self.clock.frozen:
                self.clock.unfreeze()
            self._clear_control(imported.now)
            self.lifecycles.reset(imported.now, imported.scripts)
            self.faults.replace(imported.faults, imported.faults_made)
            self.limiter.set(imported.rate_limit)
            self._sessions_made = imported.sessions_made
            self._faker = SessionFaker(self.config.seed + 1, self.config.idle_after)

    def summary(self) -> dict[str, Any]:
        """How many records the mock holds, and its clock."""
        with self.store.lock:
            return {
                "organizations": len(self.store.organizations),
                "applications": len(self.store.applications),
                "clients": len(self.store.clients),
                "sessions": len(self.store.sessions),
                "clock": self.clock_state(),
            }

    # -- the control plane: faults and the rate limit -------------------------------------

    def add_fault(
        self, method: str = "*", path: str = "/api/v1/*", *,
        latency: float | tuple[float, float] | list[float] | None = None,
        status: int | None = None, drop: bool = False, times: int | None = None,
        probability: float | None = None, seed: int | None = None,
    ) -> str:
        """Add a fault rule for public API requests matching ``method`` (or ``*``) and the
        glob ``path``: wait ``latency`` seconds (or a ``(low, high)`` range), answer
        ``status`` with the documented error body, or ``drop`` the connection; for the next
        ``times`` matching requests, or a ``probability`` share of them (seeded by ``seed``,
        default the mock's seed). Returns the rule's id."""
        try:
            rule = self.faults.add(
                method, path, latency=latency, status=status, drop=drop, times=times,
                probability=probability, seed=self.config.seed if seed is None else seed,
            )
        except (TypeError, ValueError) as exc:
            raise UnprocessableError([{"field": None, "message": str(exc)}]) from None
        return rule.id

    def remove_fault(self, fault_id: str) -> None:
        """Remove one fault rule (404 when there is none with this id)."""
        if not self.faults.remove(fault_id):
            raise NotFoundError(f"fault {fault_id} not found")

    def clear_faults(self) -> int:
        """Remove every fault rule; how many there were."""
        return self.faults.clear()

    def rate_limit(self, per_minute: int | None = PRODUCTION_PER_MINUTE) -> None:
        """Limit requests per credential per minute of the mock's clock (default 120, the
        production figure); None turns it off. Over the limit: 429 with ``Retry-After``."""
        try:
            self.limiter.set(per_minute)
        except ValueError as exc:
            raise UnprocessableError([{"field": "perMinute", "message": str(exc)}]) from None
