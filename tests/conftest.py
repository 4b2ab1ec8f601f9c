"""Shared fixtures of the project's own tests.

Every response the mock sends in these tests is validated against the spec that
documents its route (``openapi.yaml``, or the control plane's spec): ``client`` does it
for the in-process Flask client and ``http`` for real HTTP against ``live_server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException

from kontext_mock import KontextMock, MockConfig
from kontext_mock.http.errors import EDGE_ERRORS
from kontext_mock.http.serve import RunningServer, start
from kontext_mock.http.spec import ErrorStyle, ResponseMismatch, Spec, load_spec

from .second_implementation import OtherSessionsApi
from .second_implementation import build as build_second_implementation

# The dashboard's browser fixtures (Chromium through Playwright).
pytest_plugins = ["tests.browser"]

NOW = "2026-01-01T12:00:00Z"
DEV_APP = MockConfig().dev_application_id
DEV_SESSION = MockConfig().dev_session_id
AUTH = {"Authorization": "Bearer dev-token"}

# Error bodies of routes no operation documents (unknown path, wrong method) must still
# be the API's error shape.
_PLAIN_ERROR = {"error", "message"}


def specs_for(app: Flask) -> list[Spec]:
    """Every spec whose operations the app serves (the public one, plus any the app adds)."""
    return [load_spec(), *app.config.get("KONTEXT_EXTRA_SPECS", [])]


def check_response(app: Flask, method: str, path: str, status: int,
                   headers: Any, body: bytes, content_type: str | None) -> None:
    """Fail unless the spec describes this response of ``app``."""
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method=method)
    except HTTPException:
        endpoint = None
    if content_type is not None and not content_type.startswith("application/json"):
        if content_type.startswith("text/event-stream"):
            return
        if _documented_other_than_json(app, endpoint, status, headers, body, content_type):
            return
        raise ResponseMismatch(f"{method} {path}: content type {content_type!r} is not JSON")
    data = orjson.loads(body) if body else None
    if "x-request-id" not in {k.lower() for k in headers.keys()}:  # noqa: SIM118 - werkzeug Headers
        raise ResponseMismatch(f"{method} {path} {status}: no x-request-id header")
    code = data.get("error") if isinstance(data, dict) else None
    if isinstance(code, str) and code in EDGE_ERRORS:  # (a JSON-RPC error is an object)
        # A refusal of the HTTP layer, before any route: the edge contract, not a route's.
        if EDGE_ERRORS[code][0] != status or not data.keys() >= _PLAIN_ERROR:  # type: ignore[union-attr]
            raise ResponseMismatch(f"{method} {path} {status}: edge refusal {data!r}")
        return
    for spec in specs_for(app):
        op = spec.operations.get(endpoint or "")
        if op is not None:
            spec.check_response(op, status, headers, data)
            return
    if endpoint is None or status >= 400:
        if _jsonrpc_refusal(app, path, data):  # (e.g. a 405 of /mcp: x-error-style jsonrpc)
            return
        if not (isinstance(data, dict) and data.keys() >= _PLAIN_ERROR):
            raise ResponseMismatch(f"{method} {path} {status}: error body {data!r}")
        return
    raise ResponseMismatch(f"{method} {path}: endpoint {endpoint!r} is in no spec")


def _jsonrpc_refusal(app: Flask, path: str, data: Any) -> bool:
    """True when ``data`` is a JSON-RPC error and ``path`` is an operation's whose errors
    are JSON-RPC's (``x-error-style: jsonrpc``)."""
    if not (isinstance(data, dict) and data.get("jsonrpc") == "2.0"
            and isinstance(data.get("error"), dict) and "id" in data):
        return False
    return any(op.path == path and op.error_style is ErrorStyle.JSONRPC
               for spec in specs_for(app) for op in spec)


def _documented_other_than_json(app: Flask, endpoint: str | None, status: int, headers: Any,
                                body: bytes, content_type: str) -> bool:
    """True when a spec documents this non-JSON answer: its media type (the dashboard's
    files), or no content at all (a redirect), with the headers it requires."""
    for spec in specs_for(app):
        op = spec.operations.get(endpoint or "")
        if op is None:
            continue
        documented = spec.resolve(
            spec.document["paths"][op.path][op.method.lower()]["responses"].get(str(status), {}))
        media = content_type.split(";")[0].strip()
        content = documented.get("content")
        if (content and media in content) or (not content and not body):
            spec.check_response(op, status, headers, None)
            return True
    return False


class ValidatingClient(FlaskClient):
    """A Flask test client that validates every response against the spec."""

    def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().open(*args, **kwargs)
        request = response.request
        check_response(
            self.application, request.method, request.path, response.status_code,
            response.headers, response.get_data(), response.content_type,
        )
        return response


@pytest.fixture
def mock() -> KontextMock:
    """A fresh mock with a frozen clock at ``NOW`` and seed 7."""
    return KontextMock(seed=7, now=NOW, frozen=True)


@pytest.fixture
def client(mock: KontextMock) -> FlaskClient:
    """An in-process client of ``mock`` that validates every response."""
    app = mock.app
    app.test_client_class = ValidatingClient
    return app.test_client()


class LiveMock:
    """A mock served over real HTTP, with a validating ``requests`` session."""

    def __init__(self, mock: KontextMock, server: RunningServer) -> None:
        self.mock = mock
        self.server = server
        self.url = server.url
        self.http = requests.Session()
        self.http.hooks["response"].append(self._check)

    def _check(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = requests.utils.urlparse(request.url).path
        check_response(
            self.mock.app, request.method or "GET", path, response.status_code,
            response.headers, response.content, response.headers.get("Content-Type"),
        )


@pytest.fixture
def live(mock: KontextMock) -> Iterator[LiveMock]:
    """``mock`` served on a free loopback port for the length of a test."""
    server = start(mock.app, "127.0.0.1", 0)
    live = LiveMock(mock, server)
    try:
        yield live
    finally:
        live.http.close()
        server.stop()


@pytest.fixture
def second_implementation() -> Iterator[tuple[OtherSessionsApi, RunningServer]]:
    """The second implementation of the API (tests/second_implementation.py), served."""
    api, app = build_second_implementation()
    server = start(app, "127.0.0.1", 0)
    yield api, server
    server.stop()
