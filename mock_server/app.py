"""The Flask application factory: the spec's routes, one error handler, request ids."""

from __future__ import annotations

import re
import uuid
from email.utils import format_datetime
from typing import TYPE_CHECKING

import orjson
from flask import Flask, Response, g, request

from . import admin, errors, limits, origins, traffic
from .api import handlers
from .control_api import handlers as control_handlers
from .errors import ApiError
from .routing import bind
from .spec import ResponseMismatch, default_spec_path, load_spec

if TYPE_CHECKING:
    from .mock import KontextMock

__all__ = ["create_app"]

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


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
        incoming = request.headers.get("x-request-id", "")
        g.request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else str(uuid.uuid4())

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["x-request-id"] = g.get("request_id") or str(uuid.uuid4())
        # The Date header tells the mock's time, so a client (or the contract kit) judges
        # expiry against the same clock the mock does.
        response.headers["Date"] = format_datetime(mock.now(), usegmt=True)
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

    return app
