"""Limits at the HTTP edge, refused by the app in JSON before any route runs.

Two layers bound what one request may cost. The HTTP server's hard limits
(:data:`~mock_server.serve.SERVER_MAX_BODY_BYTES`, ``SERVER_MAX_HEADER_BYTES``) stop a
request before the app sees it, in ``text/plain``; the app's own, lower limits here
(``MockConfig.max_body_bytes``, ``max_header_bytes``) answer everything between them in
the API's JSON error shape, so a client sees ``413 payload_too_large`` or
``431 request_header_fields_too_large`` like any other documented error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, request

from .errors import ApiError

if TYPE_CHECKING:
    from .config import MockConfig

__all__ = ["header_bytes", "header_fields", "install"]

# WSGI keeps these two request headers without the HTTP_ prefix.
_UNPREFIXED = ("CONTENT_TYPE", "CONTENT_LENGTH")
# ...and werkzeug's EnvironHeaders leaves these out (they are not the body's headers).
_PREFIXED_BODY_HEADERS = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})


def header_bytes(environ: dict[str, object]) -> int:
    """About how many bytes the request's header fields took on the wire (``Name: value\\r\\n``)."""
    return header_fields(environ)[0]


def header_fields(environ: dict[str, object]) -> tuple[int, list[tuple[str, str]]]:
    """:func:`header_bytes`, and the header fields as werkzeug's ``EnvironHeaders`` lists
    them (names title-cased), in one pass over ``environ`` (the express lane needs both)."""
    size = 0
    fields: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if isinstance(value, str):
                size += len(key) - 1 + len(value)
            if key not in _PREFIXED_BODY_HEADERS:
                fields.append((key[5:].replace("_", "-").title(), value))  # type: ignore[arg-type]
        elif key in _UNPREFIXED and isinstance(value, str):
            size += len(key) + 4 + len(value)
            if value:
                fields.append((key.replace("_", "-").title(), value))
    return size, fields


def install(app: Flask, config: MockConfig) -> None:
    """Refuse header blocks over ``max_header_bytes`` on every route (431), and bodies over
    ``max_body_bytes`` wherever a route reads one (413, werkzeug's check, answered by
    errors.py). A route that reads no body ignores one (the server's limit still bounds it)."""
    max_headers = config.max_header_bytes
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes

    @app.before_request
    def _header_limit() -> None:
        if header_bytes(request.environ) > max_headers:
            raise ApiError(
                431, "request_header_fields_too_large",
                f"the request's header fields are larger than {max_headers} bytes",
            )
