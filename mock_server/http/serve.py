"""Serving the mock, or any WSGI app, over HTTP with the mock's server (``http/serving/server.py``).

:func:`start` runs it in a background thread (tests, the pytest plugin); :func:`serve_forever`
runs it in the foreground until SIGINT or SIGTERM. State lives in one process, so the
server runs one event loop and a pool of worker threads, never forked workers.

Given a mock's Flask app (``mock.app``), the server drives the mock's request pipeline
itself (:class:`~kontext_mock.http.served.ServedMock`); given any other WSGI app (a test's
middleware around the mock, the benchmark's bare Flask app), it calls it from its worker
threads (:class:`~kontext_mock.http.serving.wsgi.WsgiApplication`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kontext_mock.core.faults import ConnectionDroppedError
from kontext_mock.http.app import pipeline_of
from kontext_mock.http.limits import SERVER_MAX_BODY_BYTES
from kontext_mock.http.pipeline import Pipeline
from kontext_mock.http.served import ServedMock
from kontext_mock.http.serving.server import HttpApplication, HttpServer, ServerLimits, new_event_loop
from kontext_mock.http.serving.wsgi import WsgiApplication
from kontext_mock.http.streams import STREAM_RETRY_AFTER

__all__ = ["RunningServer", "ServerLimits", "listen", "serve_forever", "start"]

WsgiApp = Callable[..., Any]


@dataclass
class RunningServer:
    """A server running in a background thread."""

    host: str
    port: int
    server: HttpServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the server thread."""
        self.server.stop()
        self._thread.join(timeout)


def application_for(app: WsgiApp, threads: int) -> HttpApplication:
    """What the server serves for ``app``: the mock's pipeline, or a WSGI app (a mock's
    app wrapped in middleware keeps the mock's body limits) whose streamed answers may
    take at most half of the ``threads`` workers."""
    pipeline = pipeline_of(app)
    if pipeline is not None:
        return ServedMock(pipeline, max_threaded_streams=threads // 2)
    wrapped = getattr(app, "extensions", {}).get("kontext_pipeline")
    limit = wrapped.body_limit if isinstance(wrapped, Pipeline) else SERVER_MAX_BODY_BYTES
    return WsgiApplication(app, limit, max_streams=threads // 2, retry_after=STREAM_RETRY_AFTER,
                           drops=(ConnectionDroppedError,))


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port); OSError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def start(app: WsgiApp, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
          limits: ServerLimits | None = None) -> RunningServer:
    """Serve ``app`` from a background thread; port 0 picks a free port."""
    server = HttpServer(application_for(app, threads), listen(host, port), threads=threads,
                        limits=limits)

    def run() -> None:
        loop = new_event_loop()
        try:
            loop.run_until_complete(server.serve())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="kontext-mock-server", daemon=True)
    thread.start()
    if not server.wait_ready():
        raise RuntimeError("the HTTP server did not start")
    return RunningServer(host, server.port, server, thread)


def serve_forever(
    app: WsgiApp,
    host: str,
    port: int,
    threads: int = 8,
    on_ready: Callable[[str, int], None] | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve ``app`` in the foreground until SIGINT or SIGTERM, then stop cleanly."""
    server = HttpServer(application_for(app, threads), listen(host, port), threads=threads,
                        limits=limits)
    loop = new_event_loop()
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        # Everything built so far (modules, compiled specs, the seeded store) lives as long
        # as the process: out of the collector's sight, a full collection no longer walks
        # it, which keeps a large store's slowest request short (bench/ANALYSIS.md).
        gc.freeze()
        # Told once the loop runs: a signal from then on stops the server.
        ready = None if on_ready is None else functools.partial(on_ready, host, server.port)
        loop.run_until_complete(server.serve(ready))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
