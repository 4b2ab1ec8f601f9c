"""The Flask application factory: the spec's routes, one error handler, request ids."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

import orjson
from flask import Flask, Response, g, request

from . import admin, errors, limits, origins, traffic
from .api import handlers, read_bodies
from .control_api import handlers as control_handlers
from .errors import ApiError
from .express import ExpressLane
from .routing import bind
from .spec import ResponseMismatch, default_spec_path, load_spec

if TYPE_CHECKING:
    from .mock import KontextMock

__all__ = ["create_app"]

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


class _HttpDate:
    """The ``Date`` header for an instant, formatted once per second of the mock's clock."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second: datetime | None = None
        self._text = ""

    def __call__(self, instant: datetime) -> str:
        second = instant.replace(microsecond=0)
        if second != self._second:
            # (a racing thread may format the same second twice; both results are equal)
            self._text, self._second = format_datetime(second, usegmt=True), second
        return self._text


def create_app(mock: KontextMock) -> Flask:
    """A WSGI application serving ``mock``'s public API and its control plane."""
    app = Flask("kontext_mock")
    app.config.update(MAX_CONTENT_LENGTH=mock.config.max_body_bytes, JSON_SORT_KEYS=False)
    app.url_map.strict_slashes = False
    spec = load_spec()
    bind(app, spec, handlers(mock), mock.authenticate)
    # The control plane (/_mock/...) is described by its own spec, bound the same way.
    control_spec = load_spec(str(default_spec_path("control.yaml")))
    bind(app, control_spec, control_handlers(mock, control_spec), mock.authenticate,
         guards={"adminToken": admin.guard(mock)})
    app.config["KONTEXT_EXTRA_SPECS"] = [control_spec]
    errors.register(app)
    limits.install(app, mock.config)
    origins.install(app, mock.config)

    @app.before_request
    def _request_id() -> None:
        g.request_id = request_id_for(request.environ.get("HTTP_X_REQUEST_ID"))

    http_date = _HttpDate()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["x-request-id"] = g.get("request_id") or new_request_id()
        # The Date header tells the mock's time, so a client (or the contract kit) judges
        # expiry against the same clock the mock does.
        response.headers["Date"] = http_date(mock.now())
        if mock.config.strict:
            response = _checked(response)
        return response

    # Faults, rate limit and journal of public API requests (after the request id).
    traffic.install(app, mock)

    def _checked(response: Response) -> Response:
        op = g.get("operation")
        if op is None or response.mimetype != "application/json":
            return response
        try:
            spec.check_response(op, response.status_code, response.headers,
                                orjson.loads(response.get_data()))
        except ResponseMismatch as exc:
            errors.log.error("response does not match the spec: %s", exc)
            bad = ApiError(500, "internal_error", f"strict mode: {exc}").to_response()
            bad.headers["x-request-id"] = response.headers["x-request-id"]
            return bad
        return response

    # The hottest reads skip Flask's per-request machinery when they can (express.py).
    lane = ExpressLane(app, mock, spec, read_bodies(mock), request_id_for, http_date)
    app.wsgi_app = lane  # type: ignore[method-assign]
    app.extensions["kontext_express"] = lane
    return app
