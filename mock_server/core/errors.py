"""Errors as the API reports them: a status, a snake_case code, a message.

The mock raises these wherever a request cannot be done (a record not found, a token
refused, input that does not hold together); they know their HTTP status and body, and
``kontext_mock.http.errors`` turns them into answers, in one place.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "ApiError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "OAuthError",
    "UnauthorizedError",
    "UnprocessableError",
    "ValidationError",
]

log = logging.getLogger("kontext_mock")


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
