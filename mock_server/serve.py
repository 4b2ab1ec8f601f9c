"""Serving a WSGI app with a production server (waitress: threads in one process).

State lives in one process, so the server runs threads, never forked workers.
:func:`start` runs it in a background thread (tests, the pytest plugin);
:func:`serve_forever` runs it in the foreground until SIGINT or SIGTERM.
"""

from __future__ import annotations

import copy
import gc
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import WSGITask

__all__ = [
    "CHANNEL_TIMEOUT",
    "SERVER_MAX_BODY_BYTES",
    "SERVER_MAX_HEADER_BYTES",
    "RunningServer",
    "is_loopback",
    "serve_forever",
    "start",
]

WsgiApp = Callable[..., Any]

# The server's hard limits. They sit above the app's own (MockConfig.max_body_bytes,
# 64 KiB, and max_header_bytes, 16 KiB), so a request over the app's limit is refused
# by the app in JSON (413, 431); only one over these is refused by the server itself,
# in text/plain, before any app code runs. They bound what one request can make the
# server buffer (a body past 512 KiB is buffered in a temporary file, not in memory).
# The body limit is the control plane's (admin.CONTROL_MAX_BODY_BYTES): a 10,000-session
# state import is about 7 MB; the public API's routes refuse anything over 64 KiB.
SERVER_MAX_BODY_BYTES = 64 * 1024 * 1024
SERVER_MAX_HEADER_BYTES = 64 * 1024
#: pending output above which a connection's next request goes to a worker, not the loop
CLAIM_OUTBUF_LIMIT = 1024 * 1024
#: seconds a connection may sit idle (no bytes either way) before the server closes it
CHANNEL_TIMEOUT = 30


@dataclass
class RunningServer:
    """A server running in a background thread."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the server thread."""
        _shutdown(self._server)
        self._thread.join(timeout)


# waitress warns "Task queue depth is N" whenever a request waits for a free thread: under
# load that is a line on the terminal every few requests (a third of them, at 16
# connections), written from the server's own threads.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class _ClaimedTask(WSGITask):
    """waitress's WSGI task, with a quicker head for the answers the express lane gives.

    waitress builds every head generically (re-capitalizing, scanning and sorting the
    headers: ~7% of a claimed read). A ``200 OK`` to an HTTP/1.1 request with no
    ``Connection`` header, carrying exactly the lane's four headers, gets the same bytes
    from a template; anything else is built by waitress (a guard test compares the two).
    """

    def build_response_header(self) -> bytes:
        headers = self.response_headers
        request: Any = self.request  # a parsed request (an Error goes to ErrorTask)
        if (
            self.status == "200 OK" and self.version == "1.1"
            and "CONNECTION" not in request.headers and len(headers) == 4
        ):
            (n1, content_type), (n2, length), (n3, request_id), (n4, date) = headers
            if (n1, n2, n3, n4) == _LANE_HEADERS:
                ident = self.channel.server.adj.ident
                self.response_headers = [
                    ("Content-Type", content_type), ("Content-Length", length),
                    ("X-Request-Id", request_id), ("Date", date), ("Server", ident),
                ]
                return (
                    f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n"
                    f"Content-Type: {content_type}\r\nDate: {date}\r\nServer: {ident}\r\n"
                    f"X-Request-Id: {request_id}\r\n\r\n"
                ).encode("latin-1")
        return super().build_response_header()


#: the header names of the express lane's answers, in its order (express.ExpressLane)
_LANE_HEADERS = ("Content-Type", "Content-Length", "x-request-id", "Date")


class _Channel(HTTPChannel):
    """waitress's connection, able to serve a request on the server's own thread.

    waitress parses requests on its I/O thread and hands each to a worker thread, which
    hands the answer back: two thread wake-ups and GIL hand-offs, more than the whole of a
    read in the mock's express lane. An app that offers ``claim(method, path)`` and
    ``release()`` (``express.ExpressLane``) may take a request that it answers without
    waiting for anything; it is then served right here, after the read that completed it.
    It may also offer ``parked()``: how many worker threads it holds waiting.
    """

    claimed = 0  # requests claimed by the app, not yet served
    release: Callable[[], None]  # the app's, set per server
    gathering: Any  # the server's adjustments, but writes only buffer (set per server)

    def handle_read(self) -> None:
        try:
            super().handle_read()
        finally:
            while self.claimed:
                self.claimed -= 1
                # waitress sends each write at once (the head, then the body: two
                # sends); here, on the loop's own thread, the answer is gathered and
                # leaves in one send below.
                self.adj, self.task_class = self.gathering, _ClaimedTask
                try:
                    self.service()
                finally:
                    self.adj, self.task_class = self.server.adj, WSGITask
                    self.release()
                if self.connected and self.total_outbufs_len:
                    self.handle_write()


def _claimant(app: WsgiApp) -> Any:
    """The app (or the Flask app's WSGI callable) if it offers ``claim`` and ``release``."""
    for candidate in (app, getattr(app, "wsgi_app", None)):
        if callable(getattr(candidate, "claim", None)) and callable(
            getattr(candidate, "release", None)
        ):
            return candidate
    return None


def _claiming(server: Any, app: WsgiApp) -> None:
    """Let ``app`` claim requests for the I/O thread, if it offers to (see :class:`_Channel`)."""
    claimant = _claimant(app)
    if claimant is None:
        return
    claim = claimant.claim
    parked = getattr(claimant, "parked", lambda: 0)
    dispatch, run, pull_trigger = server.add_task, server.run, server.pull_trigger
    tasks = server.task_dispatcher
    # below waitress's own watermark (where a request's service waits for the output to
    # drain) by more than one answer, so the loop never waits for itself
    pending_limit = min(CLAIM_OUTBUF_LIMIT, server.adj.outbuf_high_watermark // 4)
    loop: list[threading.Thread] = []  # the thread running the I/O loop

    def add_task(channel: Any) -> None:
        # Called from received() (I/O thread, requests lock held: served once it returns)
        # or from service() for a pipelined request (whichever thread serves the channel:
        # a worker keeps its channel's next request).
        request = channel.requests[0]
        if (
            isinstance(channel, _Channel)
            and not request.error  # a request waitress refused: its answer is the workers'
            and loop and threading.current_thread() is loop[0]
            # Only while no worker runs: beside a busy worker, serving here trades the
            # hand-off for a tug of war over the GIL (read-heavy mixed traffic lost a
            # fifth of its throughput that way; bench/ANALYSIS.md). Workers the app holds
            # parked (waiting on an event stream) compute nothing and do not count.
            and tasks.active_count <= parked() and not tasks.queue
            # A client that sends requests without reading the answers: its answers wait
            # for a worker, which may block until they drain (the loop must not).
            and channel.total_outbufs_len < pending_limit
            and claim(getattr(request, "command", ""), getattr(request, "path", ""))
        ):
            channel.claimed += 1
        else:
            dispatch(channel)

    def run_loop() -> None:
        loop[:] = [threading.current_thread()]
        run()

    def wake_loop() -> None:
        # A worker wakes the loop to send what it wrote; the loop's own thread (serving a
        # claimed request) is awake already, and its next poll sees the channel writable.
        if not loop or threading.current_thread() is not loop[0]:
            pull_trigger()

    gathering = copy.copy(server.adj)
    gathering.send_bytes = 1 << 62
    server.channel_class = type("Channel", (_Channel,), {
        "release": staticmethod(claimant.release), "gathering": gathering,
    })
    server.add_task = add_task
    server.pull_trigger = wake_loop
    server.run = run_loop


def _make(app: WsgiApp, host: str, port: int, threads: int,
          channel_timeout: int = CHANNEL_TIMEOUT) -> Any:
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="kontext-mock",
        channel_timeout=channel_timeout,
        # idle connections are looked for this often
        cleanup_interval=max(1, min(30, channel_timeout // 2)),
        max_request_body_size=SERVER_MAX_BODY_BYTES,
        max_request_header_size=SERVER_MAX_HEADER_BYTES,
        # No proxy is trusted and the mock reads no forwarding header, so they reach the
        # app (and the journal) as the client sent them, like any other header; skipping
        # waitress's proxy-headers middleware saves ~2% of a read.
        clear_untrusted_proxy_headers=False,
        asyncore_use_poll=True,
    )
    _claiming(server, app)
    return server


def _shutdown(server: Any) -> None:
    if getattr(server, "_kontext_stopping", False):
        return
    server._kontext_stopping = True
    # First let the worker threads finish what they hold: a worker that finishes a
    # response wakes the loop through its trigger, which must still be open then (else
    # EBADF). Then close every channel from inside the server's own loop, which ends.
    server.task_dispatcher.shutdown(timeout=2)
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))


def start(app: WsgiApp, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
          channel_timeout: int = CHANNEL_TIMEOUT) -> RunningServer:
    """Serve ``app`` from a background thread; port 0 picks a free port."""
    server = _make(app, host, port, threads, channel_timeout)
    thread = threading.Thread(target=server.run, name="kontext-mock-server", daemon=True)
    thread.start()
    return RunningServer(host, server.effective_port, server, thread)


def serve_forever(
    app: WsgiApp,
    host: str,
    port: int,
    threads: int = 8,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve ``app`` in the foreground until SIGINT or SIGTERM, then stop cleanly."""
    server = _make(app, host, port, threads)

    def stop(signum: int, frame: FrameType | None) -> None:
        _shutdown(server)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready:
            on_ready(host, server.effective_port)
        # Everything built so far (modules, compiled specs, the seeded store) lives as long
        # as the process: out of the collector's sight, a full collection no longer walks
        # it, which took a 100,000-session store's slowest request from 256 ms to 25 ms.
        gc.freeze()
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
