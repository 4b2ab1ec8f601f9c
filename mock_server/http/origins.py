"""Who may call the mock from a browser, and by which name: CORS, Origin and Host rules.

Pure decisions over a request's ``Origin`` and ``Host``; the request pipeline
(``pipeline.py``) applies them to every request, whichever path answers it.

* **CORS** is off unless origins are given (``kontext-mock serve --cors-origin
  http://localhost:3000``). Origins are matched exactly (scheme, host and port), never as
  patterns, and only the public API (``/api/...``, ``/oauth2/token``) is opened to them.
* **Host.** A web page can read a server on 127.0.0.1 by pointing a DNS name of its own
  at it (DNS rebinding); the browser then sends that name as ``Host``. So while the mock
  listens on loopback, every request must name it by a loopback name (``localhost``,
  127.0.0.1, ``[::1]``), a reserved name no public DNS resolves (``*.test``,
  ``*.invalid``, ...), or a name given with ``--allow-host``. Bound to another address
  the public API answers any name (it was exposed on purpose); the control plane, open
  without an admin token, still answers loopback and allowed names only.
* **Origin on the control plane.** On loopback the control plane needs no credentials, so
  a page the developer visits could otherwise reset or fault the mock with a "simple"
  cross-site request. It refuses any request whose ``Origin`` header (browsers send one
  on every cross-origin request and on same-origin writes) is not the mock's own origin,
  which only its dashboard (``/_mock/ui/``) has. (Under a rebound DNS name a page is the
  mock's own origin: the Host rule tells it apart.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from kontext_mock.core.loopback import is_loopback

__all__ = [
    "control_origin_refusal",
    "cors_headers",
    "host_refusal",
    "loopback_host",
    "preflight_headers",
]

_ALLOWED_HEADERS = ("authorization", "content-type", "x-request-id")
_ALLOWED_METHODS = "GET, POST, DELETE"
# What a browser client may read of a response besides the safelisted headers.
_EXPOSED_HEADERS = "x-request-id, Retry-After, WWW-Authenticate, Date"
_MAX_AGE = "600"
# Special-use top-level domains (RFC 2606, RFC 6761) that public DNS never delegates, so
# no attacker can point one at 127.0.0.1; in-process transports use them as base URLs.
_RESERVED_TLDS = ("localhost", "test", "invalid", "example")


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1] or [::1]:8080
        name = host[1:host.find("]")] if "]" in host else host
    else:  # name, name:port, or a bare IPv6 address
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".")


@functools.lru_cache(maxsize=256)
def loopback_host(host: str) -> bool:
    """True when a ``Host`` header names this machine (``localhost``, 127.0.0.0/8, ``[::1]``)
    or a reserved name that no public DNS can resolve (``*.test``, ``*.invalid``, ...)."""
    name = _host_name(host)
    return name.rsplit(".", 1)[-1] in _RESERVED_TLDS or is_loopback(name)


def host_refusal(host: str | None, *, control: bool, bound_to: str, open_control: bool,
                 allowed: Sequence[str] = ()) -> str | None:
    """Why a request naming ``host`` is refused (None: it is not): see the module's docstring.

    ``bound_to`` is the address the mock listens on; ``open_control`` is True while the
    control plane needs no admin token; ``allowed`` are the names given with ``--allow-host``.
    """
    if host is None or loopback_host(host) or _host_name(host) in {a.lower() for a in allowed}:
        return None
    if control and open_control:
        return ("the control plane, open without an admin token, answers only requests addressed"
                " to this machine by a loopback name (localhost, 127.0.0.1, [::1]) or a name"
                " given with --allow-host")
    if not control and is_loopback(bound_to):
        return (f"the mock listens on loopback and answers only requests addressed to it by a"
                f" loopback name (localhost, 127.0.0.1, [::1]) or a name given with --allow-host,"
                f" not {host[:100]!r}")
    return None

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


def cors_headers(origin: str | None, allowed: Sequence[str]) -> list[tuple[str, str]]:
    """The CORS headers of a public API answer to ``origin`` (none unless it is allowed)."""
    if origin is None or origin not in allowed:
        return []
    return [("Access-Control-Allow-Origin", origin),
            ("Access-Control-Expose-Headers", _EXPOSED_HEADERS), ("Vary", "Origin")]


def preflight_headers(origin: str | None, requested_headers: str | None,
                      allowed: Sequence[str]) -> list[tuple[str, str]] | None:
    """The headers of the answer to a CORS preflight from ``origin`` (None: not allowed).

    Bearer tokens, not cookies: credentials are never allowed.
    """
    if origin is None or origin not in allowed:
        return None
    asked = [h.strip().lower() for h in (requested_headers or "").split(",") if h.strip()]
    permitted = ", ".join(h for h in asked if h in _ALLOWED_HEADERS) or ", ".join(_ALLOWED_HEADERS)
    return [*cors_headers(origin, allowed), ("Access-Control-Allow-Methods", _ALLOWED_METHODS),
            ("Access-Control-Allow-Headers", permitted), ("Access-Control-Max-Age", _MAX_AGE)]
