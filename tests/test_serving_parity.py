"""The two handlers answer alike over a real socket: a property test.

Two mocks, equal in every way, served by two servers; one answers the hot reads with the
express lane, the other with the Flask path only. Hypothesis sends both the same
generated requests, byte for byte, good and bad (ids, filters, limits, repeated or
unknown parameters, missing, wrong or repeated credentials, client request ids, CORS
origins, header names in any case, revoke-alls), and the answers must be equal byte for
byte: status, headers (all but the request id and ``Date``) and body.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kontext_mock import KontextMock
from kontext_mock.http.serve import RunningServer, start

from .conftest import DEV_APP, DEV_SESSION, NOW

OTHER_APP = "00000000-0000-4000-8000-000000000001"
ORIGIN = "http://localhost:3000"


def twin(express: bool) -> KontextMock:
    mock = KontextMock(seed=9, now=NOW, frozen=True, cors_origins=(ORIGIN,))
    mock.app.extensions["kontext_pipeline"].router.enabled = express
    return mock


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    with_lane, without = (start(twin(express).app, "127.0.0.1", 0) for express in (True, False))
    try:
        yield with_lane, without
    finally:
        with_lane.stop()
        without.stop()


def exchange(server: RunningServer, request: bytes) -> tuple[bytes, list[bytes], bytes]:
    """Send ``request``; the status line, the headers (less request id and Date), the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *headers = head.split(b"\r\n")
    kept = [h for h in headers if not h.lower().startswith((b"x-request-id:", b"date:"))]
    return status, kept, body


PATHS = st.sampled_from([
    f"/api/v1/applications/{DEV_APP}/sessions",
    f"/api/v1/applications/{DEV_APP}/sessions/",
    f"/api/v1/applications/{DEV_APP}/sessions/{DEV_SESSION}",
    f"/api/v1/applications/{DEV_APP.upper()}/sessions",
    f"/api/v1/applications/{OTHER_APP}/sessions",
    f"/api/v1/applications/{DEV_APP}/sessions/{OTHER_APP}",
    f"/api/v1/applications/{DEV_APP}/sessions/not-a-uuid",
    "/api/v1/applications/not-a-uuid/sessions",
    "/api/v1/nowhere",
])
PARAMS = st.lists(st.tuples(
    st.sampled_from(["limit", "status", "includeInactive", "unknown"]),
    st.sampled_from(["0", "1", "5", "100", "200", "201", "-1", "x", "", "active", "inactive", "all",
                     "nope", "true", "false", "%35", "a+b"]),
), max_size=4)
AUTHS = st.sampled_from([None, "Bearer dev-token", "Bearer nope", "Bearer", "Basic ZGV2OmRldg==",
                         "bearer dev-token", "Bearer dev-token extra"])
REQUEST_IDS = st.sampled_from([None, "client-chosen.id-1", "not ok!", "x" * 200])
ORIGINS = st.sampled_from([None, ORIGIN, "https://evil.example"])


@st.composite
def requests_(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "DELETE"]))
    path = draw(PATHS)
    query = "&".join(f"{k}={v}" for k, v in draw(PARAMS))
    target = f"{path}?{query}" if query else path
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    for name, value in (("Authorization", draw(AUTHS)), ("X-Request-Id", draw(REQUEST_IDS)),
                        ("Origin", draw(ORIGINS))):
        if value is not None:
            lines.append(f"{draw(st.sampled_from([name, name.lower()]))}: {value}")
    if draw(st.booleans()):  # a field sent twice (its first value, or both joined, are read)
        again = draw(st.sampled_from(["Authorization", "authorization", "X-Request-Id", "Origin"]))
        lines.append(f"{again}: {draw(AUTHS) or 'Bearer dev-token'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests_())
def test_the_lane_and_the_flask_path_answer_byte_for_byte_alike(
    servers: tuple[RunningServer, RunningServer], request: bytes
) -> None:
    with_lane, without = servers
    assert exchange(with_lane, request) == exchange(without, request)


def test_the_two_servers_answer_reads_by_different_handlers(
    servers: tuple[RunningServer, RunningServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the property above compares two handlers, not one handler with itself
    calls = {"with": 0, "without": 0}
    for name, server in (("with", servers[0]), ("without", servers[1])):
        pipeline = server.server.app.pipeline  # type: ignore[attr-defined]
        flask = pipeline.flask

        def counting(environ: Any, start_response: Any, name: str = name, flask: Any = flask) -> Any:
            calls[name] += 1
            return flask(environ, start_response)

        monkeypatch.setattr(pipeline, "flask", counting)
    request = (f"GET /api/v1/applications/{DEV_APP}/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: Bearer dev-token\r\nConnection: close\r\n\r\n").encode()
    assert exchange(servers[0], request) == exchange(servers[1], request)
    assert calls == {"with": 0, "without": 1}


FORM = "application/x-www-form-urlencoded"
FORM_BODIES = st.sampled_from([
    "grant_type=client_credentials&client_id=dev-client&client_secret=dev-secret",
    "grant_type=client_credentials&client_id=dev-client&client_secret=wrong",
    "grant_type=client_credentials&client_id=dev-client&client_id=x&client_secret=dev-secret",
    "grant_type=password&client_id=dev-client&client_secret=dev-secret",
    "grant_type=client_credentials&scope=management%3Aall",
    "grant_type=client_credentials&client_id=%FF&client_secret=dev-secret",
    "grant_type=client+credentials", "client_id=dev-client", "", "a=%zz&grant_type=",
])
JSON_BODIES = st.sampled_from([
    '{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}',
    '{"tokenIdentifier":"t"}', "{}", "[]", "null", "{", '{"tokenIdentifier":1}', "",
])
CONTENT_TYPES = st.sampled_from([None, FORM, f"{FORM}; charset=utf-8", "application/json",
                                 "Application/JSON", "text/plain"])
BODY_AUTHS = st.sampled_from([None, "Bearer dev-token", "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0",
                              "Basic bm9wZQ=="])


@st.composite
def requests_with_bodies(draw: st.DrawFn) -> bytes:
    path, bodies = draw(st.sampled_from([("/oauth2/token", FORM_BODIES),
                                         ("/api/v1/agent-sessions", JSON_BODIES)]))
    body = draw(bodies).encode()
    lines = ["POST " + path + " HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(body)}"]
    for name, value in (("Content-Type", draw(CONTENT_TYPES)), ("Authorization", draw(BODY_AUTHS)),
                        ("User-Agent", draw(st.sampled_from([None, "probe/1"])))):
        if value is not None:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def without_secrets(answer: tuple[bytes, list[bytes], bytes]) -> tuple[bytes, list[bytes], bytes]:
    """The answer without the values each mock draws at random (token, new session id)."""
    status, headers, body = answer
    return status, headers, re.sub(rb'"(access_token|sessionId)":"[^"]*"', rb'"\1":""', body)


@pytest.fixture(scope="module")
def body_servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    # (their own twins: the sessions these requests open would tell the other test's apart)
    with_router, without = (start(twin(router).app, "127.0.0.1", 0) for router in (True, False))
    try:
        yield with_router, without
    finally:
        with_router.stop()
        without.stop()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests_with_bodies())
def test_the_router_and_the_flask_path_read_bodies_alike(
    body_servers: tuple[RunningServer, RunningServer], request: bytes
) -> None:
    with_router, without = body_servers
    assert without_secrets(exchange(with_router, request)) == without_secrets(
        exchange(without, request))
