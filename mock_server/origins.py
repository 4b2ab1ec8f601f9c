"""Which browser origins may call the mock: CORS, off unless origins are given.

A developer running a browser client against the mock on their laptop enables CORS
for that client's origin (``kontext-mock serve --cors-origin http://localhost:3000``).
Origins are matched exactly (scheme, host and port), never as patterns, and only the
public API (``/api/...``, ``/oauth2/token``) is opened to them.

The control plane under ``/_mock`` is for tests and tools, never for web pages: on
loopback it needs no credentials, so a page the developer visits could otherwise reset
or fault the mock with a "simple" cross-site request, or read it after pointing a DNS
name of its own at 127.0.0.1 (DNS rebinding). It refuses any request whose ``Origin``
header (browsers send one on every cross-origin request and on same-origin writes) is not
the mock's own origin, which only its dashboard (``/_mock/ui/``) has, and, while it is
open without an admin token, any request whose ``Host`` is not a loopback name (under a
rebound name a page is the mock's own origin: the Host tells it apart).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from flask import Flask, request

from .errors import ApiError

if TYPE_CHECKING:
    from .config import MockConfig

__all__ = ["OriginError", "check_origin", "control_origin_refusal", "install", "loopback_host"]

# scheme://host[:port] with no path: what a browser sends in its Origin header.
_ORIGIN = re.compile(
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
# The public API's paths (a regex over the request path, in flask-cors' terms).
_PUBLIC_PATHS = r"^/(?:api/|oauth2/token$)"
_CONTROL_PREFIX = "/_mock"
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


# Special-use top-level domains (RFC 2606, RFC 6761) that public DNS never delegates, so
# no attacker can point one at 127.0.0.1; in-process transports use them as base URLs.
_RESERVED_TLDS = ("localhost", "test", "invalid", "example")


def loopback_host(host: str) -> bool:
    """True when a ``Host`` header names this machine (``localhost``, 127.0.0.0/8, ``[::1]``)
    or a reserved name that no public DNS can resolve (``*.test``, ``*.invalid``, ...)."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1] or [::1]:8080
        name = host[1:host.find("]")] if "]" in host else host
    else:  # name, name:port, or a bare IPv6 address
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.rstrip(".")
    if name.rsplit(".", 1)[-1] in _RESERVED_TLDS:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def install(app: Flask, config: MockConfig) -> None:
    """CORS for exactly ``config.cors_origins`` on the public API (nothing when empty), and
    the control plane closed to browsers."""
    allowed = [check_origin(o) for o in config.cors_origins]
    if allowed:
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
    open_without_token = config.admin_token is None

    @app.before_request
    def _no_browsers_on_the_control_plane() -> None:
        if not request.path.startswith(_CONTROL_PREFIX):
            return
        refusal = control_origin_refusal(request.headers.get("Origin"), request.host, request.scheme)
        if refusal is not None:
            raise ApiError(403, "cross_origin_refused", refusal)
        if open_without_token and not loopback_host(request.host):
            raise ApiError(
                403, "host_refused",
                "the control plane, open without an admin token, answers only requests"
                " addressed to this machine by a loopback name (localhost, 127.0.0.1, [::1])",
            )


def control_origin_refusal(origin: str | None, host: str, scheme: str = "http") -> str | None:
    """Why a control-plane request with this ``Origin`` is refused (None: it has none, or
    it is the mock's own origin, ``scheme://Host``: its dashboard's requests).

    Any other page's request (another origin, ``null``) is refused, so a page the
    developer visits cannot drive the mock (CSRF). A page under a rebound DNS name is the
    mock's own origin under that name: the ``Host`` rule refuses it.
    """
    if origin is None or _same_origin(origin, scheme, host):
        return None
    return ("the control plane answers web pages of its own origin only, its dashboard"
            f" (Origin: {origin[:100]})")


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _same_origin(origin: str, scheme: str, host: str) -> bool:
    """True when ``origin`` is ``scheme://host`` (case aside; a default port written or not)."""
    given_scheme, sep, given_host = origin.strip().lower().partition("://")
    return bool(sep) and given_scheme == scheme.lower() and (
        _without_default_port(given_host, given_scheme)
        == _without_default_port(host.strip().lower(), given_scheme)
    )


def _without_default_port(host: str, scheme: str) -> str:
    port = _DEFAULT_PORTS.get(scheme)
    name, sep, written = host.rpartition(":")
    if sep and written == port and (name.endswith("]") or ":" not in name):
        return name
    return host
