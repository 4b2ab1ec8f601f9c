"""The Flask application factory: the specs' routes, one error handler, and the request
pipeline around them.

The Flask app routes, validates and answers (``routing.bind`` over ``openapi.yaml`` and
the control plane's ``control.yaml``; errors in ``errors.py``). Everything around a
request (ids, ``Date``, limits, Host and Origin rules, CORS, faults, the rate limit, the
journal, strict mode, the durable write) is the pipeline's (``pipeline.py``), which the
app's WSGI callable runs for in-process clients and the HTTP server runs for sockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from kontext_mock.http import admin, errors
from kontext_mock.http.control import handlers as control_handlers
from kontext_mock.http.inprocess import InProcessFront
from kontext_mock.http.mcp import guard as gateway_guard
from kontext_mock.http.mcp import handlers as gateway_handlers
from kontext_mock.http.pipeline import Pipeline
from kontext_mock.http.public import handlers
from kontext_mock.http.router import Router
from kontext_mock.http.routing import bind
from kontext_mock.http.spec import default_spec_path, load_spec

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine

__all__ = ["create_app", "pipeline_of"]


def create_app(mock: MockEngine) -> Flask:
    """A WSGI application serving ``mock``'s public API and its control plane."""
    app = Flask("kontext_mock")
    app.config.update(JSON_SORT_KEYS=False)
    app.url_map.strict_slashes = False
    spec = load_spec()
    public = bind(app, spec, {**handlers(mock), **gateway_handlers(mock)}, mock.authenticate,
                  guards={"gatewayToken": gateway_guard(mock)})
    # The control plane (/_mock/...) is described by its own spec, bound the same way.
    control_spec = load_spec(str(default_spec_path("control.yaml")))
    control = bind(app, control_spec, control_handlers(mock, control_spec), mock.authenticate,
                   guards={"adminToken": admin.guard(mock)})
    app.config["KONTEXT_EXTRA_SPECS"] = [control_spec]
    errors.register(app, spec.jsonrpc_paths)
    router = Router(app, {**public, **control}, mock.reads_as_of, mock.store.lock)
    pipeline = Pipeline(mock, app, spec, control_spec, router)
    app.wsgi_app = InProcessFront(pipeline)  # type: ignore[method-assign]
    app.extensions["kontext_pipeline"] = pipeline
    return app


def pipeline_of(app: object) -> Pipeline | None:
    """The request pipeline of a mock's Flask app, while the app's WSGI callable is still
    the pipeline's own; None for any other WSGI app, and for a mock's app whose
    ``wsgi_app`` was wrapped in middleware (served as a WSGI app, so the middleware runs)."""
    extensions = getattr(app, "extensions", None)
    found = extensions.get("kontext_pipeline") if isinstance(extensions, dict) else None
    front = getattr(app, "wsgi_app", None)
    if isinstance(found, Pipeline) and isinstance(front, InProcessFront) and front.pipeline is found:
        return found
    return None
