"""Sessions, the API's subject: listing and reading them with their derived status,
revoke-all, the agent's side (open, heartbeat, disconnect), and sessions made or changed
explicitly (the control plane, tests)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kontext_mock.core.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from kontext_mock.core.fields import (
    SESSION_FIELDS,
    RecordError,
    build_session,
    checked_client_info,
    unprocessable,
    update_session,
)
from kontext_mock.core.lifecycles import script_from_spec
from kontext_mock.core.oauth import app_client_id
from kontext_mock.core.records import (
    CONNECTED,
    DISCONNECTED,
    STATUS_FILTERS,
    Application,
    DerivedStatus,
    Page,
    Session,
    derived_until,
    pick_sessions,
)
from kontext_mock.core.state import MockState

__all__ = ["Sessions"]


class Sessions:
    """What the sessions API and the agent endpoints do to the store."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        #: (application, status, limit, organization) -> a list as computed, and what it
        #: holds for: the store's generation, the idle threshold, and the clock from
        #: ``since`` until just before ``until`` (None: for ever)
        self._pages: dict[tuple[str, str, int, str | None], _Listed] = {}

    # -- reading ----------------------------------------------------------------------------

    def visible_application(self, application_id: str, organization_id: str | None) -> Application:
        """The application, if the caller's organization (None: any) owns it; else 404."""
        app = self.state.store.applications.get(application_id)
        if app is None or (organization_id is not None and app.organization_id != organization_id):
            raise NotFoundError(f"application {application_id} not found")
        return app

    def select_sessions(
        self, application_id: str, status: str = "active", limit: int = 100,
        organization_id: str | None = None,
    ) -> list[tuple[Session, DerivedStatus]]:
        """The application's sessions that pass the ``status`` filter, in list order, with
        their derived status. Call with the store's lock held to serialize consistently."""
        state = self.state
        store = state.store
        wanted = STATUS_FILTERS[status]
        with store.lock:
            now, idle_after = state.clock.now(), state.config.idle_after
            key = (application_id, status, limit, organization_id)
            listed = self._pages.get(key)
            if (listed is not None and listed.generation == store.generation
                    and listed.idle_after == idle_after and listed.since <= now
                    and (listed.until is None or now < listed.until)):
                # Nothing it depends on changed: every session it looked at has the same
                # derived status still (they change only at an expiry or an idle threshold).
                store.sessions_scanned += listed.scanned
                return listed.page.fresh()
            self.visible_application(application_id, organization_id)
            # Only connected sessions can be active or idle: the default filter reads those.
            sessions = (store.connected_sessions(application_id) if status == "active"
                        else store.application_sessions(application_id))
            picked, scanned = pick_sessions(sessions, wanted, limit, now, idle_after)
            store.sessions_scanned += scanned
            page = Page(picked)
            if len(self._pages) >= _PAGES_KEPT:
                self._pages.clear()
            self._pages[key] = _Listed(
                store.generation, idle_after, now,
                derived_until(itertools.islice(sessions, scanned), now, idle_after),
                scanned, page)
            return page.fresh()

    def list_sessions(self, application_id: str, *, status: str = "active", limit: int = 100,
                      organization_id: str | None = None) -> list[dict[str, Any]]:
        """What ``GET .../sessions`` lists, as Session objects."""
        with self.state.store.lock:
            return [s.to_public(d)
                    for s, d in self.select_sessions(application_id, status, limit, organization_id)]

    def session_page(self, application_id: str, *, status: str = "active", offset: int = 0,
                     limit: int = 100) -> dict[str, Any]:
        """A page of an application's sessions (any organization) from ``offset`` on, in
        list order and filtered as the list is: ``items``, ``total`` (how many pass the
        filter) and ``counts`` of every session by derived status."""
        state = self.state
        wanted = STATUS_FILTERS[status]
        with state.store.lock:
            self.visible_application(application_id, None)
            sessions = state.store.application_sessions(application_id)
            every, _ = pick_sessions(sessions, STATUS_FILTERS["all"], len(sessions),
                                     state.clock.now(), state.config.idle_after)
            counts = dict.fromkeys(STATUS_FILTERS["all"], 0)
            for _, derived in every:
                counts[derived] += 1
            picked = [(s, d) for s, d in every if d in wanted]
            items = [s.to_public(d) for s, d in picked[offset:offset + limit]]
        return {"items": items, "total": len(picked), "offset": offset, "limit": limit,
                "counts": counts}

    def find_session(self, application_id: str, session_id: str,
                     organization_id: str | None = None) -> tuple[Session, DerivedStatus]:
        """The session and its derived status; 404 unless it belongs to this visible application."""
        state = self.state
        with state.store.lock:
            self.visible_application(application_id, organization_id)
            session = state.store.session_of(application_id, session_id)
            if session is None:
                raise NotFoundError(f"session {session_id} not found")
            return session, session.derived_status(state.clock.now(), state.config.idle_after)

    def get_session(self, application_id: str, session_id: str,
                    organization_id: str | None = None) -> dict[str, Any]:
        """What ``GET .../sessions/{id}`` answers, as a Session object."""
        with self.state.store.lock:
            session, derived = self.find_session(application_id, session_id, organization_id)
            return session.to_public(derived)

    def session_detail(self, session_id: str) -> dict[str, Any]:
        """A session of any application: the public object, its disconnect reason and script."""
        state = self.state
        with state.store.lock:
            session = state.store.sessions.get(session_id)
            if session is None:
                raise NotFoundError(f"session {session_id} not found")
            script = state.lifecycles.scripts.get(session_id)
            lifecycle = None
            if script is not None:
                lifecycle = script.to_dict()
                del lifecycle["sessionId"]
            return {
                "session": session.to_public(
                    session.derived_status(state.clock.now(), state.config.idle_after)),
                "disconnectReason": session.disconnect_reason,
                "lifecycle": lifecycle,
            }

    # -- revoke-all ---------------------------------------------------------------------------

    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        """Disconnect every connected session of the application; how many changed."""
        state = self.state
        with state.store.lock:
            self.visible_application(application_id, organization_id)
            now = state.clock.now()
            changed = [s for s in state.store.application_sessions(application_id)
                       if s.status == CONNECTED]
            state.disconnect_all(changed, now, "revoked")
            # The gateway's tokens of the application's client stop working with them:
            # its MCP clients must authenticate again.
            state.gateway.grants.revoke_client(app_client_id(application_id))
        return len(changed)

    # -- the agent side -----------------------------------------------------------------------

    def open_session(
        self, application_id: str | None = None, *, token_identifier: str | None = None,
        authenticated_user_id: str | None = None, client_session_id: str | None = None,
        hostname: str | None = None, user_agent: str | None = None,
        client_info: dict[str, Any] | None = None, token_expires_at: datetime | None = None,
    ) -> Session:
        """An agent connects: a new connected session, active now, whose token expires at
        ``token_expires_at`` (default: ``session_token_ttl`` from now; see
        :meth:`kontext_mock.KontextMock.open_session`). 400 when ``client_info`` nests too
        deep to be stored; 409 when the mock holds ``max_sessions`` sessions."""
        # What an agent sends over HTTP, made up when a Python caller leaves it out: the
        # mock keeps these facts but no answer of the API shows them.
        token_identifier = token_identifier or f"tok_{uuid.uuid4().hex[:16]}"
        authenticated_user_id = authenticated_user_id or f"user_{uuid.uuid4().hex[:12]}"
        client_session_id = client_session_id or str(uuid.uuid4())
        application_id = application_id or self.state.config.dev_application_id
        if client_info is not None:
            try:
                client_info = checked_client_info(client_info)
            except RecordError as exc:
                raise ValidationError([{"location": "body", "field": "clientInfo",
                                        "message": exc.message}]) from None
        state = self.state
        with state.store.lock:
            app = state.store.applications.get(application_id)
            if app is None:
                raise NotFoundError(f"application {application_id} not found")
            self._room_for_a_session()
            now = state.clock.now()
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
                token_expires_at=token_expires_at or now + state.config.session_token_ttl,
                hostname=hostname,
                user_agent=user_agent,
                client_info=client_info,
                client_session_id=client_session_id,
                authenticated_user_id=authenticated_user_id,
                token_identifier=token_identifier,
            )
            state.store.add_session(session)
            state.publish("session.created", session, now)
            return session

    def heartbeat(self, application_id: str, session_id: str) -> Session:
        """An agent's heartbeat: ``lastActiveAt`` becomes now. 409 when the session is gone."""
        state = self.state
        with state.store.lock:
            session, derived = self.find_session(application_id, session_id)
            now = state.clock.now()
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
            state.store.touch(session)
            state.publish("session.heartbeat", session, now)
            return session

    def disconnect(self, application_id: str, session_id: str, reason: str = "agent") -> Session:
        """End one session (idempotent: a disconnected session stays as it is)."""
        state = self.state
        with state.store.lock:
            session, _ = self.find_session(application_id, session_id)
            if session.status == CONNECTED:
                state.disconnect(session, state.clock.now(), reason)
            return session

    # -- made or changed explicitly ---------------------------------------------------------

    def add_session(self, application_id: str | None = None, state_name: str = "active",
                    **fields: Any) -> dict[str, Any]:
        """Add a session whose derivedStatus is ``state_name`` now (see
        :meth:`kontext_mock.KontextMock.add_session`)."""
        state = self.state
        lifecycle = fields.pop("lifecycle", None)
        app_id = application_id or state.config.dev_application_id
        with state.store.lock:
            app = state.store.applications.get(app_id)
            if app is None:
                raise NotFoundError(f"application {app_id} not found")
            now = state.clock.now()
            # Each made session draws from its own seed: the n-th one is the same whatever
            # else happened, so an exported and re-imported mock makes the same next session.
            seed = state.config.seed * 1_000_003 + state.sessions_made
            state.faker.rng.seed(seed)
            state.faker.fake.seed_instance(seed)
            self._room_for_a_session()
            session = unprocessable(lambda: build_session(state.faker, app, state_name, fields, now))
            if session.id in state.store.sessions:
                raise ConflictError(f"session {session.id} already exists")
            script = None
            if lifecycle is not None:
                script = unprocessable(lambda: script_from_spec(session.id, lifecycle, now),
                                       "lifecycle")
            state.sessions_made += 1
            state.store.add_session(session)
            if script is not None:
                state.lifecycles.attach(script)
            state.publish("session.created", session, now)
            return session.to_public(session.derived_status(now, state.config.idle_after))

    def update_session(self, session_id: str, **fields: Any) -> dict[str, Any]:
        """Change a session's fields (see :meth:`kontext_mock.KontextMock.update_session`)."""
        state = self.state
        has_lifecycle = "lifecycle" in fields
        lifecycle = fields.pop("lifecycle", None)
        with state.store.lock:
            session = state.store.sessions.get(session_id)
            if session is None:
                raise NotFoundError(f"session {session_id} not found")
            now = state.clock.now()
            changed = unprocessable(lambda: update_session(session, fields, now))
            script = None
            if lifecycle is not None:
                script = unprocessable(lambda: script_from_spec(session_id, lifecycle, now),
                                       "lifecycle")
            was_connected = session.status == CONNECTED
            reorder = changed.created_at != session.created_at
            for attr in SESSION_FIELDS.values():
                setattr(session, attr, getattr(changed, attr))
            state.store.touch(session)
            if reorder:
                state.store.reorder(session)
            if has_lifecycle:
                state.lifecycles.detach(session_id)
            if script is not None:
                state.lifecycles.attach(script)
            if was_connected and session.status != CONNECTED:
                state.lifecycles.detach(session_id)
                state.gateway.end(session_id)
                at: datetime = session.disconnected_at or now
                state.publish("session.disconnected", session, at,
                              reason=session.disconnect_reason)
            return session.to_public(session.derived_status(now, state.config.idle_after))

    def _room_for_a_session(self) -> None:
        """409 when the mock holds as many sessions as it may (a state it could not reload)."""
        cap = self.state.config.max_sessions
        if len(self.state.store.sessions) >= cap:
            raise ApiError(409, "too_many_sessions",
                           f"the mock holds {cap} sessions, the most it keeps (max_sessions);"
                           " reset it or load a smaller scenario before adding more")


#: lists kept by :meth:`Sessions.select_sessions` (all forgotten when there are more)
_PAGES_KEPT = 64


@dataclass(slots=True, frozen=True)
class _Listed:
    generation: int
    idle_after: timedelta
    since: datetime
    until: datetime | None
    scanned: int
    page: Page
