"""The serving layer tried where its second review found gaps: one test (or a few) per
finding. A pipelined request keeps its deadline, a client that reads nothing holds a
bounded amount of memory, more pipelined requests than may wait wait unparsed, a refusal
reaches a client still sending, trailers are not headers, the control plane's large
body limit is only for a request it would accept, an event stream's HEAD holds no
stream, a full disk is a 503 (never a write acknowledged and lost), and fault ids do not
repeat after a reset.

Every test waits for a condition, never for a wall-clock margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.core.ratelimit import MAX_CREDENTIALS, RateLimiter
from kontext_mock.http import control
from kontext_mock.http.app import pipeline_of
from kontext_mock.http.errors import EDGE_ERRORS
from kontext_mock.http.serve import RunningServer, ServerLimits, start
from kontext_mock.http.serving.exchange import Answer, StreamAnswer
from kontext_mock.http.serving.server import answer_in_worker
from kontext_mock.http.streams import StreamPlan
from kontext_mock.statefile import NotSavedError, StateFile, read_state_file

from .conftest import AUTH, DEV_APP, NOW, LiveMock
from .serving import HeldLock, wait_until

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
AGENT = "/api/v1/agent-sessions"
AGENT_BODY = b'{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'
GET_LIST = f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n\r\n".encode()


GET_PAGE = GET_LIST.replace(LIST.encode(), f"{LIST}?pageSize=100".encode())


def slow_reader(server: RunningServer) -> socket.socket:
    """A client socket with a small receive buffer: answers pile up on the server's side."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    return sock


def serve(mock: KontextMock, **limits: Any) -> RunningServer:
    return start(mock.app, "127.0.0.1", 0, limits=ServerLimits(**limits) if limits else None)


def read_until_closed(sock: socket.socket, timeout: float = 30) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def statuses(stream: bytes) -> list[int]:
    """The status of each answer in a run of HTTP/1.1 answers."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", stream)]


def connection_of(server: RunningServer, sock: socket.socket) -> Any:
    """The server's side of the client socket ``sock``."""
    port = sock.getsockname()[1]

    def find() -> Any:
        return next((c for c in list(server.server.connections) if c.peer and c.peer[1] == port),
                    None)

    wait_until(lambda: find() is not None, "the server has the connection")
    return find()


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


# -- state files -----------------------------------------------------------------------------------


class FailingDisk:
    """Stands in for the state file's write: the next ``failures`` writes write half their
    bytes and fail as a full disk would."""

    def __init__(self, write: Any, failures: int = 1) -> None:
        self.write, self.failures = write, failures

    def __call__(self, fd: int, data: bytes) -> None:
        if self.failures:
            self.failures -= 1
            self.write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        self.write(fd, data)


@pytest.fixture
def state_file(tmp_path: Path) -> Iterator[tuple[KontextMock, StateFile]]:
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock, flush_interval=0.05)
    state.open()
    state.start()
    try:
        yield mock, state
    finally:
        state.close()


def test_a_write_the_disk_refused_is_503_and_no_later_write_is_lost(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock, state = state_file
    first = mock.add_session(DEV_APP)["id"]
    state.commit()
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all))
    refused = mock.add_session(DEV_APP)["id"]
    with pytest.raises(NotSavedError):
        state.commit()  # half a line is in the log now
    later = mock.add_session(DEV_APP)["id"]
    state.commit()  # acknowledged: so it must load back
    last = mock.add_session(DEV_APP)["id"]
    state.commit()
    document, _ = read_state_file(state.path)
    saved = {s["id"] for s in document["sessions"]}
    assert {first, later, last} <= saved
    assert refused in saved  # (made in memory; the whole state written after the failure has it)


def test_a_refused_write_is_answered_503_state_not_saved(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock, _ = state_file
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all, failures=1000))
    response = mock.app.test_client().post(AGENT, json=orjson.loads(AGENT_BODY), headers=AUTH)
    assert response.status_code == 503, response.data
    assert response.json == {"error": "state_not_saved", "message": response.json["message"]}
    assert "No space left" in response.json["message"]
    assert response.headers["Retry-After"] and response.headers["x-request-id"]
    assert mock.journal.entries(method="POST")[-1]["status"] == 503  # the journal says so too


def test_a_refused_request_is_answered_as_such_while_the_disk_fails(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock, _ = state_file
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all, failures=1000))
    client = mock.app.test_client()
    assert client.post(AGENT, json=orjson.loads(AGENT_BODY), headers=AUTH).status_code == 503
    # a request refused for itself changed nothing, so it waits for no write: its own 4xx
    bad = client.post(AGENT, json={"tokenIdentifier": 1}, headers=AUTH)
    assert bad.status_code == 400 and bad.json["error"] == "validation_error", bad.data
    gone = client.delete(f"/api/v1/applications/{'0' * 8}-0000-4000-8000-{'0' * 12}/sessions",
                         headers=AUTH)
    assert gone.status_code == 404, gone.data


def test_closing_while_the_disk_fails_stops_the_writer_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock = KontextMock(seed=7, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock, flush_interval=0.05)
    state.open()
    state.start()
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all, failures=1000))
    mock.add_session(DEV_APP)
    with pytest.raises(NotSavedError):
        state.commit()
    # the writer stops trying once asked to stop, so that the last whole-state write is
    # the only one (two at once would share the temporary file)
    with pytest.raises(OSError, match="No space left"):
        state.close()
    assert state._thread is not None and not state._thread.is_alive()


def test_a_writer_that_dies_fails_the_waiting_writes_instead_of_hanging(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock, state = state_file

    def broken(data: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(state, "_append", broken)
    mock.add_session(DEV_APP)
    with pytest.raises(NotSavedError, match="writer stopped"):
        state.commit()
    with pytest.raises(NotSavedError, match="writer stopped"):
        state.commit()  # and every later one, at once


def test_a_log_compacted_many_times_loads_what_was_acknowledged(tmp_path: Path) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock, compact_bytes=4096, flush_interval=0.05)
    state.open()
    state.start()
    try:
        made = []
        for _ in range(60):
            made.append(mock.add_session(DEV_APP)["id"])
            state.commit()
        assert state.stats.snapshots > 3  # compacted along the way
    finally:
        state.close()
    document, _ = read_state_file(tmp_path / "state.json")
    assert set(made) <= {s["id"] for s in document["sessions"]}


# -- smaller findings ------------------------------------------------------------------------------


def test_fault_ids_go_on_after_a_reset(mock: KontextMock) -> None:
    assert mock.add_fault("GET", LIST, status=500) == "fault-1"
    mock.reset()
    assert mock.add_fault("GET", LIST, status=500) == "fault-2"
    mock.load_scenario_text("seed: 3\n")
    assert mock.add_fault("GET", LIST, status=500) == "fault-3"


def test_the_rate_limiter_counts_a_bounded_number_of_credentials() -> None:
    limiter = RateLimiter()
    limiter.set(5)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for n in range(MAX_CREDENTIALS + 500):
        assert limiter.hit(f"Bearer token-{n}", now) is None
    assert limiter.credentials <= MAX_CREDENTIALS
    assert limiter.hit("Bearer " + "x" * 10_000, now) is None  # a long one is kept as a digest


def test_junk_credentials_do_not_free_a_limited_one() -> None:
    limiter = RateLimiter()
    limiter.set(3)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for _ in range(3):
        assert limiter.hit("Bearer busy", now) is None
    assert limiter.hit("Bearer busy", now) == 60
    for n in range(2 * MAX_CREDENTIALS):  # anyone may send these: the limit runs before auth
        limiter.hit(f"Bearer junk-{n}", now)
    assert limiter.hit("Bearer busy", now) == 60  # still counted, still refused
    assert limiter.credentials <= MAX_CREDENTIALS


def test_a_preflight_answer_has_no_content_length(mock: KontextMock) -> None:
    mock.config = mock.config.with_changes(cors_origins=("http://app.example",))
    server = start(mock.app, "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"OPTIONS {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://app.example"
                         "\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n".encode())
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 204 ")
        assert b"content-length" not in answer.lower()
    finally:
        server.stop()


def test_no_100_continue_for_http_1_0(live: LiveMock) -> None:
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=30) as sock:
        sock.sendall(f"POST {AGENT} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n"
                     f"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {len(AGENT_BODY)}\r\n\r\n".encode() + AGENT_BODY)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert b"100 Continue" not in answer


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
        wait_until(lambda: wsgi_app._streams == 0, "the places given back")
        with open_stream() as again:
            assert again.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        gate.set()
        server.stop()
