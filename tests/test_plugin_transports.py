"""``kontext_mock.http.transports``: requests and httpx reach a WSGI app without a socket."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.http.transports import (
    WSGIAdapter,
    async_httpx_client,
    httpx_client,
    requests_session,
)

BASE = "http://kontext.test"
AUTH = {"Authorization": "Bearer dev-token"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection fails the test: in-process means in-process."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def mock() -> KontextMock:
    return KontextMock(seed=7, now="2026-01-01T12:00:00Z", frozen=True)


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that answers with what it received."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "host": environ["HTTP_HOST"],
        "content_type": environ.get("CONTENT_TYPE", ""),
        "body": body.decode(),
        "x_custom": environ.get("HTTP_X_CUSTOM"),
    }
    start_response("201 Created", [("Content-Type", "application/json; charset=utf-8"),
                                   ("X-Reply", "yes")])
    return [json.dumps(seen).encode()]


def test_requests_reach_the_app_with_method_path_query_headers_and_body() -> None:
    session = requests_session(echo, BASE)

    answer = session.post(f"{BASE}/a/b%20c", params={"x": "1", "y": "two words"},
                          data={"k": "v"}, headers={"X-Custom": "hello"})

    assert answer.status_code == 201 and answer.reason == "Created"
    assert answer.headers["x-reply"] == "yes"
    assert answer.encoding == "utf-8"
    assert answer.json() == {
        "method": "POST", "path": "/a/b c", "query": "x=1&y=two+words",
        "host": "kontext.test", "content_type": "application/x-www-form-urlencoded",
        "body": "k=v", "x_custom": "hello",
    }


def test_requests_send_json_and_chunked_bodies() -> None:
    session = requests_session(echo, BASE)

    assert session.put(f"{BASE}/j", json={"a": 1}).json()["body"] == '{"a": 1}'
    assert session.post(f"{BASE}/c", data=iter([b"ab", b"cd"])).json()["body"] == "abcd"


def test_only_urls_under_the_base_go_to_the_app() -> None:
    session = requests_session(echo, BASE)

    with pytest.raises(AssertionError, match="a socket was opened"):
        session.get("http://127.0.0.1:9/")


def test_a_streamed_response_is_read_lazily() -> None:
    produced: list[int] = []
    closed: list[bool] = []

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            n = 0
            while True:
                produced.append(n)
                yield f"data: {n}\n\n".encode()
                n += 1

        def close(self) -> None:
            closed.append(True)

    def stream(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return Endless()

    session = requests_session(stream, BASE)
    answer = session.get(f"{BASE}/events", stream=True)
    lines = answer.iter_lines()
    assert next(lines) == b"data: 0"
    assert next(lines) == b""
    assert next(lines) == b"data: 1"
    answer.close()

    assert len(produced) < 10 and closed == [True]


def test_the_adapter_serves_the_mock(mock: KontextMock) -> None:
    session = requests.Session()
    session.mount(BASE, WSGIAdapter(mock.app))
    url = f"{BASE}/api/v1/applications/{mock.config.dev_application_id}/sessions"

    listed = session.get(url, params={"status": "all"}, headers=AUTH)
    token = session.post(f"{BASE}/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=(mock.config.dev_client_id, mock.config.dev_client_secret))

    assert listed.json()["items"] == mock.list_sessions(mock.config.dev_application_id,
                                                        status="all")
    assert listed.headers["x-request-id"]
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"


def test_httpx_clients_serve_the_mock(mock: KontextMock) -> None:
    path = f"/api/v1/applications/{mock.config.dev_application_id}/sessions"
    expected = mock.list_sessions(mock.config.dev_application_id)

    with httpx_client(mock.app, BASE, headers=AUTH) as client:
        assert client.get(path).json()["items"] == expected
        assert client.get("/api/v1/applications/not-a-uuid/sessions").status_code == 400

    async def fetch() -> Any:
        async with async_httpx_client(mock.app, BASE, headers=AUTH) as client:
            return (await client.get(path)).json()

    assert asyncio.run(fetch())["items"] == expected


def test_without_httpx_the_httpx_helpers_say_how_to_install_it(
    kontext_mock: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # what an environment without it imports
    for make, name in ((kontext_mock.httpx_client, "kontext_mock.httpx_client()"),
                       (kontext_mock.async_httpx_client, "kontext_mock.async_httpx_client()"),
                       (lambda: httpx_client(kontext_mock.mock.app, BASE), "httpx_client()")):
        with pytest.raises(ModuleNotFoundError) as missing:
            make()
        assert str(missing.value) == (
            f"{name} needs httpx, which kontext-mock does not install by itself:"
            " pip install 'kontext-mock[httpx]' (or pip install httpx)")


def test_an_app_error_is_a_500_answer_not_an_exception() -> None:
    def broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise RuntimeError("boom")

    from flask import Flask

    app = Flask("broken")
    app.add_url_rule("/", "broken", lambda: broken({}, lambda *a: None))

    with httpx_client(app, BASE) as client:
        assert client.get("/").status_code == 500
    assert requests_session(app, BASE).get(f"{BASE}/").status_code == 500
    assert isinstance(httpx_client(app, BASE), httpx.Client)


def test_a_dropped_connection_raises_what_a_socket_client_would_see(mock: KontextMock) -> None:
    mock.add_fault("GET", "/api/v1/*", drop=True)
    path = f"/api/v1/applications/{mock.config.dev_application_id}/sessions"

    with pytest.raises(requests.ConnectionError, match="Connection aborted"):
        requests_session(mock.app, BASE).get(BASE + path, headers=AUTH)
    with httpx_client(mock.app, BASE, headers=AUTH) as client, pytest.raises(
            httpx.RemoteProtocolError):
        client.get(path)

    async def fetch() -> None:
        async with async_httpx_client(mock.app, BASE, headers=AUTH) as client:
            await client.get(path)

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(fetch())


def test_the_event_stream_arrives_event_by_event_in_process(mock: KontextMock) -> None:
    session = requests_session(mock.app, BASE)
    stream = session.get(f"{BASE}/_mock/events", params={"timeout": 5}, stream=True)
    lines = stream.iter_lines()
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert b": subscribed" in [next(lines) for _ in range(3)]

    mock.revoke_all(mock.config.dev_application_id)  # publishes while the stream is open

    received = []
    for line in lines:
        if line.startswith(b"event:"):
            received.append(line)
            break
    stream.close()
    assert received == [b"event: session.disconnected"]
