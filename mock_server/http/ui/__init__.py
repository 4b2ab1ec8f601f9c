"""The dashboard (``/_mock/ui/``): one page over the control plane, shipped in the package.

Its files sit beside this module (``index.html``, ``dashboard.js``, ``dashboard.css``:
plain HTML, CSS and JavaScript, no build step) and are read once. They are answered with
a Content-Security-Policy that lets the page load and call nothing but the mock's own
origin, and with no framing allowed: a page that framed the dashboard could trick a
click on "Revoke all sessions" (clickjacking), and the page's own requests are the only
ones the control plane takes from a browser (``origins.control_origin_refusal``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from flask import Response

__all__ = ["FILES", "PATH", "POLICY", "content", "file_response", "redirect_response"]

#: where the page is served
PATH = "/_mock/ui/"
#: the dashboard's files and their media types
FILES: dict[str, str] = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
#: nothing but the mock's own origin; ``data:`` only for the empty favicon, which keeps the
#: browser from asking for /favicon.ico
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # a new version of the package serves new files: the browser asks again each time
    "Cache-Control": "no-cache",
}


@cache
def content(name: str) -> bytes:
    """The bytes of one of the dashboard's :data:`FILES`, read from the package once."""
    return resources.files(__name__).joinpath(name).read_bytes()


def file_response(name: str) -> Response:
    """One of the dashboard's :data:`FILES`, with the headers that confine the page."""
    response = Response(content(name), mimetype=FILES[name])
    response.headers.update(_HEADERS)
    return response


def redirect_response() -> Response:
    """``/_mock/ui`` to ``/_mock/ui/``: the page's files are named relative to it."""
    return Response(b"", status=308, headers={"Location": PATH})
