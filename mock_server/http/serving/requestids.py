"""Request ids: the ``x-request-id`` of every answer, the client's own when it sent a plain one."""

from __future__ import annotations

import itertools
import re
import uuid

__all__ = ["new_request_id", "request_id_for"]

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Request ids are UUID-shaped: a random prefix per process and a counter, unique without
# drawing 16 random bytes per request.
_ID_PREFIX = str(uuid.uuid4())[:24]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id (``xxxxxxxx-xxxx-4xxx-yxxx-<counter>``), unique in this process."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


def request_id_for(incoming: str | None) -> str:
    """The request's id: the client's own ``X-Request-Id`` when it is a plain token, else new."""
    return incoming if incoming and _CLIENT_REQUEST_ID.match(incoming) else new_request_id()
