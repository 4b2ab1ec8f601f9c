"""Errors as the API reports them, and the one place that turns any failure into JSON.

Routes raise; they never build an error body. ``register`` installs handlers that turn
:class:`ApiError`, werkzeug's HTTP errors and unexpected exceptions into the documented
JSON shapes (``{"error", "message", ...}``, or RFC 6749's ``{"error",
"error_description"}`` for the token endpoint).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from kontext_mock.http.exchange import Answer, json_answer

__all__ = [
    "ApiError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "OAuthError",
    "UnauthorizedError",
    "UnprocessableError",
    "ValidationError",
    "json_response",
    "register",
]

log = logging.getLogger("kontext_mock")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response; ``body`` may be pre-serialized bytes."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = Response(data, status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


class ApiError(Exception):
    """An error answer: HTTP status, snake_case code, a message, and optional extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.code, "message": self.message, **self.extra}

    def to_response(self) -> Response:
        """The whole answer, for the Flask path."""
        return json_response(self.body(), self.status, self.headers)

    def to_answer(self) -> Answer:
        """The whole answer, for the request pipeline."""
        return json_answer(self.body(), self.status, self.headers)


class ValidationError(ApiError):
    """400 ``validation_error`` with the list of what failed (``details``)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        first = details[0]
        where = f"{first['location']} {first['field']}" if first.get("field") else first["location"]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        super().__init__(
            400, "validation_error", f"invalid {where}: {first['message']}{more}", details=details
        )


class UnauthorizedError(ApiError):
    """401: no bearer token, or one the API does not accept."""

    def __init__(self, message: str, *, oauth_error: str | None = "invalid_token") -> None:
        challenge = 'Bearer realm="kontext"'
        if oauth_error:
            challenge += f', error="{oauth_error}"'
        super().__init__(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


class ForbiddenError(ApiError):
    """403 ``insufficient_scope`` naming the scopes the token lacks."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            403,
            "insufficient_scope",
            f"the token lacks the scope {' '.join(missing)}",
            missingScopes=missing,
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="kontext", error="insufficient_scope",'
                    f' scope="{" ".join(missing)}"'
                )
            },
        )


class NotFoundError(ApiError):
    """404 ``not_found``."""

    def __init__(self, message: str) -> None:
        super().__init__(404, "not_found", message)


class ConflictError(ApiError):
    """409 ``conflict``: an id that is already taken."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "conflict", message)


class UnprocessableError(ApiError):
    """422 ``unprocessable``: well-formed input that cannot be applied (``details`` says why)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        first = details[0]
        where = f"{first['field']}: " if first.get("field") else ""
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        super().__init__(422, "unprocessable", f"{where}{first['message']}{more}", details=details)


class OAuthError(ApiError):
    """An RFC 6749 section 5.2 error of the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="kontext"'
        super().__init__(status, error, description, headers=headers)

    def body(self) -> dict[str, Any]:
        """RFC 6749's error body."""
        return {"error": self.code, "error_description": self.message}


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


def _http_error(exc: HTTPException) -> Response:
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
    if status == 400:
        err: ApiError = ValidationError([{"location": "body", "field": None, "message": message}])
        return err.to_response()
    return ApiError(status, code, message, headers=headers).to_response()


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return ApiError(500, "internal_error", "an unexpected error occurred").to_response()


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""
    app.register_error_handler(ApiError, lambda exc: exc.to_response())
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
