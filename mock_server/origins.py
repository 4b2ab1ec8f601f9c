"""Which browser origins may call the mock: CORS, off unless origins are given.

A developer running a browser client against the mock on their laptop enables CORS
for that client's origin (``kontext-mock serve --cors-origin http://localhost:3000``).
Origins are matched exactly (scheme, host and port), never as patterns, and only the
public API (``/api/...``, ``/oauth2/token``) is opened to them: the control plane under
``/_mock`` never answers a cross-origin browser request with CORS headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask

__all__ = ["OriginError", "check_origin", "install"]

# scheme://host[:port] with no path: what a browser sends in its Origin header.
_ORIGIN = re.compile(
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
# The public API's paths (a regex over the request path, in flask-cors' terms).
_PUBLIC_PATHS = r"^/(?:api/|oauth2/token$)"
_ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-Id"]
# What a browser client may read of a response besides the safelisted headers.
_EXPOSED_HEADERS = ["x-request-id", "Retry-After", "WWW-Authenticate", "Date"]


class OriginError(ValueError):
    """An origin that is not ``scheme://host[:port]``."""


def check_origin(origin: str) -> str:
    """``origin`` without a trailing slash; :class:`OriginError` unless it is an exact origin."""
    value = origin.strip().rstrip("/")
    if not _ORIGIN.match(value):
        raise OriginError(
            f"not an origin: {origin!r} (give scheme://host[:port], e.g. http://localhost:3000;"
            " wildcards and paths are not accepted)"
        )
    return value


def install(app: Flask, origins: Iterable[str]) -> None:
    """Answer CORS requests from exactly ``origins`` on the public API; nothing when empty."""
    allowed = [check_origin(o) for o in origins]
    if not allowed:
        return
    from flask_cors import CORS

    CORS(
        app,
        resources={_PUBLIC_PATHS: {"origins": allowed}},
        allow_headers=_ALLOWED_HEADERS,
        expose_headers=_EXPOSED_HEADERS,
        methods=["GET", "POST", "DELETE"],
        # Bearer tokens, not cookies: the browser never needs to send credentials.
        supports_credentials=False,
        max_age=600,
        vary_header=True,
    )
