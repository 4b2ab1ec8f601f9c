"""WSGI at the edges of the HTTP layer.

An :class:`~kontext_mock.http.serving.exchange.Exchange` becomes a WSGI environ, and a WSGI app's
answer an :class:`~kontext_mock.http.serving.exchange.Answer`, wherever a WSGI app is called: the
mock's Flask path, and any other WSGI app the server is asked to serve
(:class:`WsgiApplication`, e.g. a test's middleware around the mock, or the benchmark's
bare Flask app). The other way round, :func:`read_exchange` reads a request that arrived
as WSGI (an in-process client) into an Exchange. A stream crosses a WSGI app whole as a
:class:`StreamBody`, so it is run as it would be without the app.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

from kontext_mock.http.serving.exchange import (
    Answer,
    Exchange,
    Outcome,
    StreamAnswer,
    dropped,
    error_answer,
)
from kontext_mock.http.serving.requestids import new_request_id
from kontext_mock.http.serving.server import answer_in_worker

__all__ = [
    "StreamBody",
    "ThreadedStreams",
    "WsgiApp",
    "WsgiApplication",
    "call_wsgi",
    "environ_for",
    "read_exchange",
]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Header names and values that could split a response (a broken app's, never ours).
_BAD_HEADER = re.compile(r"[\r\n\x00]")
_STREAM_TYPES = ("text/event-stream",)


def environ_for(exchange: Exchange) -> dict[str, Any]:
    """The WSGI environ of ``exchange`` (PEP 3333; the body whole in ``wsgi.input``)."""
    client = exchange.client
    body = exchange.body
    environ: dict[str, Any] = {
        "REQUEST_METHOD": exchange.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": exchange.path,
        "QUERY_STRING": exchange.query.decode("latin-1"),
        "RAW_URI": exchange.target,
        "REQUEST_URI": exchange.target,
        "SERVER_NAME": exchange.server[0],
        "SERVER_PORT": str(exchange.server[1]),
        "SERVER_PROTOCOL": f"HTTP/{exchange.http_version}",
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "kontext.exchange": exchange,
    }
    for name, value in exchange.headers:
        if "_" in name:
            # "X_Token" could pose as "X-Token" once both are HTTP_X_TOKEN (waitress and
            # nginx drop such names too); the journal still shows them as sent.
            continue
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ.setdefault(key, value)
            continue
        if key == "TRANSFER_ENCODING":
            continue  # the body arrives whole (chunks decoded); its length is set below
        key = "HTTP_" + key
        previous = environ.get(key)
        environ[key] = value if previous is None else f"{previous},{value}"
    if body or "CONTENT_LENGTH" in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def read_exchange(environ: dict[str, Any], body_limit: Callable[[Exchange], int]
                  ) -> tuple[Exchange, int | None]:
    """An Exchange of a request that arrived as WSGI (an in-process client); and, when its
    body is over ``body_limit(head)`` bytes, that limit (the body is then not read: at most
    one byte more)."""
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), value))
    address = environ.get("REMOTE_ADDR")
    client = (str(address), int(environ.get("REMOTE_PORT") or 0)) if address else None
    query = environ.get("QUERY_STRING", "")
    path = environ.get("PATH_INFO", "") or "/"
    exchange = Exchange(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=path,
        query=query.encode("latin-1"),
        headers=headers,
        client=client,
        server=(str(environ.get("SERVER_NAME", "localhost")), int(environ.get("SERVER_PORT") or 80)),
        http_version=str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2] or "1.1",
        target=environ.get("RAW_URI") or (f"{path}?{query}" if query else path),
        outer_gone=environ.get("kontext.client_gone"),
    )
    limit = body_limit(exchange)
    exchange.body, too_large = _read_body(environ, limit)
    return exchange, limit if too_large else None


def _read_body(environ: dict[str, Any], max_body: int) -> tuple[bytes, bool]:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b"", False
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size > max_body:
            return b"", True
        if size >= 0:
            return (bytes(stream.read(size)) if size else b""), False
    if environ.get("wsgi.input_terminated") or "chunked" in environ.get(
            "HTTP_TRANSFER_ENCODING", "").lower():
        data = stream.read(max_body + 1)
        if len(data) > max_body:
            return b"", True
        return bytes(data), False
    return b"", False


#: what makes an answer of a streamed body: (chunks, close, status, headers) -> its answer
StreamMaker = Callable[[Iterator[bytes], Callable[[], None], int, list[tuple[str, str]]], Answer]


class StreamBody:
    """A :class:`~kontext_mock.http.serving.exchange.StreamAnswer` as a WSGI app's body
    (a response that passes its body through untouched, e.g. werkzeug's
    ``direct_passthrough``), so that a handler's stream crosses a WSGI app whole.

    :func:`call_wsgi` takes the answer back out: the server then runs its ``stream`` on
    its loop (no thread held while it waits, and no thread inside it when it is
    released), and an in-process client its ``chunks``, told when its own client left.
    Read as a plain WSGI iterable, it gives ``chunks`` in the reader's thread. ``close``
    releases the stream, once.
    """

    def __init__(self, answer: StreamAnswer, gone: Callable[[], bool] | None = None) -> None:
        self.answer = answer
        #: tells a reader's stream that its client left (``kontext.client_gone``)
        self.gone = gone
        self._read: Iterator[bytes] | None = None
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self.answer.chunks is None:
            return iter(())
        self._read = self.answer.chunks(self.gone)
        return self._read

    def close(self) -> None:
        """End the stream and give back its place (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._read, "close", None)
            if close is not None:
                close()
        finally:
            self.answer.release()


def call_wsgi(app: WsgiApp, environ: dict[str, Any], stream: StreamMaker | None = None
              ) -> Answer:
    """Call a WSGI app; its answer, with the body read whole. A :class:`StreamBody` comes
    back as its stream's answer (with the status and headers the app sent); another
    event stream, when ``stream`` is given, is handed to ``stream`` to be read as it comes."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                       ) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(environ, start_response)
    close = getattr(result, "close", None)
    try:
        if isinstance(result, StreamBody) and started and not written:
            status, pairs = _head(started)
            answer = result.answer
            close = None  # (the stream's own release closes it)
            return StreamAnswer(status, pairs, stream=answer.stream, chunks=answer.chunks,
                                release=result.close, last=answer.last)
        iterator = iter(result)
        first = next(iterator, None)  # a WSGI app may call start_response lazily
        if not started:
            raise RuntimeError("the WSGI app did not call start_response")
        status, pairs = _head(started)
        content_type = next((v for k, v in pairs if k.lower() == "content-type"), "")
        if stream is not None and content_type.startswith(_STREAM_TYPES):
            chunks = iter(([first] if first else []) + written)
            rest = _chain(chunks, iterator)
            close, closing = None, close or (lambda: None)  # the stream closes it when it ends
            return stream(rest, closing, status, pairs)
        body = b"".join(written)
        if first:
            body += first + b"".join(iterator)
        return Answer(status, pairs, body)
    finally:
        if close is not None:
            close()


def _head(started: list[Any]) -> tuple[int, list[tuple[str, str]]]:
    """The status and headers a WSGI app gave ``start_response``."""
    status_text, headers = started
    pairs = [(str(k), str(v)) for k, v in headers]
    for name, value in pairs:
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
            raise ValueError(f"the WSGI app sent a header that would split the response: {name!r}")
    return int(str(status_text)[:3]), pairs


def _chain(first: Iterator[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


class WsgiApplication:
    """Any WSGI app, served by :class:`~kontext_mock.http.serving.server.HttpServer` from its worker
    threads. A request whose client left before a worker took it is not run."""

    def __init__(self, app: WsgiApp, body_limit: int | Callable[[Exchange], int],
                 max_streams: int, *, retry_after: int = 5,
                 drops: tuple[type[BaseException], ...] = ()) -> None:
        self.app = app
        self._body_limit = body_limit
        #: what the app raises to have the connection dropped, not answered (the mock's
        #: fault rules, through middleware)
        self.drops = drops
        self.streams = ThreadedStreams(max_streams, self.refusal, retry_after)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: ThreadPoolExecutor | None = None

    def start(self, loop: asyncio.AbstractEventLoop, workers: ThreadPoolExecutor) -> None:
        """Remember the server's loop and workers."""
        self._loop, self._workers = loop, workers
        self.streams.start(loop, workers)

    def body_limit(self, head: Exchange) -> int:
        """The largest body for this request (a fixed number, or the app's rule)."""
        limit = self._body_limit
        return limit if isinstance(limit, int) else limit(head)

    def refusal(self, status: int, code: str, message: str,
                headers: dict[str, str] | None = None, head: Exchange | None = None
                ) -> Answer:
        """The API's error shape, with a request id and the system's ``Date``."""
        answer = error_answer(status, code, message, headers)
        answer.headers += [("x-request-id", new_request_id()),
                           ("Date", formatdate(time.time(), usegmt=True))]
        return answer

    def quick(self, exchange: Exchange) -> Answer | None:
        """Nothing is answered on the loop: every request goes to a worker."""
        return None

    async def respond(self, exchange: Exchange) -> Answer:
        """Call the app from a worker thread."""
        assert self._loop is not None and self._workers is not None
        return await answer_in_worker(self._loop, self._workers, self._call, exchange)

    def gone(self, exchange: Exchange) -> None:
        """Nothing to record."""

    def stop(self) -> None:
        """Nothing to stop."""

    def _call(self, exchange: Exchange) -> Answer:
        if exchange.client_gone:
            return dropped(Outcome.ABANDONED, 499)
        environ = environ_for(exchange)
        environ["kontext.client_gone"] = lambda: exchange.client_gone
        try:
            return call_wsgi(self.app, environ, self.streams)
        except self.drops:  # e.g. the mock's fault rule, in middleware: drop, don't answer
            return dropped()


class ThreadedStreams:
    """Streamed answers that only a thread can read (a WSGI app's generator), read chunk
    by chunk in the server's workers: a :data:`StreamMaker`.

    Such a stream holds a worker while it waits for its next chunk, so at most
    ``max_streams`` run at once (a 503 past them) and the other workers stay free for
    requests. Its place is given back only once no worker is inside it any more, so its
    release never races a read.
    """

    def __init__(self, max_streams: int, refusal: Callable[..., Answer],
                 retry_after: int = 5) -> None:
        self.max_streams = max_streams
        #: seconds a client refused a stream (every place taken) is told to wait
        self.retry_after = retry_after
        self._refusal = refusal
        self._open = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: ThreadPoolExecutor | None = None

    @property
    def open(self) -> int:
        """How many such streams run now."""
        return self._open

    def start(self, loop: asyncio.AbstractEventLoop, workers: ThreadPoolExecutor) -> None:
        """Remember the server's loop and workers."""
        self._loop, self._workers = loop, workers

    def __call__(self, chunks: Iterator[bytes], close: Callable[[], None], status: int,
                 headers: list[tuple[str, str]]) -> Answer:
        """The stream's answer, read in workers; or a 503 when every place is taken."""
        loop, workers = self._loop, self._workers
        assert loop is not None and workers is not None
        with self._lock:
            full = self._open >= self.max_streams
            if not full:
                self._open += 1
        if full:
            with contextlib.suppress(Exception):
                close()
            return self._refusal(503, "too_many_streams",
                                 f"{self.max_streams} streamed answers are open, the most this"
                                 " server runs at once; retry shortly",
                                 {"Retry-After": str(self.retry_after)})
        released = threading.Event()
        reading: list[concurrent.futures.Future[bytes | None]] = []

        def finish() -> None:  # no worker is in the stream: close it, free its place
            with contextlib.suppress(Exception):
                close()
            with self._lock:
                self._open -= 1

        def release() -> None:  # the stream ended, or never ran (the server calls it once)
            if released.is_set():
                return
            released.set()
            if reading and not reading[-1].done():  # a worker still waits in the app
                reading[-1].add_done_callback(lambda _: finish())
                return
            try:
                workers.submit(finish)
            except RuntimeError:  # the server's workers stopped
                finish()

        async def pull() -> AsyncIterator[bytes]:
            while True:
                reading[:] = [workers.submit(next, chunks, None)]
                chunk = await asyncio.shield(asyncio.wrap_future(reading[0], loop=loop))
                if chunk is None:
                    return
                yield chunk

        # (``chunks`` for a reader in its own thread: an in-process client of the same app)
        return StreamAnswer(status, headers, stream=pull, chunks=lambda gone: chunks,
                            release=release)
