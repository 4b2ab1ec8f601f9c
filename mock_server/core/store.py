"""The store: organizations, applications, sessions, OAuth clients and tokens, indexed.

One lock guards everything (the mock serves from threads of one process). Sessions are
indexed by application and kept in list order, so listing costs the application's own
sessions, never the whole store's; each application's connected sessions are indexed
too, so the default list (``status=active``: connected sessions only) skips the
disconnected ones, however many there are.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import overload

from kontext_mock.core.records import CONNECTED, AccessToken, Application, OAuthClient, Organization, Session

__all__ = ["Changes", "Store", "StoreError", "StoreSnapshot"]


@dataclass(slots=True)
class Changes:
    """What changed in the store since the last :meth:`Store.take_changes` (a state file
    writes exactly this): ids of records added or changed, tokens forgotten, or
    ``everything`` after the store was cleared or restored whole."""

    everything: bool = False
    organizations: set[str] = field(default_factory=set)
    applications: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    tokens_gone: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return self.everything or any((self.organizations, self.applications, self.clients,
                                       self.tokens, self.tokens_gone, self.sessions))


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
        # application id -> its sessions in reverse list order (oldest first, so a new
        # session is appended, not inserted before all the others), and their sort keys
        self._by_app: dict[str, list[Session]] = {}
        self._keys: dict[str, list[tuple[float, str]]] = {}
        # Counts the sessions the list handler looked at: a regression guard reads it to
        # prove that listing follows the application's size, not the store's.
        self.sessions_scanned = 0
        self._changes = Changes()
        #: moves on at every change to a session, an application or an organization (and
        #: at clear and restore): a list computed at one generation holds until the next
        self.generation = 0
        # application id -> its connected sessions in reverse list order, with their sort keys. A
        # session that disconnects stays until they are half the list (readers skip it),
        # so a revoke-all of many sessions costs no list surgery.
        self._live: dict[str, list[Session]] = {}
        self._live_keys: dict[str, list[tuple[float, str]]] = {}
        self._live_stale: dict[str, int] = {}

    @contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the store's lock for a compound read or change."""
        with self.lock:
            yield self

    def take_changes(self) -> Changes:
        """What changed since the last call (call with the lock held); starts a new record."""
        changes, self._changes = self._changes, Changes()
        return changes

    def touch(self, session: Session) -> None:
        """Record that a stored session's fields changed (drops its cached serialization)."""
        session.changed()
        self.generation += 1
        self._changes.sessions.add(session.id)
        app_id = session.application_id
        if session.status != CONNECTED:
            self._live_stale[app_id] = self._live_stale.get(app_id, 0) + 1
        elif not self._in_live(session):
            self._live_insert(session)

    def connected_sessions(self, application_id: str) -> Sequence[Session]:
        """The application's sessions that were connected when indexed, in list order: every
        connected one, and perhaps some that disconnected since (check ``status``)."""
        live = self._live.get(application_id)
        if live is None or self._live_stale.get(application_id, 0) * 2 > len(live):
            self._index_live(application_id)
            live = self._live[application_id]
        return ListOrder(live)

    def clear(self) -> None:
        """Forget everything."""
        with self.lock:
            self._changes.everything = True
            self.generation += 1
            for table in (
                self.organizations, self.applications, self.sessions, self.clients,
                self.tokens, self._by_app, self._keys, self._live, self._live_keys,
                self._live_stale,
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
                    app_id: [copy.copy(s) for s in reversed(sessions)]
                    for app_id, sessions in self._by_app.items()
                },
            )

    def restore(self, snap: StoreSnapshot) -> None:
        """Return to a snapshot; the snapshot stays usable for the next restore."""
        with self.lock:
            self._changes.everything = True
            self.generation += 1
            self.organizations = dict(snap.organizations)
            self.applications = dict(snap.applications)
            self.clients = dict(snap.clients)
            self.tokens = dict(snap.tokens)
            self._by_app = {
                app_id: [copy.copy(s) for s in reversed(sessions)]
                for app_id, sessions in snap.sessions.items()
            }
            self._keys = {
                app_id: [_sort_key(s) for s in sessions] for app_id, sessions in self._by_app.items()
            }
            self.sessions = {s.id: s for sessions in self._by_app.values() for s in sessions}
            self._live, self._live_keys, self._live_stale = {}, {}, {}

    # -- organizations, applications, clients, tokens ---------------------------------

    def add_organization(self, org: Organization) -> Organization:
        """Add an organization; its id must be new."""
        with self.lock:
            self._require_new(self.organizations, org.id, "organization")
            self.organizations[org.id] = org
            self._changes.organizations.add(org.id)
            self.generation += 1
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
            self._live.pop(app.id, None)
            self._changes.applications.add(app.id)
            self.generation += 1
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
            self._changes.clients.add(client.client_id)
            return client

    def add_token(self, token: AccessToken) -> AccessToken:
        """Remember an issued token."""
        with self.lock:
            self.tokens[token.token] = token
            self._changes.tokens.add(token.token)
            self._changes.tokens_gone.discard(token.token)
            return token

    def forget_tokens_expired_before(self, instant: datetime) -> int:
        """Drop the tokens that expired before ``instant``; how many went."""
        with self.lock:
            gone = [k for k, t in self.tokens.items()
                    if t.expires_at is not None and t.expires_at < instant]
            for key in gone:
                del self.tokens[key]
                self._changes.tokens.discard(key)
                self._changes.tokens_gone.add(key)
            return len(gone)

    # -- sessions ----------------------------------------------------------------------

    def add_session(self, session: Session) -> Session:
        """Add a session to an existing application of the session's organization."""
        with self.lock:
            self._require_new(self.sessions, session.id, "session")
            self._require_app_of(session.application_id, session.organization_id)
            self.sessions[session.id] = session
            self._insert(session)
            self._changes.sessions.add(session.id)
            self.generation += 1
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
                self._changes.sessions.add(session.id)
            self.generation += 1
            for app_id in touched:
                ordered = sorted(self._by_app[app_id], key=_sort_key, reverse=True)
                self._by_app[app_id] = ordered
                self._keys[app_id] = [_sort_key(s) for s in ordered]
                self._live.pop(app_id, None)

    def reorder(self, session: Session) -> None:
        """Put a session back in list order after its ``created_at`` changed."""
        with self.lock:
            app_id = session.application_id
            index = self._by_app[app_id].index(session)
            del self._by_app[app_id][index], self._keys[app_id][index]
            self._insert(session)
            self._live.pop(app_id, None)  # indexed again on the next read
            self._changes.sessions.add(session.id)
            self.generation += 1

    def application_sessions(self, application_id: str) -> Sequence[Session]:
        """The application's sessions in list order (a view of the live list: copy before
        releasing the lock)."""
        return ListOrder(self._by_app[application_id])

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
        index = _place(keys, key)
        keys.insert(index, key)
        self._by_app[session.application_id].insert(index, session)
        if session.status == CONNECTED and session.application_id in self._live:
            self._live_insert(session)

    def _index_live(self, application_id: str) -> None:
        live = [s for s in self._by_app.get(application_id, ()) if s.status == CONNECTED]
        self._live[application_id] = live
        self._live_keys[application_id] = [_sort_key(s) for s in live]
        self._live_stale[application_id] = 0

    def _in_live(self, session: Session) -> bool:
        live = self._live.get(session.application_id)
        if live is None:
            return True  # not indexed yet: the next read indexes it whole
        keys = self._live_keys[session.application_id]
        index = _place(keys, _sort_key(session))
        return index < len(live) and live[index] is session

    def _live_insert(self, session: Session) -> None:
        app_id = session.application_id
        live = self._live.get(app_id)
        if live is None:
            return
        key = _sort_key(session)
        keys = self._live_keys[app_id]
        index = _place(keys, key)
        keys.insert(index, key)
        live.insert(index, session)

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


def _place(keys: list[tuple[float, str]], key: tuple[float, str]) -> int:
    """Where ``key`` goes in ``keys`` (descending): at the end for the newest session, the
    usual case; else the index of the first key not greater than it."""
    if not keys or keys[-1] > key:
        return len(keys)
    low, high = 0, len(keys)
    while low < high:
        mid = (low + high) // 2
        if keys[mid] > key:
            low = mid + 1
        else:
            high = mid
    return low


class ListOrder(Sequence[Session]):
    """A list of sessions kept in reverse list order, read in list order (a view)."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Session]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Session]:
        return reversed(self._items)

    @overload
    def __getitem__(self, index: int) -> Session: ...

    @overload
    def __getitem__(self, index: slice) -> list[Session]: ...

    def __getitem__(self, index: int | slice) -> Session | list[Session]:
        if isinstance(index, slice):
            return self._items[::-1][index]
        return self._items[-1 - index]
