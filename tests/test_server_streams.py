"""Event streams on the server: a stream's head holds no place, a stream whose client
leaves is freed and is no abandoned request, a stream answered after the server stopped
waiting gives its place back."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kontext_mock import KontextMock
from kontext_mock.http.serving.exchange import Answer, StreamAnswer
from kontext_mock.http.serving.server import answer_in_worker

from .conftest import DEV_APP, LiveMock
from .serving import connection_of, statuses, wait_until

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
AGENT = "/api/v1/agent-sessions"
AGENT_BODY = b'{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'
GET_LIST = f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n\r\n".encode()


GET_PAGE = GET_LIST.replace(LIST.encode(), f"{LIST}?pageSize=100".encode())


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
