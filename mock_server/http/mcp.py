"""The MCP gateway and its OAuth over HTTP: a thin binding of the core's ``Gateway`` and
``OAuth`` to the spec's operations (``/mcp``, ``/oauth2/auth``, the well-known metadata,
and the gateway's grants of ``/oauth2/token``).

Each handler reads what the request carries (bearer token, ``Mcp-Session-Id``,
``MCP-Protocol-Version``, ``User-Agent``, the base URL the client used), asks the core,
and writes the answer. Who may reach the gateway (``Origin``, ``Host``) is
``mcp_origin.py``'s; the session's stream (``GET /mcp``) is ``mcp_stream.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kontext_mock.core.credentials import parse_bearer
from kontext_mock.core.errors import ApiError, OAuthError, UnauthorizedError
from kontext_mock.core.gateway import GatewayReply, GatewayUnauthorizedError
from kontext_mock.core.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from kontext_mock.core.oauth import (
    EXCHANGE_SCOPE,
    INVOKE_SCOPE,
    AuthorizeRefusalError,
)
from kontext_mock.core.records import AccessToken
from kontext_mock.http.mcp_origin import base_url, check_origin
from kontext_mock.http.mcp_stream import KEEPALIVE, MAX_STREAMS, open_stream
from kontext_mock.http.routing import Call, Handler, Header, Inputs
from kontext_mock.http.serving.exchange import Answer, json_answer

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine
    from kontext_mock.http.spec import Operation

__all__ = ["KEEPALIVE", "MAX_STREAMS", "check_accept", "gateway_grant", "guard", "handlers"]

GATEWAY_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
_GRANTS = ("authorization_code", "refresh_token",
           "urn:ietf:params:oauth:grant-type:token-exchange")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def guard(mock: MockEngine) -> Callable[[Operation, Inputs], AccessToken]:
    """The gateway token's check, run before anything of a request to ``/mcp`` is read
    (``routing.bind``'s guard of the ``gatewayToken`` scheme): 401 as RFC 6750 says."""

    def check(op: Operation, inputs: Inputs) -> AccessToken:
        check_origin(inputs.header, mock.config.cors_origins)
        try:
            token = mock.gateway.token(_bearer(inputs.header),
                                       f"{base_url(inputs.header)}{GATEWAY_PATH}")
        except GatewayUnauthorizedError as exc:
            raise ApiError(401, exc.error or "unauthorized", exc.description,
                           headers={"WWW-Authenticate": challenge(exc, inputs.header)}) from None
        if mock.config.mcp_require_accept:  # (after the token: the SDKs' servers say 401 first)
            check_accept(op.method, inputs.header("Accept"))
        return token

    return check


#: what the client must accept, by method (the MCP Streamable HTTP transport's MUST)
_MUST_ACCEPT = {"POST": ("application/json", "text/event-stream"), "GET": ("text/event-stream",)}


def check_accept(method: str, accept: str | None) -> None:
    """Refuse (406, JSON-RPC -32000) a ``POST`` whose ``Accept`` does not take both
    ``application/json`` and ``text/event-stream``, or a ``GET`` that does not take
    ``text/event-stream``, as the MCP SDKs' servers do; wildcards count (RFC 9110
    12.5.1), a range given ``q=0`` does not. ``DELETE`` answers no body: anything goes."""
    needed = _MUST_ACCEPT.get(method.upper())
    if not needed:
        return
    ranges: set[str] = set()
    for item in (accept or "").split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        refused = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000")
                      for p in params)
        if media and not refused:
            ranges.add(media)
    missing = [m for m in needed
               if not ranges & {m, f"{m.split('/')[0]}/*", "*/*"}]
    if missing:
        raise JsonRpcError(406, TRANSPORT_ERROR, "Not Acceptable: the client must accept "
                           + " and ".join(needed))


def _bearer(header: Header) -> str | None:
    """The request's bearer token; None without one, or with another scheme (RFC 6750
    3.1: no error code then); "" when malformed (refused as an invalid token)."""
    authorization = header("Authorization")
    if not authorization or authorization.split(" ", 1)[0].lower() != "bearer":
        return None
    try:
        return parse_bearer(authorization)
    except UnauthorizedError:
        return ""


def gateway_request(call: Call) -> dict[str, Any]:
    """What the gateway needs of a request: its token (the guard's), session, version."""
    assert call.token is not None  # the gatewayToken guard found it
    return {"token": call.token, "session_id": call.header("Mcp-Session-Id"),
            "version": call.header("MCP-Protocol-Version")}


def handlers(mock: MockEngine) -> dict[str, Handler]:
    """The handler of every gateway and gateway-OAuth operation, by operationId."""

    def server_metadata(call: Call) -> Answer:
        base = base_url(call.header)
        return json_answer({
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth2/auth",
            "token_endpoint": f"{base}/oauth2/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token",
                                      "client_credentials", *_GRANTS[2:]],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic",
                                                      "client_secret_post"],
            "scopes_supported": [INVOKE_SCOPE, EXCHANGE_SCOPE],
        })

    def resource_metadata(call: Call) -> Answer:
        base = base_url(call.header)
        return json_answer({
            "resource": f"{base}{GATEWAY_PATH}",
            "authorization_servers": [base],
            "scopes_supported": [INVOKE_SCOPE],
            "bearer_methods_supported": ["header"],
        })

    def authorize(call: Call) -> Answer:
        params = {k: v for k, v in call.params.items() if isinstance(v, str)}
        try:
            location = mock.oauth.authorize(params)
        except AuthorizeRefusalError as refusal:
            location = refusal.location
        return Answer(302, [("Location", location), ("Content-Length", "0")])

    def message(call: Call) -> Answer:
        try:
            reply = mock.gateway.post(call.body, user_agent=call.header("User-Agent"),
                                      **gateway_request(call))
        except GatewayUnauthorizedError as exc:
            return unauthorized(exc, call.header)
        return answer(reply)

    def stream(call: Call) -> Answer:
        try:
            reply = mock.gateway.stream_of(**gateway_request(call))
        except GatewayUnauthorizedError as exc:
            return unauthorized(exc, call.header)
        if reply.status != 200 or reply.session_id is None:
            return answer(reply)
        return open_stream(mock.state.gateway, reply.session_id)

    def end(call: Call) -> Answer:
        try:
            reply = mock.gateway.end_session(**gateway_request(call))
        except GatewayUnauthorizedError as exc:
            return unauthorized(exc, call.header)
        return answer(reply)

    return {
        "getAuthorizationServerMetadata": server_metadata,
        "getProtectedResourceMetadata": resource_metadata,
        "authorize": authorize,
        "mcpMessage": message,
        "mcpStream": stream,
        "mcpEndSession": end,
    }


def gateway_grant(mock: MockEngine, form: dict[str, str]) -> Answer | None:
    """The token endpoint's answer to a gateway grant; None for any other grant type."""
    grant_type = form.get("grant_type")
    if grant_type not in _GRANTS:
        return None
    if grant_type == "authorization_code":
        grant = mock.oauth.redeem_code(form)
    elif grant_type == "refresh_token":
        grant = mock.oauth.refresh(form)
    else:
        if not form.get("subject_token"):
            raise OAuthError(400, "invalid_request", "subject_token is required")
        try:
            subject = mock.authenticate(form["subject_token"])
        except UnauthorizedError:
            raise OAuthError(400, "invalid_grant", "unknown or expired subject_token") from None
        grant = mock.oauth.exchange(form, subject)
    return json_answer(grant, headers=_NO_STORE)


def answer(reply: GatewayReply) -> Answer:
    """A gateway reply as an HTTP answer."""
    headers: dict[str, str] = {}
    if reply.session_id is not None and reply.protocol_version is not None:
        headers["Mcp-Session-Id"] = reply.session_id
    if reply.body is None:  # (a 204 has no Content-Length: RFC 9110 8.6)
        length = [] if reply.status == 204 else [("Content-Length", "0")]
        return Answer(reply.status, [*length, *headers.items()])
    return json_answer(reply.body, reply.status, headers=headers)


def challenge(exc: GatewayUnauthorizedError, header: Header) -> str:
    """RFC 6750's challenge, naming the gateway's protected-resource metadata (RFC 9728)."""
    said = f'Bearer realm="kontext", resource_metadata="{base_url(header)}{METADATA_PATH}"'
    said += f', scope="{INVOKE_SCOPE}"'
    if exc.error is not None:
        said += f', error="{exc.error}", error_description="{exc.description}"'
    return said


def unauthorized(exc: GatewayUnauthorizedError, header: Header) -> Answer:
    """The 401 of a token that stopped working between the guard and the handler."""
    return json_answer({"error": exc.error or "unauthorized", "message": exc.description}, 401,
                       headers={"WWW-Authenticate": challenge(exc, header)})
