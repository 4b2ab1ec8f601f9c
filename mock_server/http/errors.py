"""Errors into answers, in one place: routes raise, they never build an error body.

``register`` installs handlers on the Flask app that turn :class:`ApiError`, werkzeug's
HTTP errors and unexpected exceptions into the documented JSON shapes (``{"error",
"message", ...}``, or RFC 6749's ``{"error", "error_description"}`` for the token
endpoint); :func:`answer_for` does the same for the request pipeline.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from kontext_mock.core.errors import ApiError, ValidationError, log
from kontext_mock.core.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from kontext_mock.http.serving.exchange import Answer, json_answer

__all__ = ["EDGE_ERRORS", "answer_for", "json_response", "register", "response_for"]

#: The mock's own refusals that no route's spec lists, by error code: status and when.
#: Most come from its HTTP layer (the server, or the request pipeline before any route);
#: the session cap from any route that would make a session. Every one is the API's
#: error shape (``{"error", "message"}``) with ``x-request-id`` and ``Date``.
EDGE_ERRORS: dict[str, tuple[int, str]] = {
    "malformed_request": (400, "not HTTP/1.1, or no Host or two (the connection is closed)"),
    "cross_origin_refused": (403, "a web page's request to the control plane"),
    "request_timeout": (408, "a request head or body not received in time"),
    "payload_too_large": (413, "a body over the route's limit"),
    "too_many_sessions": (409, "a new session past MockConfig.max_sessions"),
    "host_refused": (421, "a Host name the mock does not answer to (DNS rebinding)"),
    "request_header_fields_too_large": (431, "header fields over the limits"),
    "too_many_connections": (503, "every connection busy at the connection cap"),
    "too_many_streams": (503, "every event stream place taken"),
    "state_not_saved": (503, "a change the state file could not write"),
}



def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response; ``body`` may be pre-serialized bytes."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = Response(data, status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


def response_for(exc: ApiError) -> Response:
    """The Flask path's answer to an error."""
    return json_response(exc.body(), exc.status, exc.headers)


def answer_for(exc: ApiError, jsonrpc: bool = False) -> Answer:
    """The request pipeline's answer to an error; with ``jsonrpc`` (a refusal of a
    JSON-RPC endpoint's request, e.g. a 429 of ``/mcp``), in JSON-RPC's words."""
    if jsonrpc and not isinstance(exc, JsonRpcError):
        exc = JsonRpcError(exc.status, TRANSPORT_ERROR, exc.message, headers=exc.headers)
    return json_answer(exc.body(), exc.status, exc.headers)


# werkzeug's HTTP errors that reach us without a route having run (unknown path, wrong
# method, body too large, malformed body), in the API's words.
_HTTP_CODES = {
    400: "validation_error",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "request_header_fields_too_large",
}


def _http_error(exc: HTTPException, jsonrpc_paths: Collection[str] = ()) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    headers: dict[str, str] = {}
    if status == 404:
        message = f"no route for {request.method} {request.path}"
    elif status == 405:
        allowed = exc.valid_methods or []  # type: ignore[attr-defined]
        message = f"{request.method} is not allowed on {request.path}; allowed: {', '.join(allowed)}"
        headers["Allow"] = ", ".join(allowed)
    elif status == 413:
        message = "the request body is too large"
    else:
        message = exc.description or exc.name
    if request.path in jsonrpc_paths:  # (a JSON-RPC endpoint refuses in JSON-RPC's words)
        return response_for(JsonRpcError(status, TRANSPORT_ERROR, message, headers=headers))
    if status == 400:
        err: ApiError = ValidationError([{"location": "body", "field": None, "message": message}])
        return response_for(err)
    return response_for(ApiError(status, code, message, headers=headers))


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return response_for(ApiError(500, "internal_error", "an unexpected error occurred"))


def register(app: Flask, jsonrpc_paths: Collection[str] = ()) -> None:
    """Install the error handlers on ``app``; werkzeug's refusals (405, 413...) of
    ``jsonrpc_paths`` are JSON-RPC errors, ``id`` null (their operations'
    ``x-error-style: jsonrpc``)."""
    paths = frozenset(jsonrpc_paths)
    app.register_error_handler(ApiError, response_for)
    app.register_error_handler(HTTPException, lambda exc: _http_error(exc, paths))
    app.register_error_handler(Exception, _unexpected)
