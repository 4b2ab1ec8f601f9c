"""Event streams on the server: a stream's head holds no place, a stream whose client
leaves is freed and is no abandoned request, a stream answered after the server stopped
waiting gives its place back; through the Flask path, streams hold no worker either."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.http import mcp_stream
from kontext_mock.http.serve import RunningServer, start
from kontext_mock.http.served import ServedMock
from kontext_mock.http.serving.exchange import Answer, StreamAnswer
from kontext_mock.http.serving.server import answer_in_worker

from .conftest import DEV_APP, LiveMock
from .serving import GET_LIST, connection_of, read_until_closed, statuses, wait_until

# -- event streams ---------------------------------------------------------------------------------


def test_an_event_streams_head_holds_no_stream(live: LiveMock) -> None:
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=30) as sock:
        sock.sendall(b"HEAD /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + GET_LIST)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    assert statuses(received) == [200, 200]  # the connection went on to the next request
    head = received.split(b"HTTP/1.1 200 ")[1]
    assert b"text/event-stream" in head and b"subscribed" not in received
    wait_until(lambda: live.mock.events.streams_open == 0, "no place held")


def test_an_event_streams_head_holds_no_stream_in_process(client: Any, mock: KontextMock) -> None:
    response = client.head("/_mock/events")
    assert response.status_code == 200 and response.data == b""
    assert mock.events.streams_open == 0


def test_a_stream_whose_client_read_slowly_once_is_still_freed_when_it_leaves(
    live: LiveMock,
) -> None:
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=30) as sock:
        sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        wait_until(lambda: live.mock.events.streams_open == 1, "the stream opened")
        connection = connection_of(live.server, sock)
        # what the transport does when the client reads slowly, then catches up
        done = threading.Event()
        reading: list[bool] = []

        def slow_then_caught_up() -> None:
            connection.pause_writing()
            connection.resume_writing()
            reading.append(not connection._paused_reading)
            done.set()

        connection.loop.call_soon_threadsafe(slow_then_caught_up)
        assert done.wait(30)
        assert reading == [True]  # it reads the connection again (else a leaving client is
        # noticed only when a keep-alive write fails, seconds later)
    # the client left: the server, reading the connection again, sees it and frees the place
    wait_until(lambda: live.mock.events.streams_open == 0, "its place freed")


def test_a_stream_answered_after_the_server_stopped_waiting_gives_its_place_back() -> None:
    released = threading.Event()
    go = threading.Event()

    def make() -> Answer:  # a worker that answers a stream after the wait was cancelled
        go.wait(30)
        return StreamAnswer(200, [], release=released.set)

    async def stop_waiting() -> None:
        with ThreadPoolExecutor(1) as workers:
            waiting = asyncio.ensure_future(answer_in_worker(asyncio.get_running_loop(),
                                                             workers, make))
            await asyncio.sleep(0)
            waiting.cancel()  # what the server does to its waits when it stops
            with pytest.raises(asyncio.CancelledError):
                await waiting
            go.set()
            await asyncio.get_running_loop().run_in_executor(None, released.wait, 30)

    asyncio.run(stop_waiting())
    assert released.is_set()


def test_a_stream_whose_client_leaves_is_no_abandoned_request(live: LiveMock) -> None:
    sock = socket.create_connection(("127.0.0.1", live.server.port), timeout=30)
    sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    wait_until(lambda: live.mock.events.streams_open == 1, "the stream opened")
    sock.close()
    wait_until(lambda: live.mock.events.streams_open == 0, "its place freed")
    assert live.server.server.abandoned == 0


# -- streams through the Flask path --------------------------------------------------------------
# The router steps aside to the Flask app for a query string that is not UTF-8, and for any
# request while a hook is registered on ``mock.app``: a stream answered there is still a
# coroutine on the server's loop, holding no worker while it waits.

EVENTS = "/_mock/events"


def serve_threads(mock: KontextMock, threads: int) -> RunningServer:
    return start(mock.app, "127.0.0.1", 0, threads=threads)


def _via_flask(mock: KontextMock, how: str) -> str:
    """The query that takes a stream to the Flask path (a hook registered for "hook")."""
    if how == "hook":
        mock.app.before_request(lambda: None)
        return ""
    return "?x=%ff"


def _open_stream(port: int, target: str, *headers: str) -> tuple[socket.socket, bytes]:
    """A stream's connection, once its head and first chunk (an SSE block) arrived."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall("\r\n".join([f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                              "Accept: text/event-stream", *headers, "", ""]).encode())
    return sock, _receive(sock, lambda got: b"\r\n\r\n" in got and got.endswith(b"\n\n\r\n"))


def _receive(sock: socket.socket, enough: Callable[[bytes], bool]) -> bytes:
    """What ``sock`` receives until it is ``enough``."""
    received = b""
    while not enough(received):
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return received


def _gateway_session(mock: KontextMock, url: str) -> tuple[str, str]:
    """A gateway token and an initialized session of it."""
    token = str(mock.oauth.gateway_token(DEV_APP, resource=f"{url}/mcp")["access_token"])
    answer = requests.post(f"{url}/mcp", json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "flask-path", "version": "1"}}},
        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return token, answer.headers["Mcp-Session-Id"]


@pytest.mark.parametrize("how", ["query", "hook"])
def test_streams_through_the_flask_path_hold_no_worker(mock: KontextMock, how: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # (a session stream sends nothing while its session lasts: a stream read in a worker
    # would hold it for good)
    monkeypatch.setattr(mcp_stream, "KEEPALIVE", 3600.0)
    server = serve_threads(mock, 2)
    streams: list[socket.socket] = []
    try:
        query = _via_flask(mock, how)
        for _ in range(2):  # as many as the workers, then an event stream: one more
            token, session = _gateway_session(mock, server.url)
            sock, head = _open_stream(server.port, "/mcp" + query,
                                      f"Authorization: Bearer {token}", f"Mcp-Session-Id: {session}")
            assert head.startswith(b"HTTP/1.1 200") and b"session stream" in head
            streams.append(sock)
        sock, head = _open_stream(server.port, EVENTS + query)
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
        streams.append(sock)
        assert mock.events.streams_open == 1 and mock.state.gateway.watching() == 2
        # a request answered by a worker (the control plane's always are) is not kept waiting
        clock = requests.get(f"{server.url}/_mock/clock{query}", timeout=30)
        assert clock.status_code == 200
        # and the streams still carry what happens: an event, the sessions' end
        made = mock.add_session()
        _receive(streams[2], lambda got: made["id"].encode() in got)
        assert mock.revoke_all(DEV_APP) >= 2
        for sock in streams[:2]:  # a stream ends with its session: the chunked body's end
            _receive(sock, lambda got: got.endswith(b"0\r\n\r\n"))
    finally:
        for sock in streams:
            sock.close()
        server.stop()


@pytest.mark.parametrize("how", ["query", "hook"])
def test_a_flask_path_stream_whose_client_leaves_frees_its_place(
    mock: KontextMock, how: str, caplog: pytest.LogCaptureFixture,
) -> None:
    server = serve_threads(mock, 2)
    try:
        query = _via_flask(mock, how)
        token, session = _gateway_session(mock, server.url)
        events, _ = _open_stream(server.port, EVENTS + query)
        gateway, _ = _open_stream(server.port, "/mcp" + query, f"Authorization: Bearer {token}",
                                  f"Mcp-Session-Id: {session}")
        assert mock.events.streams_open == 1 and mock.state.gateway.watching() == 1
        events.close()
        gateway.close()
        wait_until(lambda: mock.events.streams_open == 0, "the event stream's place freed")
        wait_until(lambda: mock.state.gateway.watching() == 0, "the session stream's place freed")
    finally:
        server.stop()
    gc.collect()  # (a task's unretrieved exception is logged when the task is collected)
    assert "generator already executing" not in caplog.text
    assert "Traceback" not in caplog.text


def test_a_session_reopens_its_stream_through_the_flask_path(mock: KontextMock) -> None:
    server = serve_threads(mock, 2)
    try:
        token, session = _gateway_session(mock, server.url)
        headers = (f"Authorization: Bearer {token}", f"Mcp-Session-Id: {session}")
        for _ in range(3):
            sock, head = _open_stream(server.port, "/mcp?%ff", *headers)
            assert head.startswith(b"HTTP/1.1 200")
            assert mock.state.gateway.watching(session) == 1
            sock.close()
            wait_until(lambda: mock.state.gateway.watching(session) == 0, "the stream freed")
        # and a stream still open when the server stops ends with it
        sock, _ = _open_stream(server.port, "/mcp?%ff", *headers)
        with sock:
            server.stop()
            assert read_until_closed(sock).endswith(b"0\r\n\r\n")
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["query", "hook"])
def test_an_in_process_stream_through_the_flask_path_runs_and_frees_its_place(
    client: Any, mock: KontextMock, how: str,
) -> None:
    query = "&x=%ff" if _via_flask(mock, how) else ""
    made = mock.add_session()
    answer = client.get(f"{EVENTS}?since=0&limit=1{query}")
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    assert made["id"].encode() in answer.data
    assert mock.events.streams_open == 0


def test_a_route_that_streams_from_a_generator_is_read_in_workers_a_few_at_once(
    mock: KontextMock,
) -> None:
    gate = threading.Event()

    def until_the_gate_opens() -> Iterator[bytes]:  # a stream only a thread can wait in
        while not gate.is_set():
            yield b"data: 1\n\n"
            gate.wait(60)

    mock.app.add_url_rule("/added-stream", "added_stream", lambda: flask.Response(
        until_the_gate_opens(), mimetype="text/event-stream"))
    server = serve_threads(mock, 2)  # such streams may take one of the two workers
    served = server.server.app
    assert isinstance(served, ServedMock)
    try:
        with requests.get(f"{server.url}/added-stream", stream=True, timeout=30) as first:
            assert first.status_code == 200
            assert next(first.iter_content(chunk_size=None)).startswith(b"data: 1")
            second = requests.get(f"{server.url}/added-stream", timeout=30)
            assert second.status_code == 503
            assert second.json()["error"] == "too_many_streams"
            assert second.headers["Retry-After"]
            # journaled as what the client got, under the id it was told
            told = [(e["status"], e["requestId"]) for e in mock.journal.entries(
                "GET", "/added-stream")]
            assert told[-2:] == [(200, first.headers["x-request-id"]),
                                 (503, second.headers["x-request-id"])]
            # the other worker stays free for requests that need one
            clock = requests.get(f"{server.url}/_mock/clock", timeout=30)
            assert clock.status_code == 200
        gate.set()  # (its worker leaves the generator: the place is given back then)
        wait_until(lambda: served.threaded.open == 0, "the stream's place given back")
        with requests.get(f"{server.url}/added-stream", stream=True, timeout=30) as again:
            assert again.status_code == 200
    finally:
        gate.set()
        server.stop()


def test_a_route_that_streams_from_a_generator_runs_in_process(
    client: Any, mock: KontextMock,
) -> None:
    mock.app.add_url_rule("/added-stream", "added_stream", lambda: flask.Response(
        iter([b"data: 1\n\n", b"data: 2\n\n"]), mimetype="text/event-stream"))
    answer = client.get("/added-stream")
    assert answer.status_code == 200
    assert answer.data == b"data: 1\n\ndata: 2\n\n"
    assert client.head("/added-stream").status_code == 200
