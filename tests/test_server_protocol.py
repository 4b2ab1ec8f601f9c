"""The mock's HTTP/1.1 server as a client meets it over a raw socket: pipelining without
a cap on valid requests, half-closed clients, the open-files limit, the memory a
non-reading client holds, RFC 9112's Host rules, versions that are not HTTP/1.x, a
graceful stop, an Upgrade it does not offer and a chunk larger than the body may be.

Every test waits for a condition (socket timeouts only guard against a hang).
"""

from __future__ import annotations

import json
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from kontext_mock import KontextMock
from kontext_mock.http.serve import RunningServer, ServerLimits, start

from .conftest import DEV_APP
from .serving import read_until_closed, statuses

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
AGENT = "/api/v1/agent-sessions"
GET_LIST = (f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n"
            "\r\n").encode()
LAST_LIST = GET_LIST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")



def read_answers(sock: socket.socket, count: int, timeout: float = 30) -> list[bytes]:
    """The next ``count`` whole answers (each with a Content-Length)."""
    sock.settimeout(timeout)
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        match = re.search(rb"(?i)content-length: (\d+)", data[:head_end]) if head_end >= 0 else None
        if match and len(data) >= head_end + 4 + int(match.group(1)):
            end = head_end + 4 + int(match.group(1))
            answers.append(data[:end])
            data = data[end:]
            continue
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    assert not data, data
    return answers


def read_answer(sock: socket.socket, timeout: float = 30) -> bytes:
    """The next whole answer (with a Content-Length)."""
    return read_answers(sock, 1, timeout)[0]



def request_ids(stream: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"x-request-id: (\S+)\r\n", stream)]


def exchange(server: RunningServer, data: bytes, *, half_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock)


@pytest.fixture
def server(mock: KontextMock) -> Iterator[RunningServer]:
    running = start(mock.app, "127.0.0.1", 0)
    try:
        yield running
    finally:
        running.stop()


# -- 1. pipelining: every valid request answered, in order ---------------------------------


@pytest.mark.parametrize("count", [50, 200])
def test_many_pipelined_requests_in_one_write_are_all_answered_in_order(
    mock: KontextMock, server: RunningServer, count: int,
) -> None:
    # a fault's latency sends each one through the server's waiting path (a coroutine,
    # then a worker), so the ones behind it queue
    mock.add_fault("GET", LIST, latency=0.001)
    answers = exchange(server, GET_LIST * (count - 1) + LAST_LIST)
    assert statuses(answers) == [200] * count
    ids = request_ids(answers)
    assert len(ids) == count and ids == sorted(ids)  # (ids are given in arrival order)


# -- 2. a half-closed client gets its answers ----------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_a_client_that_half_closes_after_its_requests_gets_their_answers(
    mock: KontextMock, server: RunningServer, count: int,
) -> None:
    mock.add_fault("GET", LIST, latency=0.05)  # (answered after the server saw the end)
    answers = exchange(server, GET_LIST * count, half_close=True)
    assert statuses(answers) == [200] * count  # and then the connection closed
    assert answers.endswith(b"}")


def test_a_half_closed_client_with_half_a_request_is_closed_after_the_whole_ones(
    server: RunningServer,
) -> None:
    answers = exchange(server, GET_LIST + b"GET / HTTP/1.1\r\nHo", half_close=True)
    assert statuses(answers) == [200]


# -- 3. the connection cap stays below the open-files limit ---------------------------------


def _lower_open_files(soft: int, hard: int | None) -> Callable[[], None]:
    def lower() -> None:
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))
    return lower


@contextmanager
def serve_process(*args: str, preexec: Callable[[], None] | None = None
                  ) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``kontext-mock serve --port 0 ARGS`` (its port, the process); stopped with SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kontext_mock.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not any("Ctrl-C" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        match = re.search(r"bound to (\S+):(\d+)", "".join(lines))
        assert match, "".join(lines)
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # (never blocks it)
        yield int(match.group(2)), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize(("soft", "hard"), [(128, 128), (128, None)],
                         ids=["soft-and-hard-128", "soft-128-hard-higher"])
def test_more_idle_connections_than_open_files_leave_room_for_a_new_client(
    soft: int, hard: int | None,
) -> None:
    with serve_process(preexec=_lower_open_files(soft, hard)) as (port, _):
        idle = []
        try:
            for _ in range(soft + 72):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
            # the cap evicts the longest-idle connection before descriptors run out
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(LAST_LIST)
                assert statuses(read_until_closed(sock)) == [200]
        finally:
            for sock in idle:
                sock.close()


# -- 4. the memory a client that reads nothing holds ----------------------------------------


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) * 1024


def _settled_rss(pid: int) -> int:
    """The process's resident memory once it stops growing (5 looks in a row within 1 MiB)."""
    looks = [_rss(pid)]
    deadline = time.monotonic() + 60
    while len(looks) < 5 or max(looks[-5:]) - min(looks[-5:]) > 1 << 20:
        assert time.monotonic() < deadline, looks[-10:]
        threading.Event().wait(0.2)
        looks.append(_rss(pid))
    return looks[-1]


@pytest.mark.slow
def test_clients_that_pipeline_and_never_read_hold_little_memory_each() -> None:
    clients, requests_each = 40, 1500
    allowance = ServerLimits().max_unsent_bytes
    assert allowance <= 256 * 1024  # (peers hold 0.04 to 0.6 MiB for such a client)
    with serve_process() as (port, proc):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as warm:
            warm.sendall(GET_LIST * 20 + LAST_LIST)
            read_until_closed(warm)
        before = _settled_rss(proc.pid)
        socks = []
        try:
            for _ in range(clients):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", port))
                sock.setblocking(False)
                burst = memoryview(GET_LIST * requests_each)
                try:
                    while burst:
                        burst = burst[sock.send(burst):]
                except BlockingIOError:
                    pass  # (the server stopped reading it)
                socks.append(sock)
            grown = _settled_rss(proc.pid) - before
        finally:
            for sock in socks:
                sock.close()
        # per client: its unsent answers (the allowance, plus the answer that passed it),
        # one read kept unparsed (256 KiB at most), the requests waiting parsed; generously
        bound = clients * (allowance + 512 * 1024) + 32 * 1024 * 1024
        print(f"{clients} non-reading clients: +{grown / 2**20:.1f} MiB"
              f" ({grown / clients / 1024:.0f} KiB each); bound {bound / 2**20:.0f} MiB")
        assert grown < bound, (grown, bound)


# -- 5. Host: RFC 9112, 3.2 -----------------------------------------------------------------


@pytest.mark.parametrize("request_head", [
    f"GET {LIST} HTTP/1.1\r\nAuthorization: Bearer dev-token\r\n\r\n",
    f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: localhost\r\n"
    "Authorization: Bearer dev-token\r\n\r\n",
    f"GET {LIST} HTTP/1.0\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n"
    "Authorization: Bearer dev-token\r\n\r\n",
], ids=["no-host", "two-hosts", "two-hosts-http-1.0"])
def test_a_request_without_one_host_is_refused_400_in_json(
    server: RunningServer, request_head: str,
) -> None:
    answer = exchange(server, request_head.encode())
    assert statuses(answer) == [400]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"x-request-id: " in head and b"\r\nDate: " in head
    assert orjson.loads(body)["error"] == "malformed_request"


def test_an_http_1_0_request_needs_no_host(server: RunningServer) -> None:
    answer = exchange(server, f"GET {LIST} HTTP/1.0\r\nAuthorization: Bearer dev-token\r\n\r\n"
                      .encode())
    assert statuses(answer) == [200]


@pytest.mark.parametrize(("target_host", "status"), [
    ("evil.com", 421), ("127.0.0.1", 200), ("localhost:8080", 200),
])
def test_an_absolute_form_target_names_the_host_the_host_rule_judges(
    server: RunningServer, target_host: str, status: int,
) -> None:
    answer = exchange(server, f"GET http://{target_host}{LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer dev-token\r\nConnection: close\r\n\r\n".encode())
    assert statuses(answer) == [status]
    if status == 421:
        assert b'"error":"host_refused"' in answer


# -- 6. versions that are not HTTP/1.x --------------------------------------------------------


def test_an_http_2_0_request_line_is_refused(server: RunningServer) -> None:
    answer = exchange(server, f"GET {LIST} HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert statuses(answer) == [400]
    assert b'"error":"malformed_request"' in answer


def test_an_http_0_9_request_gets_no_http_1_1_head(server: RunningServer) -> None:
    assert exchange(server, f"GET {LIST}\r\n\r\n".encode()) == b""


# -- 7. a graceful stop ------------------------------------------------------------------------


def _control(port: int, method: str, path: str, body: object = None) -> object:
    data = b"" if body is None else orjson.dumps(body)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                     .encode() + data)
        answer = read_until_closed(sock)
    assert statuses(answer)[0] < 300, answer
    return json.loads(answer.partition(b"\r\n\r\n")[2] or b"null")


def test_sigterm_answers_the_request_in_flight_then_exits_0() -> None:
    with serve_process() as (port, proc):
        _control(port, "POST", "/_mock/faults", {"method": "GET", "path": LIST, "latency": 2})
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(GET_LIST)

            def in_flight() -> bool:
                rules = _control(port, "GET", "/_mock/faults")
                assert isinstance(rules, dict)
                return bool(rules["items"][0]["hits"])

            deadline = time.monotonic() + 30
            while not in_flight():
                assert time.monotonic() < deadline
            proc.send_signal(signal.SIGTERM)
            answer = read_until_closed(sock)  # whole, then the connection closes
        assert statuses(answer) == [200]
        assert b"Connection: close\r\n" in answer
        body = answer.partition(b"\r\n\r\n")[2]
        assert isinstance(orjson.loads(body)["items"], list)
        assert proc.wait(30) == 0


def test_stop_ends_an_event_stream_with_its_last_chunk(mock: KontextMock) -> None:
    running = start(mock.app, "127.0.0.1", 0)
    try:
        sock = socket.create_connection(("127.0.0.1", running.port), timeout=30)
        sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b": subscribed" not in received:
            received += sock.recv(4096)
    finally:
        running.stop()
    with sock:
        received += read_until_closed(sock)
    assert received.endswith(b"\r\n0\r\n\r\n")  # a whole chunked body, not a cut one
    # its last event says why it ends (a client reconnects later, with its Last-Event-ID)
    assert received.rsplit(b"\r\n0\r\n\r\n", 1)[0].endswith(
        b"event: mock.stopping\ndata: {\"reason\": \"the mock is stopping\"}\n\n")


def test_stop_closes_an_idle_keep_alive_connection(
    mock: KontextMock,
) -> None:
    running = start(mock.app, "127.0.0.1", 0)
    idle = socket.create_connection(("127.0.0.1", running.port), timeout=30)
    with idle:
        idle.sendall(GET_LIST)
        read_answer(idle)
        running.stop()
        assert read_until_closed(idle) == b""


# -- 8. an Upgrade not offered; a chunk too large --------------------------------------------


@pytest.mark.parametrize("protocol", ["websocket", "h2c"])
def test_an_upgrade_not_offered_is_ignored_and_the_connection_goes_on(
    server: RunningServer, protocol: str,
) -> None:
    upgrade = GET_LIST.replace(b"\r\n\r\n", f"\r\nConnection: Upgrade\r\nUpgrade: {protocol}"
                               "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(upgrade + GET_LIST)
        first, second = read_answers(sock, 2)
        assert statuses(first) == [200] and statuses(second) == [200]
        assert b"Connection: close" not in first + second
        sock.sendall(LAST_LIST)  # still open: a third is answered
        assert statuses(read_until_closed(sock)) == [200]


def test_nothing_behind_an_upgrade_asked_with_connection_close_is_run(
    mock: KontextMock, server: RunningServer,
) -> None:
    # The upgrade request is answered and the connection closed after it: the revoke-all
    # sent in the same read is never answered, so it must not run either.
    upgrade = LAST_LIST.replace(b"Connection: close", b"Connection: close, Upgrade\r\n"
                                b"Upgrade: websocket")
    revoke = (f"DELETE {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
              "dev-token\r\n\r\n").encode()
    connected = len(mock.list_sessions(DEV_APP, status="active"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(upgrade + revoke)
        assert statuses(read_until_closed(sock)) == [200]
    assert mock.journal.entries(method="DELETE") == []
    assert len(mock.list_sessions(DEV_APP, status="active")) == connected > 0


@pytest.mark.parametrize("coding", ["chunked", "ChUnKeD"])
@pytest.mark.parametrize("chunks", [b"100000\r\nabc", b"4\r\nabcd\r\n10000;ext=1\r\nab"],
                         ids=["first-chunk", "a-later-chunk-with-an-extension"])
def test_a_chunk_larger_than_the_body_may_be_is_refused_413_before_its_data(
    mock: KontextMock, chunks: bytes, coding: str,
) -> None:
    running = start(mock.app, "127.0.0.1", 0, limits=ServerLimits(body_timeout=300))
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
            sock.sendall(f"POST {AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                         "dev-token\r\nContent-Type: application/json\r\n"
                         f"Transfer-Encoding: {coding}\r\n\r\n".encode() + chunks)
            answer = read_answer(sock)  # (the rest of the chunk never comes)
        assert statuses(answer) == [413]
        assert b'"error":"payload_too_large"' in answer
    finally:
        running.stop()


def test_a_chunk_too_large_behind_a_body_that_says_chunked_is_still_refused_at_once(
    mock: KontextMock,
) -> None:
    # A body of known length is fed whole, the word "chunked" in it notwithstanding; the
    # chunked request that follows in the same read still has its size line seen whole.
    body = b'{"tokenIdentifier":"chunked","authenticatedUserId":"u","clientSessionId":"c",' \
        b'"x":"' + b"chunked " * 2000 + b'"}'
    head = (f"POST {AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n"
            "Content-Type: application/json\r\n").encode()
    running = start(mock.app, "127.0.0.1", 0, limits=ServerLimits(body_timeout=300))
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
            sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body + head
                         + b"Transfer-Encoding: chunked\r\n\r\n100000\r\nabc")
            answers = read_until_closed(sock)  # (the rest of the chunk never comes)
        assert statuses(answers) == [201, 413]
        assert b'"error":"payload_too_large"' in answers
    finally:
        running.stop()


def test_a_chunked_body_within_the_limit_split_anywhere_is_read_whole(
    server: RunningServer,
) -> None:
    body = b'{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'
    request = (f"POST {AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    request += b"a;x=y\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (body[:10], len(body) - 10, body[10:])
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for at in range(0, len(request), 7):  # (each piece its own read, as it may come)
            sock.sendall(request[at:at + 7])
        sock.sendall(LAST_LIST)
        answers = read_until_closed(sock)
    assert statuses(answers) == [201, 200]
