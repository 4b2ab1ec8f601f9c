"""The mock's HTTP/1.1 server probed side by side with uvicorn (the same parser,
httptools): the same raw-socket probes run against both, and a probe fails wherever the
mock answers worse than the RFC or than uvicorn.

Each probe sends bytes as a client would (whole, trickled, pipelined, then half-closed,
among idle or non-reading clients) and records an :class:`Outcome`: the statuses
received, and whether the server closed the connection. Each says what the RFC asks
(``ok``) and what "better" means (``score``: for valid requests, how many were answered
in order; for invalid ones, whether they were kept from being served). Socket timeouts
only guard against a hang: an outcome that ran into one says so, and is never the
property asserted.

``bench/server_probes.py`` prints the table of ``docs/reliability.md`` from these probes.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from kontext_mock import KontextMock
from kontext_mock.config import MockConfig
from kontext_mock.http.serve import RunningServer, start

from .serving import uvicorn_process

pytestmark = pytest.mark.slow  # differential: the same raw-socket probes against the mock and uvicorn

APP = MockConfig().dev_application_id
GET_PATH = f"/api/v1/applications/{APP}/sessions"
POST_PATH = "/api/v1/agent-sessions"
BODY = b'{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'
AUTH = "Authorization: Bearer dev-token\r\n"
#: seconds a probe waits for what it expects before recording "no answer" (a guard)
GUARD = 5.0


def get(extra: str = "", *, version: str = "1.1", host: str | None = "127.0.0.1",
        target: str = GET_PATH) -> bytes:
    """A GET of the session list (answered 200 by both servers)."""
    host_line = "" if host is None else f"Host: {host}\r\n"
    return f"GET {target} HTTP/{version}\r\n{host_line}{AUTH}{extra}\r\n".encode()


def post(extra: str = "", body: bytes = BODY, *, framing: str | None = None) -> bytes:
    """A POST that makes an agent session (201 from the mock, 200 from the peer)."""
    framing = f"Content-Length: {len(body)}\r\n" if framing is None else framing
    return (f"POST {POST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{AUTH}Content-Type: "
            f"application/json\r\n{framing}{extra}\r\n").encode() + body


CLOSE = "Connection: close\r\n"


@dataclass
class Outcome:
    """What a server did with a probe."""

    statuses: list[int] = field(default_factory=list)
    #: the server closed the connection (else the guard ran out with it open)
    closed: bool = False
    #: the statuses of a next request on the same connection, where a probe sends one
    then: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.statuses:
            seen = "no answer"
        elif len(set(self.statuses)) == 1 and len(self.statuses) > 2:
            seen = f"{len(self.statuses)} x {self.statuses[0]}"
        else:
            seen = ", ".join(map(str, self.statuses))
        seen += "; closed" if self.closed else "; left open"
        if self.then:
            seen += f"; a next request on it: {', '.join(map(str, self.then))}"
        return seen


def ok_2xx(outcome: Outcome, count: int = 1) -> bool:
    return len(outcome.statuses) == count and all(200 <= s < 300 for s in outcome.statuses)


def in_order_2xx(outcome: Outcome) -> int:
    """How many answers came, 2xx, before any other."""
    served = 0
    for status in outcome.statuses:
        if not 200 <= status < 300:
            break
        served += 1
    return served


def not_served(outcome: Outcome) -> bool:
    """An invalid request: refused 4xx (or 505), or closed unanswered; never served."""
    if any(200 <= s < 300 for s in outcome.statuses):
        return False
    return all(400 <= s < 500 or s == 505 for s in outcome.statuses) and (
        bool(outcome.statuses) or outcome.closed)


def refused_400(outcome: Outcome) -> bool:
    """What RFC 9112 asks of a server for this: 400, and (framing errors) the connection closed."""
    return outcome.statuses[:1] == [400] and len(outcome.statuses) == 1 and outcome.closed


def no_http_1_1_head(outcome: Outcome) -> bool:
    return not outcome.statuses or outcome.statuses == [400] or outcome.statuses == [505]


@dataclass(frozen=True)
class Probe:
    """The same bytes for both servers, what the RFC asks, and which outcome is better."""

    name: str
    rfc: str
    parts: tuple[bytes, ...] = ()
    #: seconds between parts (a trickle)
    pause: float = 0.0
    half_close: bool = False
    #: answers the probe waits for (then reads on only if the server closes at once)
    expect: int = 1
    ok: Callable[[Outcome], bool] = ok_2xx
    #: higher is better; the mock must score at least the peer's
    score: Callable[[Outcome], int] = lambda outcome: 0
    run: Callable[[int, Probe], Outcome] | None = None
    slow: bool = False


def _read(sock: socket.socket, probe: Probe, outcome: Outcome) -> None:
    """Read answers until the server closes, or the probe's answers came and the server
    wrote nothing more (or the guard ran out)."""
    data = b""
    deadline = time.monotonic() + GUARD
    while True:
        left = deadline - time.monotonic()
        complete = len(_statuses(data)) >= probe.expect and _whole(data)
        if left <= 0:
            break
        sock.settimeout(0.2 if complete else left)  # (once complete: is more coming?)
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            if complete:
                break
            continue
        except ConnectionResetError:
            outcome.closed = True
            break
        if not chunk:
            outcome.closed = True
            break
        data += chunk
    outcome.statuses = _statuses(data)


def _statuses(data: bytes) -> list[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def _whole(data: bytes) -> bool:
    """True when the last answer in ``data`` is complete (by its Content-Length)."""
    start = max(data.rfind(b"HTTP/1.1 "), data.rfind(b"HTTP/1.0 "))
    head_end = data.find(b"\r\n\r\n", start)
    if start < 0 or head_end < 0:
        return False
    match = re.search(rb"(?i)content-length: *(\d+)", data[start:head_end])
    return match is None or len(data) - head_end - 4 >= int(match.group(1))


def send_and_read(port: int, probe: Probe) -> Outcome:
    """The ordinary probe: its parts, then its answers."""
    outcome = Outcome()
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
        try:
            for index, part in enumerate(probe.parts):
                if index and probe.pause:
                    time.sleep(probe.pause)
                sock.sendall(part)
            if probe.half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            outcome.closed = True
        _read(sock, probe, outcome)
    return outcome


def keeps_going(port: int, probe: Probe) -> Outcome:
    """The probe's parts, its answers, then one more request on the same connection."""
    outcome = Outcome()
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
        sock.sendall(b"".join(probe.parts))
        _read(sock, probe, outcome)
        if not outcome.closed:
            follow = Outcome()
            try:
                sock.sendall(get(CLOSE))
                _read(sock, Probe("follow-up", ""), follow)
            except OSError:
                follow.closed = True
            outcome.then = follow.statuses
    return outcome


def among_idle(port: int, probe: Probe) -> Outcome:
    """300 idle connections open, then a request."""
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=GUARD))
        return send_and_read(port, probe)
    finally:
        for sock in idle:
            sock.close()


def beside_a_non_reader(port: int, probe: Probe) -> Outcome:
    """A client pipelines 2,000 requests and reads nothing; then another's request."""
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(("127.0.0.1", port))
    hog.setblocking(False)
    burst = memoryview(get() * 2000)
    with contextlib.suppress(BlockingIOError):
        while burst:
            burst = burst[hog.send(burst):]
    try:
        return send_and_read(port, probe)
    finally:
        hog.close()


def slow_head(port: int, probe: Probe) -> Outcome:
    """Half a head, then nothing: what the server does with it (within 15 s)."""
    outcome = Outcome()
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.settimeout(15)
        data = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
            outcome.closed = True
        outcome.statuses = _statuses(data)
    return outcome


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


SMUGGLED = get(CLOSE, target="/smuggled")
TE = "Transfer-Encoding: chunked\r\n"

PROBES: list[Probe] = [
    # -- framing ------------------------------------------------------------------------
    Probe("Content-Length and Transfer-Encoding", "400 and close, or chunked and close (9112 6.1)",
          (post(framing=f"Content-Length: 4\r\n{TE}", body=b"0\r\n\r\n" + SMUGGLED),),
          ok=lambda o: not any(200 <= s < 300 for s in o.statuses[1:]) and o.closed,
          score=lambda o: int(len(o.statuses) <= 1)),
    Probe("two Content-Length values", "400, close (9112 6.3)",
          (post(framing=f"Content-Length: {len(BODY)}\r\nContent-Length: 3\r\n"),),
          ok=refused_400, score=lambda o: int(not_served(o))),
    Probe("chunk size not hex", "400, close (9112 7.1)",
          (post(framing=TE, body=b"zz\r\nabc\r\n0\r\n\r\n"),),
          ok=refused_400, score=lambda o: int(not_served(o))),
    Probe("chunk size over 2^64", "400 or 413, close",
          (post(framing=TE, body=b"1" * 40 + b"\r\nabc"),),
          ok=not_served, score=lambda o: int(not_served(o))),
    Probe("chunk size over the body limit", "never served (the mock promises 413 at once)",
          (post(framing=TE, body=b"100000\r\nabc"),),
          ok=lambda o: o.statuses == [413],
          score=lambda o: int(413 in o.statuses)),
    Probe("obs-fold in a header", "400, or the fold as a space (9112 5.2)",
          (get("X-Folded: a\r\n b\r\n" + CLOSE),),
          ok=lambda o: o.statuses in ([400], [200]), score=lambda o: int(bool(o.statuses))),
    Probe("bare LF line ends", "400, or LF taken as CRLF (9112 2.2)",
          (get(CLOSE).replace(b"\r\n", b"\n"),),
          ok=lambda o: o.statuses in ([400], [200]), score=lambda o: int(bool(o.statuses))),
    Probe("space before a header's colon", "400 (9112 5.1)",
          (get("X-Space : a\r\n" + CLOSE),),
          ok=lambda o: o.statuses == [400], score=lambda o: int(not_served(o))),
    Probe("Transfer-Encoding not chunked last", "400 or 501, close (9112 6.3)",
          (post(framing="Transfer-Encoding: chunked, identity\r\n", body=_chunked(BODY)),),
          ok=not_served, score=lambda o: int(not_served(o))),
    # -- smuggling ----------------------------------------------------------------------
    Probe("smuggling: TE with a space before the colon", "400; the hidden request unanswered",
          (post(framing="Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
                body=b"0\r\n\r\n" + SMUGGLED),),
          ok=lambda o: len(o.statuses) <= 1 and not_served(o),
          score=lambda o: int(len(o.statuses) <= 1)),
    Probe("smuggling: TE xchunked with CL", "400 or 501; the hidden request unanswered",
          (post(framing="Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n",
                body=b"0\r\n\r\n" + SMUGGLED),),
          ok=lambda o: len(o.statuses) <= 1 and not_served(o),
          score=lambda o: int(len(o.statuses) <= 1)),
    Probe("smuggling: CL with a plus sign", "400",
          (post(framing="Content-Length: +5\r\n", body=b"0\r\n\r\n" + SMUGGLED),),
          ok=lambda o: len(o.statuses) <= 1 and not_served(o),
          score=lambda o: int(len(o.statuses) <= 1)),
    # -- pipelining ---------------------------------------------------------------------
    Probe("50 pipelined GETs in one write", "all 50 answered, in order (9112 9.3.2)",
          (get() * 49 + get(CLOSE),), expect=50,
          ok=lambda o: ok_2xx(o, 50), score=in_order_2xx),
    Probe("200 pipelined GETs in one write", "all 200 answered, in order",
          (get() * 199 + get(CLOSE),), expect=200,
          ok=lambda o: ok_2xx(o, 200), score=in_order_2xx),
    Probe("50 pipelined POSTs in one write", "all 50 answered, in order",
          (post() * 49 + post(CLOSE),), expect=50,
          ok=lambda o: ok_2xx(o, 50), score=in_order_2xx),
    Probe("answers before a malformed pipelined request", "the 2 valid answered, then 400",
          (get() * 2 + b"NOT HTTP\r\n\r\n",), expect=3,
          ok=lambda o: o.statuses == [200, 200, 400], score=in_order_2xx),
    # -- half-close ---------------------------------------------------------------------
    Probe("a POST, then half-close", "answered, then closed",
          (post(),), half_close=True, ok=lambda o: ok_2xx(o) and o.closed, score=in_order_2xx),
    Probe("3 pipelined POSTs, then half-close", "3 answered, then closed",
          (post() * 3,), half_close=True, expect=3,
          ok=lambda o: ok_2xx(o, 3) and o.closed, score=in_order_2xx),
    # -- slow clients -------------------------------------------------------------------
    Probe("a head trickled in 8-byte pieces", "answered",
          tuple(get(CLOSE)[i:i + 8] for i in range(0, len(get(CLOSE)), 8)), pause=0.01,
          score=in_order_2xx),
    Probe("a body trickled in 8-byte pieces", "answered",
          (post(CLOSE, body=b"", framing=f"Content-Length: {len(BODY)}\r\n"),
           *(BODY[i:i + 8] for i in range(0, len(BODY), 8))),
          pause=0.01, score=in_order_2xx),
    Probe("half a head, then nothing", "a 408 and close, or close (9110 15.5.9)",
          run=slow_head, ok=lambda o: o.closed and o.statuses in ([], [408]),
          score=lambda o: int(o.closed), slow=True),
    # -- many clients -------------------------------------------------------------------
    Probe("a request among 300 idle connections", "answered",
          (get(CLOSE),), run=among_idle, score=in_order_2xx),
    Probe("a request beside a client that pipelines 2,000 and reads nothing", "answered",
          (get(CLOSE),), run=beside_a_non_reader, score=in_order_2xx),
    # -- versions -----------------------------------------------------------------------
    Probe("HTTP/1.0 with keep-alive, then another request", "answered (keep-alive optional)",
          (get("Connection: keep-alive\r\n", version="1.0"),), run=keeps_going,
          ok=lambda o: ok_2xx(o) and (o.closed or o.then == [200]),
          score=lambda o: in_order_2xx(o) + len(o.then)),
    Probe("HTTP/0.9 (no version)", "no HTTP/1.1 head: close, or 400",
          (f"GET {GET_PATH}\r\n\r\n".encode(),), ok=no_http_1_1_head,
          score=lambda o: int(no_http_1_1_head(o))),
    Probe("HTTP/2.0 on a request line", "505 or 400 (9110 15.6.6)",
          (get(version="2.0"),), ok=lambda o: o.statuses in ([400], [505]),
          score=lambda o: int(not_served(o))),
    Probe("HTTP/1.9", "505 or 400, or served as 1.1 (9110 2.5)",
          (get(CLOSE, version="1.9"),), ok=lambda o: bool(o.statuses),
          score=lambda o: int(bool(o.statuses))),
    Probe("the HTTP/2 preface", "400 or close, never served",
          (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",), ok=not_served,
          score=lambda o: int(not_served(o))),
    Probe("a TLS ClientHello", "400 or close, never served",
          (bytes.fromhex("16030100a5010000a10303") + b"\x00" * 40,), ok=not_served,
          score=lambda o: int(not_served(o))),
    Probe("garbage", "400 or close", (b"\x00\x01hello there\r\n\r\n",), ok=not_served,
          score=lambda o: int(not_served(o))),
    # -- Host ---------------------------------------------------------------------------
    Probe("HTTP/1.1 without Host", "400 (9112 3.2)", (get(CLOSE, host=None),),
          ok=lambda o: o.statuses == [400], score=lambda o: int(o.statuses == [400])),
    Probe("two Host lines", "400 (9112 3.2)", (get("Host: localhost\r\n" + CLOSE),),
          ok=lambda o: o.statuses == [400], score=lambda o: int(o.statuses == [400])),
    Probe("HTTP/1.0 without Host", "answered", (get(version="1.0", host=None),),
          score=in_order_2xx),
    Probe("absolute form naming another host", "the target's authority is the Host"
          " (9112 3.2.2): the mock's Host rule refuses it (421)",
          (get(CLOSE, target=f"http://evil.com{GET_PATH}"),),
          ok=lambda o: len(o.statuses) == 1 and o.statuses[0] < 500, score=lambda o: 0),
    # -- Upgrade ------------------------------------------------------------------------
    Probe("Upgrade: websocket (not offered), a request behind it", "both answered;"
          " the connection goes on (9110 7.8)",
          (get("Connection: Upgrade\r\nUpgrade: websocket\r\n") + get(),), expect=2,
          run=keeps_going, ok=lambda o: ok_2xx(o, 2) and o.then == [200],
          score=lambda o: in_order_2xx(o) + len(o.then)),
    Probe("Upgrade: h2c (not offered), a request behind it", "both answered;"
          " the connection goes on (9110 7.8)",
          (get("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n")
           + get(),), expect=2,
          run=keeps_going, ok=lambda o: ok_2xx(o, 2) and o.then == [200],
          score=lambda o: in_order_2xx(o) + len(o.then)),
]


def run_probe(port: int, probe: Probe) -> Outcome:
    """One probe against the server on ``port``."""
    return (probe.run or send_and_read)(port, probe)


@contextlib.contextmanager
def running_mock() -> Iterator[int]:
    """The mock's server, in this process: its port."""
    server: RunningServer = start(KontextMock().app, "127.0.0.1", 0)
    try:
        yield server.port
    finally:
        server.stop()


@contextlib.contextmanager
def running_uvicorn() -> Iterator[int]:
    """uvicorn (httptools, uvloop when installed) serving ``tests/asgi_probe_app.py``."""
    with uvicorn_process("tests.asgi_probe_app:app", started_within=30) as port:
        yield port


@pytest.fixture(scope="module")
def mock_port() -> Iterator[int]:
    with running_mock() as port:
        yield port


@pytest.fixture(scope="module")
def uvicorn_port() -> Iterator[int]:
    with running_uvicorn() as port:
        yield port


@pytest.mark.parametrize("probe", [
    pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.slow else []) for p in PROBES
])
def test_the_mock_answers_no_worse_than_the_rfc_or_uvicorn(
    probe: Probe, mock_port: int, uvicorn_port: int,
) -> None:
    # (run on both at once: a probe that makes one of them wait costs the wait once)
    outcomes: dict[str, Outcome] = {}
    peer = threading.Thread(target=lambda: outcomes.update(peer=run_probe(uvicorn_port, probe)))
    peer.start()
    mock = run_probe(mock_port, probe)
    peer.join()
    uvicorn = outcomes["peer"]
    assert probe.ok(mock), f"{probe.name}: the mock: {mock}; the RFC: {probe.rfc}"
    assert probe.score(mock) >= probe.score(uvicorn), (
        f"{probe.name}: the mock: {mock}; uvicorn: {uvicorn}")
