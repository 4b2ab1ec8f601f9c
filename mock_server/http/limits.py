"""What one request may carry, checked before anything is stored.

Every limit here is refused in the API's JSON error shape, with ``x-request-id``,
whoever meets it first: the HTTP server while reading (``http/serving/server.py``: a head over
64 KiB or 200 fields, a body over the route's limit), or the request pipeline
(``pipeline.py``: header fields over ``MockConfig.max_header_bytes``). How deep a JSON
body may nest is ``kontext_mock.core.nesting``'s.
"""

from __future__ import annotations

__all__ = ["CONTROL_MAX_BODY_BYTES", "SERVER_MAX_BODY_BYTES"]

#: the largest body any route takes: the control plane's (a 10,000-session state import is
#: about 7 MB), for a request it would accept; the public API's routes, and a control
#: request without the right Host or admin token, take ``MockConfig.max_body_bytes`` (64 KiB)
CONTROL_MAX_BODY_BYTES = 64 * 1024 * 1024
#: what the server takes for a WSGI app that is not the mock (it knows no routes)
SERVER_MAX_BODY_BYTES = CONTROL_MAX_BODY_BYTES
