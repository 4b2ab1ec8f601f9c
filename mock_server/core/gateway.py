"""The MCP gateway without HTTP: JSON-RPC messages in, results and errors out.

A stand-in for Kontext's gateway at ``{base}/mcp`` (MCP Streamable HTTP). Each MCP session
is a session record of the token's application, made at ``initialize`` from what the
client reported, moved by its traffic (every JSON-RPC message sets ``lastActiveAt``), and
ended by ``DELETE``, revoke-all or anything else that disconnects the record. The HTTP
binding (``kontext_mock.http.mcp``) hands each request here and writes what comes back.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kontext_mock.core.errors import ApiError, UnauthorizedError
from kontext_mock.core.gatewaystate import McpLink
from kontext_mock.core.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MessageKind,
    jsonrpc_error,
    message_kind,
)
from kontext_mock.core.oauth import (
    EXCHANGE_AUDIENCE,
    GATEWAY_SCOPES,
    INVOKE_SCOPE,
    OAuth,
    same_resource,
)
from kontext_mock.core.records import CONNECTED, AccessToken, Session
from kontext_mock.core.sessions import Sessions
from kontext_mock.core.state import MockState

__all__ = [
    "BATCH_VERSIONS",
    "LATEST_VERSION",
    "SUPPORTED_VERSIONS",
    "Gateway",
    "GatewayReply",
    "GatewayUnauthorizedError",
    "checked_tools",
]

#: the revisions of MCP the gateway negotiates, newest first
#: what ``initialize`` says the server is
SERVER_INFO = {"name": "kontext-mock-gateway", "version": "1.0"}
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
LATEST_VERSION = SUPPORTED_VERSIONS[0]
#: the revisions whose sessions may post JSON-RPC batches: 2025-03-26 added them (a
#: server "MUST support receiving" them), 2025-06-18 removed them
BATCH_VERSIONS = frozenset({"2025-03-26"})
#: the session's bounds, as the agent endpoint's schema sets them (openapi.yaml)
MAX_HOSTNAME = 255
MAX_USER_AGENT = 1024
#: what the MCP SDKs' servers answer for a session they do not know
SESSION_NOT_FOUND = -32001
#: the probe of the stateless revision (2026-07-28), refused so the client initializes
DISCOVER = "server/discover"
_EMPTY_LISTS = {
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
    "prompts/list": "prompts",
}


def _session_not_found(request_id: Any = None) -> GatewayReply:
    """A session the gateway does not serve (ended, unknown, another application's): 404,
    on which clients initialize again."""
    return GatewayReply(404, jsonrpc_error(SESSION_NOT_FOUND, "Session not found", request_id))


@dataclass(slots=True)
class GatewayReply:
    """What the gateway answers: an HTTP status, a JSON-RPC body (a response, the array
    of a batch's responses, or None: no body) and, for ``initialize``, the new session's
    id (the ``Mcp-Session-Id``)."""

    status: int
    body: dict[str, Any] | list[dict[str, Any]] | None = None
    session_id: str | None = None
    #: the negotiated protocol version, on ``initialize``
    protocol_version: str | None = None


class GatewayUnauthorizedError(Exception):
    """401 at the gateway (RFC 6750): no token (``error`` None), or one it refuses
    (``invalid_token``)."""

    def __init__(self, error: str | None, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def checked_tools(raw: Any) -> list[dict[str, Any]]:
    """The gateway's tools as a scenario gives them: a list of ``{name, description?,
    inputSchema?, result? | text?}``; ValueError names what is wrong."""
    if not isinstance(raw, list):
        raise ValueError("tools must be a list")
    tools: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ValueError(f"tools[{i}] needs a name (a non-empty string)")
        unknown = sorted(set(item) - {"name", "title", "description", "inputSchema", "result",
                                      "text", "annotations"})
        if unknown:
            raise ValueError(f"tools[{i}]: unknown field {unknown[0]!r}")
        if item["name"] in names:
            raise ValueError(f"tools[{i}]: the name {item['name']!r} is taken")
        if "result" in item and "text" in item:
            raise ValueError(f"tools[{i}]: give result or text, not both")
        if "result" in item and not isinstance(item["result"], dict):
            raise ValueError(f"tools[{i}].result must be a CallToolResult object")
        if "inputSchema" in item and not isinstance(item["inputSchema"], dict):
            raise ValueError(f"tools[{i}].inputSchema must be a JSON Schema object")
        names.add(item["name"])
        tools.append(dict(item))
    return tools


class Gateway:
    """The MCP gateway's requests: ``POST`` (a JSON-RPC message), the stream's ``GET``
    and ``DELETE``, each with its bearer token."""

    def __init__(self, state: MockState, oauth: OAuth, sessions: Sessions) -> None:
        self.state = state
        self.oauth = oauth
        self.sessions = sessions

    # -- tokens ----------------------------------------------------------------------------

    def token(self, bearer: str | None, resource: str) -> AccessToken:
        """The gateway token of a request to the gateway at ``resource`` (its URL); 401
        when absent, unknown, expired, revoked, without ``mcp:invoke`` (or
        ``gateway:access``) or for another audience."""
        if bearer is None:
            raise GatewayUnauthorizedError(None, "a gateway token is required (Authorization: Bearer)")
        try:
            token = self.oauth.authenticate(bearer)
        except UnauthorizedError as exc:
            raise GatewayUnauthorizedError("invalid_token", exc.message) from None
        if not token.scopes & GATEWAY_SCOPES:
            raise GatewayUnauthorizedError("invalid_token", f"the token lacks the scope {INVOKE_SCOPE}")
        audience = token.audience
        if audience != EXCHANGE_AUDIENCE and (audience is None
                                              or not same_resource(audience, resource)):
            raise GatewayUnauthorizedError("invalid_token", "the token is not for this gateway")
        return token

    # -- POST ------------------------------------------------------------------------------

    def post(self, message: Any, *, token: AccessToken, session_id: str | None,
             version: str | None, user_agent: str | None) -> GatewayReply:
        """One JSON-RPC message (or a batch of them, an array) posted to the gateway with
        ``token`` (checked by :meth:`token`, once, before the request is read)."""
        if isinstance(message, list):
            return self._batch(message, token, session_id, version)
        kind = message_kind(message)
        if kind is None:
            return GatewayReply(400, jsonrpc_error(
                INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message"))
        method = message.get("method")
        request_id = message.get("id")
        if method == "initialize":
            if kind is not MessageKind.REQUEST:
                return GatewayReply(400, jsonrpc_error(INVALID_REQUEST,
                                                       "initialize must be a request (with an id)"))
            if session_id is not None:
                with self.state.store.lock:
                    live = self._live_session(session_id, token)
                if live is not None:
                    # as the TypeScript SDK's server: a session is initialized once; the
                    # client opens another by initializing without Mcp-Session-Id
                    return GatewayReply(400, jsonrpc_error(
                        INVALID_REQUEST, "Invalid Request: Server already initialized (this"
                        " Mcp-Session-Id is a live session; send initialize without it to open"
                        " another)", request_id))
            return self._initialize(message, token, user_agent)
        if session_id is None and method == DISCOVER:
            # The stateless revision's probe: unknown here, so the client falls back to
            # initialize and a session exists (an assumption: mcp-discover-refused).
            return GatewayReply(400, jsonrpc_error(
                METHOD_NOT_FOUND, f"Method not found: {DISCOVER} (initialize first)", request_id))
        with self._within_session(token, session_id, version, request_id) as session:
            if isinstance(session, GatewayReply):
                return session
            self._active(session, token)
        if kind is not MessageKind.REQUEST:
            return GatewayReply(202)  # a notification, or the client's answer to a request
        return GatewayReply(200, self._answer(message))

    def _batch(self, messages: list[Any], token: AccessToken, session_id: str | None,
               version: str | None) -> GatewayReply:
        """A JSON-RPC batch: for a session that negotiated a revision with batches
        (:data:`BATCH_VERSIONS`), the array of the responses to its requests in order, or
        202 when it holds none (only notifications and responses). Refused whole (400,
        nothing of it done) when it is empty, holds a member that is no message (as the
        TypeScript SDK's server: MCP's schema has no response without an id, which JSON-RPC
        would answer such a member with), holds ``initialize`` (never part of a batch), or
        its session's revision has no batches."""
        if not messages:
            return GatewayReply(400, jsonrpc_error(INVALID_REQUEST, "Invalid Request: an empty"
                                                   " batch"))
        kinds = [message_kind(m) for m in messages]
        if None in kinds:
            return GatewayReply(400, jsonrpc_error(
                INVALID_REQUEST, f"Invalid Request: batch member {kinds.index(None)} is not a"
                " JSON-RPC 2.0 message"))
        if any(m.get("method") == "initialize" for m in messages):
            return GatewayReply(400, jsonrpc_error(
                INVALID_REQUEST, "Invalid Request: initialize must not be part of a JSON-RPC"
                " batch"))
        with self._within_session(token, session_id, version) as session:
            if isinstance(session, GatewayReply):
                return session
            negotiated = self.state.gateway.links[session.id].protocol_version
            if negotiated not in BATCH_VERSIONS:
                return GatewayReply(400, jsonrpc_error(
                    INVALID_REQUEST, f"Invalid Request: JSON-RPC batches are not supported in"
                    f" MCP {negotiated}, the revision of this session (only"
                    f" {', '.join(sorted(BATCH_VERSIONS))} has them; 2025-06-18 removed them)"))
            self._active(session, token)
        responses = [self._answer(message) for message, kind in zip(messages, kinds, strict=True)
                     if kind is MessageKind.REQUEST]
        return GatewayReply(200, responses) if responses else GatewayReply(202)

    def _initialize(self, message: dict[str, Any], token: AccessToken,
                    user_agent: str | None) -> GatewayReply:
        request_id = message.get("id")
        params = message.get("params")
        info = params.get("clientInfo") if isinstance(params, dict) else None
        asked = params.get("protocolVersion") if isinstance(params, dict) else None
        if not isinstance(info, dict) or not isinstance(info.get("name"), str) \
                or not isinstance(asked, str):
            return GatewayReply(400, jsonrpc_error(
                INVALID_PARAMS, "initialize needs params.protocolVersion and params.clientInfo"
                " with a name", request_id))
        wrong = [key for key in ("name", "version", "title", "os", "sessionId", "hostname")
                 if key in info and not isinstance(info[key], str)]
        if wrong or len(info.get("hostname") or "") > MAX_HOSTNAME:
            # what the sessions API answers must match its own ClientInfo and Session schemas
            return GatewayReply(400, jsonrpc_error(
                INVALID_PARAMS, f"clientInfo.{wrong[0]} must be a string" if wrong else
                f"clientInfo.hostname is over {MAX_HOSTNAME} characters", request_id))
        if user_agent is not None and len(user_agent) > MAX_USER_AGENT:
            user_agent = user_agent[:MAX_USER_AGENT]  # (the session's userAgent is bounded)
        client_session = info.get("sessionId")
        if not isinstance(client_session, str) or not client_session:
            if self.state.config.mcp_require_client_session_id:
                return GatewayReply(400, jsonrpc_error(
                    INVALID_PARAMS, "initialize requires clientInfo.sessionId", request_id))
            client_session = str(uuid.uuid4())
        hostname = info.get("hostname") if isinstance(info.get("hostname"), str) else None
        version = asked if asked in SUPPORTED_VERSIONS else LATEST_VERSION
        assert token.application_id is not None
        try:
            with self.state.store.lock:
                if self.state.gateway.grants.access.get(token.token) is not token:
                    # revoked (revoke-all) since it was checked: no session with a dead token
                    raise GatewayUnauthorizedError("invalid_token", "the token was revoked")
                session = self.sessions.open_session(
                    token.application_id,
                    token_identifier=hashlib.sha256(token.token.encode()).hexdigest()[:16],
                    authenticated_user_id=token.user_id or token.client_id,
                    client_session_id=client_session, hostname=hostname,
                    user_agent=user_agent, client_info=info, token_expires_at=token.expires_at)
                self.state.gateway.links[session.id] = McpLink(token.application_id, version,
                                                               token.grant)
        except ApiError as exc:
            return GatewayReply(exc.status, jsonrpc_error(
                INVALID_PARAMS if exc.status == 400 else INTERNAL_ERROR, exc.message, request_id))
        result = {
            "protocolVersion": version,
            "capabilities": {
                "tools": {"listChanged": False},
                "resources": {"subscribe": False, "listChanged": False},
                "prompts": {"listChanged": False},
                "logging": {},
            },
            "serverInfo": dict(SERVER_INFO),
            "instructions": "A stand-in for the Kontext MCP gateway (kontext-mock).",
        }
        return GatewayReply(200, {"jsonrpc": "2.0", "id": request_id, "result": result},
                            session_id=session.id, protocol_version=version)

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        request_id = message.get("id")
        method = message["method"]
        given = message.get("params")
        params: dict[str, Any] = given if isinstance(given, dict) else {}
        result: dict[str, Any]
        if method in ("ping", "logging/setLevel"):
            result = {}
        elif method == "tools/list":
            result = {"tools": [_listed(t) for t in self.state.gateway.tools]}
        elif method == "tools/call":
            name = params.get("name")
            tool = next((t for t in self.state.gateway.tools if t["name"] == name), None)
            if tool is None:
                return jsonrpc_error(INVALID_PARAMS, f"Unknown tool: {name}", request_id)
            result = tool.get("result") or {
                "content": [{"type": "text", "text": str(tool.get("text", ""))}], "isError": False}
        elif method in _EMPTY_LISTS:
            result = {_EMPTY_LISTS[method]: []}
        else:
            return jsonrpc_error(METHOD_NOT_FOUND, f"Method not found: {method}", request_id)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -- GET and DELETE --------------------------------------------------------------------

    def stream_of(self, *, token: AccessToken, session_id: str | None,
                  version: str | None) -> GatewayReply:
        """May the server-to-client stream of ``session_id`` open? 200 with the session's
        id when it may. Opening it is not activity (an assumption: mcp-stream-not-activity)."""
        return self._session_request(token, session_id, version, end=False)

    def end_session(self, *, token: AccessToken, session_id: str | None,
                    version: str | None) -> GatewayReply:
        """``DELETE``: the client ends its session (disconnected, ``session.disconnected``)."""
        return self._session_request(token, session_id, version, end=True)

    @contextlib.contextmanager
    def _within_session(self, token: AccessToken, session_id: str | None,
                        version: str | None, request_id: Any = None,
                        ) -> Iterator[Session | GatewayReply]:
        """A request within a session: the live session, with the store's lock held for
        the block, or the refusal to answer instead. Refused before the lookup: no
        ``Mcp-Session-Id`` or a protocol version the gateway does not speak (400); then a
        session it does not serve for the token's application (404)."""
        if session_id is None:
            yield GatewayReply(400, jsonrpc_error(
                INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required", request_id))
            return
        problem = self._version_problem(version)
        if problem is not None:
            yield problem
            return
        with self.state.store.lock:
            session = self._live_session(session_id, token)
            yield session if session is not None else _session_not_found(request_id)

    def _session_request(self, token: AccessToken, session_id: str | None,
                         version: str | None, *, end: bool) -> GatewayReply:
        with self._within_session(token, session_id, version) as session:
            if isinstance(session, GatewayReply):
                return session
            if end:
                self.state.disconnect(session, self.state.clock.now(), "agent")
                return GatewayReply(204)
        return GatewayReply(200, session_id=session.id)

    # -- shared ----------------------------------------------------------------------------

    def _version_problem(self, version: str | None) -> GatewayReply | None:
        # Without the header a server assumes 2025-03-26 (the MCP specification).
        if version is not None and version not in SUPPORTED_VERSIONS:
            return GatewayReply(400, jsonrpc_error(
                INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {version!r}"
                f" (supported: {', '.join(SUPPORTED_VERSIONS)})"))
        return None

    def _live_session(self, session_id: str, token: AccessToken) -> Session | None:
        """The connected session the gateway serves under this id, for the token's
        application; None otherwise (call with the store's lock held)."""
        link = self.state.gateway.links.get(session_id)
        session = self.state.store.sessions.get(session_id)
        if (link is None or session is None or session.status != CONNECTED
                or link.application_id != token.application_id):
            return None
        return session

    def _active(self, session: Session, token: AccessToken) -> None:
        """A JSON-RPC message arrived: ``lastActiveAt`` is now, and a refreshed token's
        later expiry is the session's (an assumption: mcp-token-expiry-follows-token)."""
        session.last_active_at = self.state.clock.now()
        if token.expires_at is not None and (session.token_expires_at is None
                                             or token.expires_at > session.token_expires_at):
            session.token_expires_at = token.expires_at
        self.state.store.touch(session)


def _listed(tool: dict[str, Any]) -> dict[str, Any]:
    listed: dict[str, Any] = {k: tool[k] for k in ("name", "title", "description", "annotations")
                              if k in tool}
    listed["inputSchema"] = tool.get("inputSchema") or {"type": "object"}
    return listed
