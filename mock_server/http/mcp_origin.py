"""Who may reach the MCP gateway, and by which name: its ``Origin`` rule and the base
URL read from ``Host``.

The MCP Streamable HTTP transport asks a server to check ``Origin`` against DNS
rebinding: a web page of another origin is refused (the mock's own origin and those
given with ``--cors-origin`` pass); SDK clients send no ``Origin``. The base URL the
client used names the gateway in its metadata and challenges, so a ``Host`` that is no
``host[:port]`` is refused before it is ever written into an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kontext_mock.core.errors import ApiError
from kontext_mock.http.routing import Header

__all__ = ["base_url", "check_origin"]

#: what a Host header may be: a name, an IPv4 or a bracketed IPv6 address, and a port
_AUTHORITY = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def base_url(header: Header) -> str:
    """The base URL the client used (the mock serves plain HTTP, named by its ``Host``),
    without a trailing slash: SDKs compare the issuer with it as a string. A ``Host`` that
    is no ``host[:port]`` is a 400 (RFC 9112 3.2): it is never written into an answer."""
    host = header("Host") or "localhost"
    if not _AUTHORITY.fullmatch(host):
        raise ApiError(400, "malformed_request", "the Host header is not a host[:port]")
    return f"http://{host}"


def check_origin(header: Header, allowed: Sequence[str]) -> None:
    """Refuse (403 ``cross_origin_refused``) a request whose ``Origin`` is neither the
    mock's own origin nor one of ``allowed``; a request without one passes."""
    origin = header("Origin")
    if origin is not None and origin != base_url(header) and origin not in allowed:
        raise ApiError(403, "cross_origin_refused",
                       f"Origin {origin} may not use the gateway (--cors-origin allows one)")
