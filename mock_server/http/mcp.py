"""The MCP gateway and its OAuth over HTTP: a thin binding of the core's ``Gateway`` and
``OAuth`` to the spec's operations (``/mcp``, ``/oauth2/auth``, the well-known metadata,
and the gateway's grants of ``/oauth2/token``).

Each handler reads what the request carries (bearer token, ``Mcp-Session-Id``,
``MCP-Protocol-Version``, ``User-Agent``, the base URL the client used), asks the core,
and writes the answer. The session's server-to-client stream (``GET /mcp``) is, on the
mock's server, a coroutine on its event loop that holds no thread: it waits for the
session to end, sending keep-alive comments meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Response, request

from kontext_mock.core.credentials import parse_bearer
from kontext_mock.core.errors import OAuthError, UnauthorizedError
from kontext_mock.core.gateway import GatewayReply, GatewayUnauthorizedError
from kontext_mock.core.gatewaystate import GatewayState
from kontext_mock.core.oauth import (
    EXCHANGE_SCOPE,
    INVOKE_SCOPE,
    AuthorizeRefusalError,
)
from kontext_mock.http.errors import json_response
from kontext_mock.http.routing import Call, Handler

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine

__all__ = ["KEEPALIVE", "gateway_grant", "handlers"]

#: seconds between keep-alive comments on a quiet session stream
KEEPALIVE = 15.0
GATEWAY_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
_GRANTS = ("authorization_code", "refresh_token",
           "urn:ietf:params:oauth:grant-type:token-exchange")
_OPENING = b": session stream\n\n"
_KEEPALIVE = b": keep-alive\n\n"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def base_url() -> str:
    """The base URL the client used (scheme and ``Host``), without a trailing slash."""
    return request.host_url.rstrip("/")


def handlers(mock: MockEngine) -> dict[str, Handler]:
    """The handler of every gateway and gateway-OAuth operation, by operationId."""

    def server_metadata(call: Call) -> Response:
        base = base_url()
        return json_response({
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

    def resource_metadata(call: Call) -> Response:
        base = base_url()
        return json_response({
            "resource": f"{base}{GATEWAY_PATH}",
            "authorization_servers": [base],
            "scopes_supported": [INVOKE_SCOPE],
            "bearer_methods_supported": ["header"],
        })

    def authorize(call: Call) -> Response:
        params = {k: v for k, v in call.params.items() if isinstance(v, str)}
        try:
            location = mock.oauth.authorize(params)
        except AuthorizeRefusalError as refusal:
            location = refusal.location
        return Response(status=302, headers={"Location": location})

    def gateway_request() -> dict[str, Any]:
        header = request.headers.get("Authorization")
        bearer = None
        if header:
            try:
                bearer = parse_bearer(header)
            except UnauthorizedError:
                bearer = ""  # malformed: refused as an invalid token, not as none
        return {
            "bearer": bearer if bearer is None else (bearer or "\0"),
            "resource": f"{base_url()}{GATEWAY_PATH}",
            "session_id": request.headers.get("Mcp-Session-Id"),
            "version": request.headers.get("MCP-Protocol-Version"),
        }

    def message(call: Call) -> Response:
        try:
            reply = mock.gateway.post(call.body, user_agent=request.headers.get("User-Agent"),
                                      **gateway_request())
        except GatewayUnauthorizedError as exc:
            return unauthorized(exc)
        return answer(reply)

    def stream(call: Call) -> Response:
        try:
            reply = mock.gateway.stream_of(**gateway_request())
        except GatewayUnauthorizedError as exc:
            return unauthorized(exc)
        if reply.status != 200 or reply.session_id is None:
            return answer(reply)
        return session_stream(mock.state.gateway, reply.session_id)

    def end(call: Call) -> Response:
        try:
            reply = mock.gateway.end_session(**gateway_request())
        except GatewayUnauthorizedError as exc:
            return unauthorized(exc)
        return answer(reply)

    return {
        "getAuthorizationServerMetadata": server_metadata,
        "getProtectedResourceMetadata": resource_metadata,
        "authorize": authorize,
        "mcpMessage": message,
        "mcpStream": stream,
        "mcpEndSession": end,
    }


def gateway_grant(mock: MockEngine, form: dict[str, str]) -> Response | None:
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
    return json_response(grant, headers=_NO_STORE)


def answer(reply: GatewayReply) -> Response:
    """A gateway reply as an HTTP answer."""
    headers: dict[str, str] = {}
    if reply.session_id is not None and reply.protocol_version is not None:
        headers["Mcp-Session-Id"] = reply.session_id
    if reply.body is None:
        return Response(status=reply.status, headers=headers)
    return json_response(reply.body, reply.status, headers=headers)


def unauthorized(exc: GatewayUnauthorizedError) -> Response:
    """RFC 6750's 401, naming the gateway's protected-resource metadata (RFC 9728)."""
    challenge = f'Bearer realm="kontext", resource_metadata="{base_url()}{METADATA_PATH}"'
    challenge += f', scope="{INVOKE_SCOPE}"'
    if exc.error is not None:
        challenge += f', error="{exc.error}", error_description="{exc.description}"'
    return json_response({"error": exc.error or "unauthorized", "message": exc.description}, 401,
                         headers={"WWW-Authenticate": challenge})


# -- the session's stream ---------------------------------------------------------------------


def session_stream(gateway: GatewayState, session_id: str) -> Response:
    """``GET /mcp``'s answer: the stream of ``session_id``, open until the session ends."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
               "Mcp-Session-Id": session_id}
    environ = request.environ
    if environ.get("kontext.streams") == "async":
        # The mock's server runs it on its event loop, holding no thread.
        environ["kontext.answer_stream"] = (
            functools.partial(_async_stream, gateway, session_id), lambda: None)
        return Response(b"", mimetype="text/event-stream", headers=headers)
    gone = environ.get("kontext.client_gone")
    return Response(_sync_stream(gateway, session_id, gone), mimetype="text/event-stream",
                    headers=headers)


async def _async_stream(gateway: GatewayState, session_id: str) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits any more
            loop.call_soon_threadsafe(ended.set)

    unwatch = gateway.watch(session_id, wake)
    try:
        yield _OPENING
        while not ended.is_set():
            try:
                async with asyncio.timeout(KEEPALIVE):
                    await ended.wait()
            except TimeoutError:
                yield _KEEPALIVE
    finally:
        unwatch()


def _sync_stream(gateway: GatewayState, session_id: str,
                 gone: Callable[[], bool] | None) -> Iterator[bytes]:
    ended = threading.Event()
    unwatch = gateway.watch(session_id, ended.set)
    try:
        yield _OPENING
        quiet = 0.0
        while not ended.wait(1.0):
            if gone is not None and gone():
                return
            quiet += 1.0
            if quiet >= KEEPALIVE:
                quiet = 0.0
                yield _KEEPALIVE
    finally:
        unwatch()
