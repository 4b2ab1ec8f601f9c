"""Helpers of the tests over real servers: ``kontext-mock serve`` as a process on a free
port, waiting for a condition, and the store's lock held by a test."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kontext_mock.http.serve import RunningServer, ServerLimits, start

from .conftest import DEV_APP


@contextmanager
def serve_process(
    *args: str, until: str = "Ctrl-C", stop: signal.Signals = signal.SIGTERM
) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """Start ``kontext-mock serve --port 0 ARGS``; yield its loopback URL, the lines it
    printed up to one containing ``until``, and the process. Stops it with ``stop``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kontext_mock.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if until in line:
                break
        head = "".join(lines)
        match = re.search(r"bound to (\S+):(\d+)", head)
        assert match, head + (proc.stdout.read() if proc.poll() is not None else "")
        yield f"http://127.0.0.1:{match.group(2)}", head, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


#: requests as they go on the wire, shared by the serving tests
LIST = f"/api/v1/applications/{DEV_APP}/sessions"
AGENT = "/api/v1/agent-sessions"
AGENT_BODY = b'{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'
GET_LIST = f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n\r\n".encode()
GET_PAGE = GET_LIST.replace(LIST.encode(), f"{LIST}?pageSize=100".encode())


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for ``condition`` (the timeout only detects a failure; nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


class HeldLock:
    """The store's lock, held by the test: counts who waits for it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.waiting = 0
        self.gate = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            return False
        self.waiting += 1
        self.gate.wait(60)
        return bool(self.inner.acquire())

    def release(self) -> None:
        self.inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- raw sockets against a served mock ----------------------------------------------------


def slow_reader(server: RunningServer) -> socket.socket:
    """A client socket with a small receive buffer: answers pile up on the server's side."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    return sock


def serve(mock: Any, **limits: Any) -> RunningServer:
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


# -- WSGI apps around the mock ------------------------------------------------------------

#: a WSGI application
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Switch:
    """One server for a test module: the app it serves is swapped per test."""

    def __init__(self) -> None:
        self.app: WsgiApp | None = None

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.app is not None
        return self.app(environ, start_response)


def without_control_plane(app: WsgiApp) -> WsgiApp:
    """The mock as "anything else": no ``/_mock`` (the kit finds no control plane)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/_mock"):
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "not_found", "message": "no such route"}']
        return app(environ, start_response)

    return wrapped


def switched_server() -> Iterator[tuple[Switch, str]]:
    """A served :class:`Switch` and its URL, until the generator is closed (a module's
    fixture: ``served = pytest.fixture(scope="module")(switched_server)``)."""
    switch = Switch()
    server = start(switch, "127.0.0.1", 0)
    yield switch, server.url
    server.stop()



@contextmanager
def uvicorn_process(app: str, started_within: float = 60.0) -> Iterator[int]:
    """uvicorn serving the ASGI app ``app`` ("module:attribute", imported from the
    repository's top) in a process of its own, on a free port: the port, once it listens."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = int(free.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "error"],
        cwd=Path(__file__).parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + started_within
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"uvicorn did not start {app}"
                threading.Event().wait(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
