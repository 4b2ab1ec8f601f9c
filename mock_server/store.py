"""The mock's state: organizations, applications, sessions, OAuth clients and tokens.

One lock guards everything (the mock serves from threads of one process). Sessions are
indexed by application and kept in list order, so listing costs the application's own
sessions, never the whole store's.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from .model import AccessToken, Application, OAuthClient, Organization, Session

__all__ = ["Store", "StoreError", "StoreSnapshot"]


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """A copy of every record, cheap to take and to restore (the pytest plugin's reset)."""

    organizations: dict[str, Organization]
    applications: dict[str, Application]
    clients: dict[str, OAuthClient]
    tokens: dict[str, AccessToken]
    sessions: dict[str, list[Session]]  # application id -> sessions in list order


class StoreError(KeyError):
    """A reference to something the store does not hold, or a duplicate id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "store error"


class Store:
    """All records, with the indexes the API needs."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.organizations: dict[str, Organization] = {}
        self.applications: dict[str, Application] = {}
        self.sessions: dict[str, Session] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.tokens: dict[str, AccessToken] = {}
        # application id -> its sessions in list order, and their sort keys for bisect
        self._by_app: dict[str, list[Session]] = {}
        self._keys: dict[str, list[tuple[float, str]]] = {}
        # Counts the sessions the list handler looked at: a regression guard reads it to
        # prove that listing follows the application's size, not the store's.
        self.sessions_scanned = 0

    @contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the store's lock for a compound read or change."""
        with self.lock:
            yield self

    def clear(self) -> None:
        """Forget everything."""
        with self.lock:
            for table in (
                self.organizations, self.applications, self.sessions, self.clients,
                self.tokens, self._by_app, self._keys,
            ):
                table.clear()

    def snapshot(self) -> StoreSnapshot:
        """Copy the state. Sessions are copied (they change); other records are replaced,
        never changed in place, so sharing them is safe."""
        with self.lock:
            return StoreSnapshot(
                organizations=dict(self.organizations),
                applications=dict(self.applications),
                clients=dict(self.clients),
                tokens=dict(self.tokens),
                sessions={
                    app_id: [copy.copy(s) for s in sessions]
                    for app_id, sessions in self._by_app.items()
                },
            )

    def restore(self, snap: StoreSnapshot) -> None:
        """Return to a snapshot; the snapshot stays usable for the next restore."""
        with self.lock:
            self.organizations = dict(snap.organizations)
            self.applications = dict(snap.applications)
            self.clients = dict(snap.clients)
            self.tokens = dict(snap.tokens)
            self._by_app = {
                app_id: [copy.copy(s) for s in sessions]
                for app_id, sessions in snap.sessions.items()
            }
            self._keys = {
                app_id: [_sort_key(s) for s in sessions] for app_id, sessions in self._by_app.items()
            }
            self.sessions = {s.id: s for sessions in self._by_app.values() for s in sessions}

    # -- organizations, applications, clients, tokens ---------------------------------

    def add_organization(self, org: Organization) -> Organization:
        """Add an organization; its id must be new."""
        with self.lock:
            self._require_new(self.organizations, org.id, "organization")
            self.organizations[org.id] = org
            return org

    def add_application(self, app: Application) -> Application:
        """Add an application to an existing organization."""
        with self.lock:
            self._require_new(self.applications, app.id, "application")
            if app.organization_id not in self.organizations:
                raise StoreError(f"unknown organization {app.organization_id!r}")
            self.applications[app.id] = app
            self._by_app[app.id] = []
            self._keys[app.id] = []
            return app

    def add_client(self, client: OAuthClient) -> OAuthClient:
        """Register an OAuth client of an existing organization (and application, if bound)."""
        with self.lock:
            self._require_new(self.clients, client.client_id, "client")
            if client.organization_id not in self.organizations:
                raise StoreError(f"unknown organization {client.organization_id!r}")
            if client.application_id is not None:
                self._require_app_of(client.application_id, client.organization_id)
            self.clients[client.client_id] = client
            return client

    def add_token(self, token: AccessToken) -> AccessToken:
        """Remember an issued token."""
        with self.lock:
            self.tokens[token.token] = token
            return token

    def forget_tokens_expired_before(self, instant: datetime) -> int:
        """Drop the tokens that expired before ``instant``; how many went."""
        with self.lock:
            gone = [k for k, t in self.tokens.items()
                    if t.expires_at is not None and t.expires_at < instant]
            for key in gone:
                del self.tokens[key]
            return len(gone)

    # -- sessions ----------------------------------------------------------------------

    def add_session(self, session: Session) -> Session:
        """Add a session to an existing application of the session's organization."""
        with self.lock:
            self._require_new(self.sessions, session.id, "session")
            self._require_app_of(session.application_id, session.organization_id)
            self.sessions[session.id] = session
            self._insert(session)
            return session

    def add_sessions(self, sessions: list[Session]) -> None:
        """Add many sessions at once (seeding, scenarios); sorts each application once."""
        with self.lock:
            touched: set[str] = set()
            for session in sessions:
                self._require_new(self.sessions, session.id, "session")
                self._require_app_of(session.application_id, session.organization_id)
                self.sessions[session.id] = session
                self._by_app[session.application_id].append(session)
                touched.add(session.application_id)
            for app_id in touched:
                ordered = sorted(self._by_app[app_id], key=_sort_key)
                self._by_app[app_id] = ordered
                self._keys[app_id] = [_sort_key(s) for s in ordered]

    def reorder(self, session: Session) -> None:
        """Put a session back in list order after its ``created_at`` changed."""
        with self.lock:
            app_id = session.application_id
            index = self._by_app[app_id].index(session)
            del self._by_app[app_id][index], self._keys[app_id][index]
            self._insert(session)

    def application_sessions(self, application_id: str) -> list[Session]:
        """The application's sessions in list order (the live list: copy before releasing the lock)."""
        return self._by_app[application_id]

    def session_of(self, application_id: str, session_id: str) -> Session | None:
        """The session with this id if it belongs to this application, else None."""
        session = self.sessions.get(session_id)
        if session is None or session.application_id != application_id:
            return None
        return session

    # -- internals ---------------------------------------------------------------------

    def _insert(self, session: Session) -> None:
        key = _sort_key(session)
        keys = self._keys[session.application_id]
        index = bisect.bisect_left(keys, key)
        keys.insert(index, key)
        self._by_app[session.application_id].insert(index, session)

    def _require_app_of(self, application_id: str, organization_id: str) -> None:
        app = self.applications.get(application_id)
        if app is None:
            raise StoreError(f"unknown application {application_id!r}")
        if app.organization_id != organization_id:
            raise StoreError(
                f"application {application_id!r} belongs to organization"
                f" {app.organization_id!r}, not {organization_id!r}"
            )

    @staticmethod
    def _require_new(table: Mapping[str, object], key: str, kind: str) -> None:
        if key in table:
            raise StoreError(f"duplicate {kind} id {key!r}")


def _sort_key(session: Session) -> tuple[float, str]:
    return session.sort_key
