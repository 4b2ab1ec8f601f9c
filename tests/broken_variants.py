"""Deliberately broken variants of the mock, for proving the contract kit's power.

Each variant is a subclass of :class:`KontextMock` overriding one method, or the mock's
own WSGI app wrapped in a small middleware that breaks one thing on the wire (for what
lives in the HTTP layer: headers, envelopes, auth, routing). Never a fork of the code.
Each names the rule of ``kontext-contract`` that must catch it.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from kontext_mock import KontextMock
from kontext_mock.core.gateway import Gateway, GatewayReply
from kontext_mock.core.records import CONNECTED, DISCONNECTED, STATUS_FILTERS, Session

__all__ = ["MCP_VARIANTS", "VARIANTS", "Variant", "rewrite"]

WsgiApp = Callable[..., Iterable[bytes]]
_ALL = 10**9


@dataclass(frozen=True)
class Variant:
    """A broken mock: how to build it, and the rule that must catch it."""

    name: str
    rule: str
    description: str
    mock_class: type[KontextMock] = KontextMock
    middleware: Callable[[WsgiApp], WsgiApp] | None = None
    #: only the lifecycle state machine can see it, and that needs the control plane
    needs_control_plane: bool = False

    def build(self, **config: Any) -> tuple[KontextMock, WsgiApp]:
        """The broken mock and the WSGI app to serve."""
        mock = self.mock_class(**config)
        app: WsgiApp = mock.app
        if self.middleware is not None:
            app = self.middleware(app)
        return mock, app


# -- subclasses: the behaviour model ---------------------------------------------------------


class LimitIgnored(KontextMock):
    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        return super().select_sessions(application_id, status, _ALL, organization_id)


class LimitOffByOne(KontextMock):
    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        return super().select_sessions(application_id, status, limit + 1, organization_id)


class LimitCapped(KontextMock):
    """Honours limit only up to 150: limit=200 lists 150 sessions however many match."""

    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        return super().select_sessions(application_id, status, min(limit, 150), organization_id)


class _Rederiving(KontextMock):
    """A mock whose derivedStatus comes from :meth:`derive` (listing, filtering, reading)."""

    def derive(self, session: Session, now: datetime) -> str:
        return session.derived_status(now, self.idle_after)

    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        with self.store.lock:
            rows = super().select_sessions(application_id, "all", _ALL, organization_id)
            now = self.now()
            derived = [(s, self.derive(s, now)) for s, _ in rows]
            return [(s, d) for s, d in derived if d in self.admits(status)][:limit]

    def admits(self, status: str) -> frozenset[str]:
        return STATUS_FILTERS[status]

    def find_session(self, application_id: str, session_id: str,
                     organization_id: str | None = None) -> Any:
        with self.store.lock:
            session, _ = super().find_session(application_id, session_id, organization_id)
            return session, self.derive(session, self.now())


class InactiveLeaksIdle(_Rederiving):
    def admits(self, status: str) -> frozenset[str]:
        if status == "inactive":
            return STATUS_FILTERS["inactive"] | {"idle"}
        return STATUS_FILTERS[status]


class ExpiryIgnored(_Rederiving):
    def derive(self, session: Session, now: datetime) -> str:
        if session.status == DISCONNECTED:
            return "disconnected"
        last = session.last_active_at
        return "idle" if last is None or now - last >= self.idle_after else "active"


class IdleBackwards(_Rederiving):
    def derive(self, session: Session, now: datetime) -> str:
        derived = session.derived_status(now, self.idle_after)
        return {"idle": "active", "active": "idle"}.get(derived, derived)


class RevokeDoesNotPersist(KontextMock):
    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            return sum(s.status == CONNECTED
                       for s in self.store.application_sessions(application_id))


class RevokeCountsDisconnected(KontextMock):
    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            already = sum(s.status == DISCONNECTED
                          for s in self.store.application_sessions(application_id))
            return super().revoke_all(application_id, organization_id) + already


class RevokeNotIdempotent(KontextMock):
    """Counts every session revoke-all ever disconnected, not those it just did."""

    revoked_so_far = 0

    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        self.revoked_so_far += super().revoke_all(application_id, organization_id)
        return self.revoked_so_far


class ForeignSessionReadable(KontextMock):
    def find_session(self, application_id: str, session_id: str,
                     organization_id: str | None = None) -> Any:
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            session = self.store.sessions.get(session_id)
            if session is None:
                return super().find_session(application_id, session_id, organization_id)
            return session, session.derived_status(self.now(), self.idle_after)


def _without_disconnected_at(session: Session) -> Session:
    if session.status != DISCONNECTED:
        return session
    return dataclasses.replace(session, disconnected_at=None, _json=None)


class DisconnectedAtMissing(KontextMock):
    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        rows = super().select_sessions(application_id, status, limit, organization_id)
        return [(_without_disconnected_at(s), d) for s, d in rows]

    def find_session(self, application_id: str, session_id: str,
                     organization_id: str | None = None) -> Any:
        session, derived = super().find_session(application_id, session_id, organization_id)
        return _without_disconnected_at(session), derived


class ListOldestFirst(KontextMock):
    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        rows = super().select_sessions(application_id, status, _ALL, organization_id)
        return list(reversed(rows))[:limit]


class HeartbeatRevives(KontextMock):
    """A heartbeat on a disconnected session answers 200: the agent never learns it was revoked."""

    def heartbeat(self, application_id: str, session_id: str) -> Any:
        with self.store.lock:
            session, _ = self.find_session(application_id, session_id)
            if session.status == DISCONNECTED:
                session.last_active_at = self.now()
                session.changed()
                return session
        return super().heartbeat(application_id, session_id)


class DisconnectRestamps(KontextMock):
    """Disconnecting a session that is already disconnected moves its disconnectedAt."""

    def disconnect(self, application_id: str, session_id: str, reason: str = "agent") -> Any:
        with self.store.lock:
            session, _ = self.find_session(application_id, session_id)
            if session.status == DISCONNECTED:
                session.disconnected_at = self.now()
                session.changed()
                return session
        return super().disconnect(application_id, session_id, reason)


# -- middlewares: the HTTP layer ---------------------------------------------------------------

_SESSIONS = re.compile(r"^/api/v1/applications/[^/]+/sessions/?$")
_ONE_SESSION = re.compile(r"^/api/v1/applications/[^/]+/sessions/([^/]+)/?$")


def rewrite(app: WsgiApp, change: Callable[[dict[str, Any], str, list[tuple[str, str]], bytes],
                                             tuple[str, list[tuple[str, str]], bytes]]
             ) -> WsgiApp:
    """A middleware that may change the status, headers and body of every answer."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return lambda data: None

        result = app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers, body = change(environ, seen["status"], list(seen["headers"]), body)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    return wrapped


def default_filter_everything(app: WsgiApp) -> WsgiApp:
    """A list without ``status`` lists every session (as status=all)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        if (environ["REQUEST_METHOD"] == "GET" and _SESSIONS.match(environ["PATH_INFO"])
                and "status" not in query and "includeInactive" not in query):
            environ = {**environ, "QUERY_STRING": urlencode({**query, "status": "all"})}
        return app(environ, start_response)

    return wrapped


def limit_default_50(app: WsgiApp) -> WsgiApp:
    """A list without ``limit`` holds 50 sessions, not the documented 100."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        if (environ["REQUEST_METHOD"] == "GET" and _SESSIONS.match(environ["PATH_INFO"])
                and "limit" not in query):
            environ = {**environ, "QUERY_STRING": urlencode({**query, "limit": 50})}
        return app(environ, start_response)

    return wrapped


def delete_without_auth(app: WsgiApp) -> WsgiApp:
    """Revoke-all without a token (or with any token) is accepted, as the dev token."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "DELETE" and _SESSIONS.match(environ["PATH_INFO"]):
            environ = {**environ, "HTTP_AUTHORIZATION": "Bearer dev-token"}
        return app(environ, start_response)

    return wrapped


def server_error_on_bad_id(app: WsgiApp) -> WsgiApp:
    """A session id that is not a UUID crashes the server (500)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = _ONE_SESSION.match(environ["PATH_INFO"])
        if match:
            try:
                uuid.UUID(match.group(1))
            except ValueError:
                start_response("500 INTERNAL SERVER ERROR", [
                    ("Content-Type", "application/json"), ("x-request-id", str(uuid.uuid4()))])
                return [b'{"error":"internal_error","message":"badly formed hexadecimal UUID"}']
        return app(environ, start_response)

    return wrapped


def wrong_envelope(app: WsgiApp) -> WsgiApp:
    """A read answers ``{"data": {...}}`` instead of ``{"session": {...}}``."""

    def change(environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        if _ONE_SESSION.match(environ["PATH_INFO"]) and body.startswith(b'{"session":'):
            body = b'{"data":' + body[len(b'{"session":'):]
        return status, headers, body

    return rewrite(app, change)


def no_request_id(app: WsgiApp) -> WsgiApp:
    """Answers lose their ``x-request-id`` header."""

    def change(environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        if environ["PATH_INFO"].startswith("/_mock"):
            return status, headers, body
        return status, [(k, v) for k, v in headers if k.lower() != "x-request-id"], body

    return rewrite(app, change)


def no_auth_at_all(app: WsgiApp) -> WsgiApp:
    """Every public request is served as the dev token's, whatever it carries or lacks."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/api/v1/"):
            environ = {**environ, "HTTP_AUTHORIZATION": "Bearer dev-token"}
        return app(environ, start_response)

    return wrapped


def malformed_token_accepted(app: WsgiApp) -> WsgiApp:
    """An Authorization header that is not ``Bearer <one token>`` is taken for the dev token."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION")
        parts = (header or "").split()
        if header is not None and (len(parts) != 2 or parts[0] != "Bearer"):
            environ = {**environ, "HTTP_AUTHORIZATION": "Bearer dev-token"}
        return app(environ, start_response)

    return wrapped


def include_inactive_ignored(app: WsgiApp) -> WsgiApp:
    """``includeInactive`` is dropped before the mock sees it."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _SESSIONS.match(environ["PATH_INFO"]):
            query = [(k, v) for k, v in parse_qsl(environ.get("QUERY_STRING", ""))
                     if k != "includeInactive"]
            environ = {**environ, "QUERY_STRING": urlencode(query)}
        return app(environ, start_response)

    return wrapped


# -- the MCP gateway's (kontext-contract --mcp) ------------------------------------------------


class _StillGateway(Gateway):
    """A gateway whose messages leave ``lastActiveAt`` where it was."""

    def post(self, message: Any, *, session_id: str | None = None, **request: Any) -> GatewayReply:
        session = self.state.store.sessions.get(session_id) if session_id else None
        before = session.last_active_at if session is not None else None
        reply = super().post(message, session_id=session_id, **request)
        if session is not None:
            with self.state.store.lock:
                session.last_active_at = before
                self.state.store.touch(session)
        return reply


class _ReinitializingGateway(Gateway):
    """A gateway that opens a new session for every initialize, a live session's id or not."""

    def post(self, message: Any, *, session_id: str | None = None, **request: Any) -> GatewayReply:
        if isinstance(message, dict) and message.get("method") == "initialize":
            session_id = None
        return super().post(message, session_id=session_id, **request)


class McpInitializeTwice(KontextMock):
    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.gateway = _ReinitializingGateway(self.state, self.oauth, self.sessions)


class McpTrafficNotActivity(KontextMock):
    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.gateway = _StillGateway(self.state, self.oauth, self.sessions)


class McpRevokeKeepsTokens(KontextMock):
    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        grants = self.state.gateway.grants
        kept = dict(grants.access), dict(grants.refresh)
        count = super().revoke_all(application_id, organization_id)
        grants.access.update(kept[0])
        grants.refresh.update(kept[1])
        return count


class McpAcceptIgnored(KontextMock):
    def __init__(self, **config: Any) -> None:
        super().__init__(**config, mcp_require_accept=False)


def mcp_delete_ignored(app: WsgiApp) -> WsgiApp:
    """``DELETE /mcp`` is answered 204 and never reaches the gateway."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "DELETE" and environ["PATH_INFO"] == "/mcp":
            start_response("204 No Content", [])
            return [b""]
        return app(environ, start_response)

    return wrapped


#: broken gateways, caught by the mcp layer (tests/test_contract_mcp.py)
MCP_VARIANTS: list[Variant] = [
    Variant("mcp-traffic-not-activity", "mcp-traffic-moves-last-active",
            "the gateway's messages do not move lastActiveAt", McpTrafficNotActivity),
    Variant("mcp-delete-ignored", "mcp-delete-disconnects",
            "DELETE /mcp answers 204 and the session stays connected",
            middleware=mcp_delete_ignored),
    Variant("mcp-revoke-keeps-tokens", "mcp-revoke-ends-session",
            "revoke-all leaves the application's gateway tokens working", McpRevokeKeepsTokens),
    Variant("mcp-initialize-twice", "mcp-initialize-once",
            "initialize with a live session's id opens a second session", McpInitializeTwice),
    Variant("mcp-accept-ignored", "mcp-accept-required",
            "a POST accepting only JSON is answered, and opens a session", McpAcceptIgnored),
]

VARIANTS: list[Variant] = [
    Variant("limit-ignored", "limit-respected", "the list ignores limit", LimitIgnored),
    Variant("limit-off-by-one", "limit-respected", "the list returns limit + 1 sessions",
            LimitOffByOne),
    Variant("limit-capped-150", "limit-respected",
            "limit is honoured only up to 150 (limit=200 lists 150 of 201 sessions)",
            LimitCapped),
    Variant("limit-default-50", "limit-default", "a list without limit holds 50 sessions",
            middleware=limit_default_50),
    Variant("default-filter-everything", "filter-default",
            "a list without status returns every session", middleware=default_filter_everything),
    Variant("inactive-leaks-idle", "filter-inactive", "status=inactive also lists idle sessions",
            InactiveLeaksIdle),
    Variant("revoke-does-not-persist", "revoke-persists",
            "revoke-all answers a count but disconnects nothing", RevokeDoesNotPersist),
    Variant("revoke-counts-disconnected", "revoke-count",
            "disconnectedCount includes sessions that were already disconnected",
            RevokeCountsDisconnected),
    Variant("revoke-not-idempotent", "revoke-idempotent",
            "revoke-all returns every session it ever disconnected", RevokeNotIdempotent),
    Variant("expiry-ignored", "derived-status-expired",
            "derivedStatus ignores tokenExpiresAt", ExpiryIgnored),
    Variant("idle-backwards", "derived-status-idle",
            "idle is computed with the threshold's direction reversed", IdleBackwards),
    Variant("foreign-session-readable", "foreign-session-404",
            "a session of another application is readable under this one",
            ForeignSessionReadable),
    Variant("delete-without-auth", "auth-required", "revoke-all needs no token",
            middleware=delete_without_auth),
    Variant("no-auth-at-all", "auth-required", "every request is served without credentials",
            middleware=no_auth_at_all),
    Variant("malformed-token-accepted", "auth-required",
            "a malformed Authorization header is taken for a valid token",
            middleware=malformed_token_accepted),
    Variant("500-on-bad-id", "invalid-id-400", "a non-UUID session id answers 500",
            middleware=server_error_on_bad_id),
    Variant("wrong-envelope", "envelope", 'a read answers {"data": ...}',
            middleware=wrong_envelope),
    Variant("disconnected-at-missing", "disconnected-at",
            "disconnected sessions have no disconnectedAt", DisconnectedAtMissing),
    Variant("no-request-id", "x-request-id", "answers carry no x-request-id",
            middleware=no_request_id),
    Variant("oldest-first", "list-order", "lists are oldest first", ListOldestFirst),
    Variant("include-inactive-ignored", "filter-include-inactive",
            "includeInactive=true changes nothing", middleware=include_inactive_ignored),
    Variant("heartbeat-revives", "lifecycle-model",
            "a heartbeat on a revoked session answers 200", HeartbeatRevives,
            needs_control_plane=True),
    Variant("disconnect-restamps", "lifecycle-model",
            "disconnecting twice moves disconnectedAt", DisconnectRestamps,
            needs_control_plane=True),
]
