"""The server's connections under slow, greedy or half-gone clients: deadlines while
pipelining, answers a client does not read, refusals that reach a client still sending,
what a request carries (trailers, a large control-plane body).

Every test waits for a condition, never for a wall-clock margin.
"""

from __future__ import annotations

import socket
import threading

import orjson
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.http.errors import EDGE_ERRORS
from kontext_mock.http.serve import start

from .conftest import AUTH, DEV_APP, NOW, LiveMock
from .serving import (
    AGENT,
    AGENT_BODY,
    GET_LIST,
    GET_PAGE,
    LIST,
    HeldLock,
    connection_of,
    read_until_closed,
    serve,
    slow_reader,
    statuses,
    wait_until,
)

# -- deadlines and pipelining ------------------------------------------------------------------


def test_a_pipelined_request_keeps_its_head_deadline_while_earlier_ones_are_answered(
    mock: KontextMock,
) -> None:
    # The first request waits for a fault's latency; while it does, a second request and
    # half of a third arrive. Answering the first two must not lift the third's deadline.
    mock.add_fault("GET", LIST, latency=0.5, times=1)
    server = serve(mock, head_timeout=1.0, idle_timeout=60.0)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(GET_LIST + GET_LIST + f"GET {LIST} HTTP/1.1\r\nHost: x".encode())
            answers = read_until_closed(sock)
        assert statuses(answers) == [200, 200, 408]
        assert b'"error":"request_timeout"' in answers
    finally:
        server.stop()


def test_more_pipelined_requests_than_may_wait_are_held_unparsed_and_all_answered(
    mock: KontextMock,
) -> None:
    server = serve(mock, max_pipelined=8)
    held = HeldLock(mock.store.lock)
    try:
        mock.store.lock = held  # type: ignore[assignment]
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            # the first goes to a worker, which waits for the store: the rest queue behind it
            sock.sendall(GET_LIST)
            wait_until(lambda: held.waiting == 1, "the first request waits for the store")
            # 100 requests (11 KB, one read): parsed a few KB at a time, until eight wait
            last = GET_LIST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            sock.sendall(GET_LIST * 99 + last)
            connection = connection_of(server, sock)
            wait_until(lambda: connection._pending, "the rest of the read is kept as bytes")
            assert connection._paused_reading
            assert server.server.requests_read < 100
            held.gate.set()
            answers = read_until_closed(sock)
        assert statuses(answers) == [200] * 101, statuses(answers)
        assert "too_many_pipelined" not in EDGE_ERRORS
    finally:
        held.gate.set()
        mock.store.lock = held.inner
        server.stop()


# -- a client that reads nothing -------------------------------------------------------------------


def test_answers_a_client_does_not_read_are_bounded(mock: KontextMock) -> None:
    for _ in range(100):
        mock.add_session(DEV_APP)
    limit = 64 * 1024
    server = serve(mock, max_unsent_bytes=limit, max_pipelined=2000)
    try:
        one = requests.get(f"{server.url}{LIST}?pageSize=100", headers=AUTH, timeout=30)
        size = len(one.content) + 400
        sock = slow_reader(server)
        count = 1000  # ~150 KB of requests for ~50 MB of answers: far more than the kernel holds
        with sock:
            connection = connection_of(server, sock)
            last = GET_PAGE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            sender = threading.Thread(target=sock.sendall, args=(GET_PAGE * (count - 1) + last,))
            sender.start()
            # the server stops answering (and reading) once its unsent answers pass the
            # limit; the requests it read wait (at most max_pipelined of them)
            wait_until(lambda: connection.stalled is not None, "writing paused")
            for _ in range(50):  # and while paused, they stay below it
                unsent = connection.transport.get_write_buffer_size()
                assert unsent <= limit + size, (unsent, limit, size)
            # reading everything, the client gets every answer, whole and in order
            received = read_until_closed(sock)
            sender.join(30)
        assert statuses(received) == [200] * count
        assert received.endswith(b"}")
    finally:
        server.stop()


def test_an_idle_connection_that_reads_nothing_is_dropped_at_its_deadline(
    mock: KontextMock,
) -> None:
    server = serve(mock, max_unsent_bytes=16 * 1024, idle_timeout=1.0)
    try:
        sock = slow_reader(server)
        with sock:
            connection = connection_of(server, sock)
            sock.sendall(GET_PAGE * 60)
            # never read: the server gives up on it instead of holding its answers forever
            wait_until(lambda: connection.closed, "the connection dropped")
        assert requests.get(f"{server.url}{LIST}", headers=AUTH, timeout=30).status_code == 200
    finally:
        server.stop()


# -- refusals reach a client still sending ---------------------------------------------------------


def test_a_413_reaches_a_client_still_sending_its_body(live: LiveMock) -> None:
    size = 4 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=30) as sock:
        sock.sendall(f"POST {AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token"
                     f"\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode())
        sock.sendall(b"x" * (64 * 1024))  # some of the body: the refusal comes meanwhile
        answer = b""
        while not answer.endswith(b"}"):
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b'"error":"payload_too_large"' in answer
        # The client goes on sending (it has not read the answer yet, as far as HTTP goes):
        # the server reads and throws that away instead of resetting the connection, which
        # would drop the answer from the client's buffers.
        for _ in range(16):
            sock.sendall(b"x" * (64 * 1024))
        assert read_until_closed(sock) == b""  # our side closed, not reset


def test_a_refusal_behind_unread_answers_waits_for_the_client_to_read_them(
    mock: KontextMock,
) -> None:
    for _ in range(100):
        mock.add_session(DEV_APP)
    # (a large allowance: answers wait in memory while the server still reads)
    server = serve(mock, linger=0.2, max_unsent_bytes=4 * 1024 * 1024)
    try:
        sock = slow_reader(server)
        with sock:
            connection = connection_of(server, sock)
            count, served = 0, connection.server
            read_before = served.requests_read
            # until answers wait in the server's memory, the kernel's buffers full
            while not connection.transport.get_write_buffer_size():
                sock.sendall(GET_PAGE * 4)
                count += 4
                wait_until(lambda n=count: served.requests_read - read_before >= n and connection.idle,
                           "the requests answered")
            sock.sendall(b"NOT HTTP\r\n\r\n")
            wait_until(lambda: connection._lingering, "the refusal is the next answer")
            # longer than the linger period, reading nothing: the answers still wait
            lingered = threading.Event()
            lingered.wait(1.0)
            assert not connection.closed
            received = read_until_closed(sock)
        assert statuses(received)[:count] == [200] * count
        assert statuses(received)[count:] == [400]
    finally:
        server.stop()


# -- what a request carries ------------------------------------------------------------------------


def test_trailer_fields_of_a_chunked_body_are_not_header_fields(live: LiveMock) -> None:
    body = AGENT_BODY
    request = (f"POST {AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n").encode()
    request += b"%x\r\n%s\r\n0\r\nX-Request-Id: from-a-trailer\r\n\r\n" % (len(body), body)
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=30) as sock:
        sock.sendall(request)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert b"from-a-trailer" not in answer  # the request id is the mock's own


@pytest.mark.parametrize("admin_token", [None, "s3cret"])
def test_the_control_planes_large_body_limit_is_for_requests_it_would_accept(
    admin_token: str | None,
) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, admin_token=admin_token)
    for _ in range(100):
        mock.add_session(DEV_APP)
    server = start(mock.app, "127.0.0.1", 0)
    state = orjson.dumps(mock.export_state())
    assert len(state) > mock.config.max_body_bytes  # over the API's limit, under the control plane's
    try:
        url = f"{server.url}/_mock/state"
        json = {"Content-Type": "application/json"}
        accepted = {**json, "Authorization": f"Bearer {admin_token}"} if admin_token else json
        # refused before its body is read: without the token, or (open) by another Host name
        refused = json if admin_token else {**json, "Host": "rebound.attacker.net"}
        answer = requests.put(url, data=state, headers=refused, timeout=30)
        assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"
        admitted = requests.put(url, data=state, headers=accepted, timeout=30)
        assert admitted.status_code == 200, admitted.text[:300]
    finally:
        server.stop()
