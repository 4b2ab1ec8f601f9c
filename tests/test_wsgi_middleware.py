"""The mock's app served inside WSGI middleware: served through it, a drop fault drops
the connection, streams leave workers for requests and give their place back only once
no worker is in them."""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.http import control
from kontext_mock.http.app import pipeline_of
from kontext_mock.http.serve import RunningServer, start
from kontext_mock.http.streams import StreamPlan

from .conftest import AUTH
from .serving import AGENT, LIST, read_until_closed, wait_until


@contextlib.contextmanager
def wrapped_in_middleware(mock: KontextMock, threads: int = 8) -> Iterator[RunningServer]:
    """``mock`` served with its WSGI callable wrapped in a middleware that tags answers."""
    inner = mock.app.wsgi_app

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        def tagged(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, [*headers, ("X-Middleware", "ran")], *args)

        return inner(environ, tagged)

    mock.app.wsgi_app = middleware  # type: ignore[method-assign]
    assert pipeline_of(mock.app) is None
    server = start(mock.app, "127.0.0.1", 0, threads=threads)
    try:
        yield server
    finally:
        server.stop()
        mock.app.wsgi_app = inner  # type: ignore[method-assign]


def test_a_mock_app_wrapped_in_middleware_is_served_through_it(mock: KontextMock) -> None:
    with wrapped_in_middleware(mock) as server:
        response = requests.get(f"{server.url}{LIST}", headers=AUTH, timeout=30)
        assert response.status_code == 200 and response.headers["X-Middleware"] == "ran"
        # the mock's body limits still hold: an anonymous large body is refused from its head
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"POST {AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type:"
                         f" application/json\r\nContent-Length: {32 << 20}\r\n\r\n".encode())
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]


def test_a_drop_fault_through_middleware_drops_the_connection(
    mock: KontextMock, caplog: pytest.LogCaptureFixture,
) -> None:
    mock.add_fault("GET", "/api/v1/*", drop=True, times=1)
    with wrapped_in_middleware(mock) as server:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}{LIST}", headers=AUTH, timeout=30)
        assert requests.get(f"{server.url}{LIST}", headers=AUTH, timeout=30).status_code == 200
    assert "error answering" not in caplog.text  # a drop, not an error of the server's


def test_streams_through_middleware_leave_workers_for_requests(
    mock: KontextMock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no keep-alive comment within the test: only the client-gone check can end a stream
    monkeypatch.setattr(control, "StreamPlan", functools.partial(StreamPlan, keepalive=3600.0))
    with wrapped_in_middleware(mock, threads=4) as server:
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=30)
                 for _ in range(3)]
        try:
            for sock in socks[:2]:
                sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            wait_until(lambda: mock.events.streams_open == 2, "two streams open")
            # each holds a worker here; past half of them, a stream is refused, not held
            socks[2].sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            refused = b""
            while not refused.endswith(b"}"):
                refused += socks[2].recv(65536)
            assert refused.startswith(b"HTTP/1.1 503 "), refused[:300]
            assert b"too_many_streams" in refused and b"Retry-After: 5" in refused
            assert requests.get(f"{server.url}{LIST}", headers=AUTH, timeout=30).status_code == 200
        finally:
            for sock in socks:
                sock.close()
        # their clients gone, the streams end (the mock asks the server through the middleware)
        wait_until(lambda: mock.events.streams_open == 0, "the streams ended")
        four = [requests.get(f"{server.url}{LIST}", headers=AUTH, timeout=30) for _ in range(4)]
        assert [r.status_code for r in four] == [200] * 4


def test_a_wsgi_streams_place_is_free_only_once_no_worker_is_in_it() -> None:
    gate = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] != "/events":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        def events() -> Iterator[bytes]:
            yield b"data: first\n\n"
            gate.wait(30)  # an app blocked until its next event, whoever is listening
            yield b"data: second\n\n"

        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return events()

    server = start(app, "127.0.0.1", 0, threads=4)  # two places for streams
    wsgi_app = server.server.app
    try:
        def open_stream() -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return sock

        first = [open_stream() for _ in range(2)]
        for sock in first:
            received = b""
            while b"first" not in received:
                received += sock.recv(65536)
            sock.close()
        wait_until(lambda: not server.server.connections, "the server saw them leave")
        # their workers are still inside the app: the places stay taken
        with open_stream() as third:
            refused = b""
            while not refused.endswith(b"}"):
                refused += third.recv(65536)
        assert refused.startswith(b"HTTP/1.1 503 ") and b"too_many_streams" in refused
        assert requests.get(f"{server.url}/plain", timeout=30).text == "ok"
        gate.set()  # the app goes on: its workers come back, and the places with them
        wait_until(lambda: wsgi_app.streams.open == 0, "the places given back")
        with open_stream() as again:
            assert again.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        gate.set()
        server.stop()
