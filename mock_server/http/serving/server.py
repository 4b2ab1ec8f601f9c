"""The mock's HTTP/1.1 server: one asyncio event loop, httptools' parser, bounded everywhere.

Why not an off-the-shelf server (the measurements are in ``bench/ANALYSIS.md``): the mock
needs every limit answered in its own JSON with a request id, a deadline on request
heads, idle connections evicted first at a connection cap, requests whose client left
before they started never run, connections a fault rule can drop without an answer,
and event streams that hold no thread. waitress, granian, uvicorn, aiohttp and hypercorn
each miss some of these through their public APIs; the parsing, the hard part, is
httptools' (the llhttp parser of Node.js), and the rest is the connection bookkeeping
below.

The server knows HTTP, not the mock. It parses a request, bounds it, and hands the whole
:class:`~kontext_mock.http.serving.exchange.Exchange` to an :class:`HttpApplication`, which answers
either at once on the loop (:meth:`HttpApplication.quick`, for what never waits) or as a
coroutine (:meth:`HttpApplication.respond`, which may use the server's worker threads).

Limits (all in :class:`ServerLimits`, all answered in JSON with ``x-request-id``):

* a request head (request line and header fields) over ``max_head_bytes`` or with more
  than ``max_header_fields`` fields: 431; a head not complete ``head_timeout`` seconds
  after its first byte, or a body not complete ``body_timeout`` seconds after its head:
  408; a body over the application's limit for that path (by its ``Content-Length``, or
  as soon as a chunk's size passes it): 413; anything that is not HTTP/1.x (``HTTP/2.0``
  on a request line included), an HTTP/1.1 request without a ``Host`` field, or any with
  two (RFC 9112, 3.2): 400; an HTTP/0.9 request (no version) is not answered (a 0.9
  client could not read an HTTP/1.1 head); the connection is closed after each of these;
* a request in absolute form (``GET http://name/x``) is taken as naming the target's
  authority as its ``Host`` (RFC 9112, 3.2.2), so the application's Host rules see it;
* an ``Upgrade`` the server does not offer (``websocket``, ``h2c``) is ignored, as RFC 9110
  allows: the request is answered and the connection goes on (``CONNECT`` closes it);
* a connection with nothing to do for ``idle_timeout`` seconds is closed; past
  ``max_connections`` (lowered below the open-files limit the process has, which is raised
  to its hard limit at start) the longest-idle connection is closed to make room, and only
  when none is idle is the newcomer answered 503;
* at most ``max_pipelined`` requests are read ahead of the one being answered: past that
  the connection is not read, and what a read brought beyond them is kept unparsed, until
  it catches up; every valid request is answered, in order, however many come at once;
* answers a client does not read stay in memory up to ``max_unsent_bytes`` (one answer
  larger than that is still sent whole): past that the connection is not read, and its
  next answers not made, until the client reads; a client that reads nothing for
  ``idle_timeout`` seconds meanwhile is disconnected (an event stream's too);
* a client that half-closes (``shutdown(SHUT_WR)``, ``nc -N``) after its requests gets
  their answers, then the connection closes; a client is gone when it resets the
  connection or a write to it fails;
* :meth:`HttpServer.stop` (SIGTERM) stops accepting, answers the requests already read
  (for at most ``stop_timeout`` seconds), ends event streams with a chunked body's last
  chunk, closes idle connections, then returns.

After a refusal the server stops writing but reads (and throws away) what the client
still sends for up to ``linger`` seconds before it closes, so the client reads the
refusal instead of a reset connection (as nginx's ``lingering_close``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol, cast
from urllib.parse import unquote_to_bytes

import httptools

from kontext_mock.http.serving.exchange import Answer, Exchange, StreamAnswer

__all__ = ["HttpApplication", "HttpServer", "ServerLimits", "answer_in_worker", "connection_cap",
           "new_event_loop", "raise_open_files_limit"]

log = logging.getLogger("kontext_mock.http")

_STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}
#: the head's last field, and its end
_HEAD_END = b"Server: kontext-mock\r\n\r\n"
#: statuses that have no body, so no Content-Length either (RFC 9110, 8.6)
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The server's bounds on what one client may make it hold (see the module's docstring)."""

    max_head_bytes: int = 64 * 1024
    max_header_fields: int = 200
    head_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 30.0
    #: at most; lowered at start below what the process's open-files limit leaves
    max_connections: int = 1024
    max_pipelined: int = 32
    #: bytes of unsent answers above which a connection's reading pauses until they drain
    max_unsent_bytes: int = 64 * 1024
    #: seconds a refused connection is read (and what it sends thrown away) before closing
    linger: float = 2.0
    #: seconds :meth:`HttpServer.stop` waits for the answers in flight before closing
    stop_timeout: float = 10.0


#: descriptors kept free below the open-files limit for what is not a client connection
#: (the state file and its log, the listening socket, the loop's own, a refused newcomer)
_FD_HEADROOM = 64
#: a read's bytes are parsed this many at a time, so that a read of many small pipelined
#: requests stops being parsed (and is kept as bytes) once ``max_pipelined`` wait
_FEED_SLICE = 4096


def _says_chunked(piece: bytes | memoryview) -> bool:
    """True for a read that may hold a chunked request's head (parsed a byte at a time: see
    :meth:`_Connection._parse`). (Lower case, then a plain search: a case-blind regular
    expression tries a match at every byte.)"""
    return b"chunked" in (piece if isinstance(piece, bytes) else piece.tobytes()).lower()


class HttpApplication(Protocol):
    """What the server asks of the application it serves."""

    def start(self, loop: asyncio.AbstractEventLoop, workers: ThreadPoolExecutor) -> None:
        """Called once on the server's loop before the first request."""

    def body_limit(self, head: Exchange) -> int:
        """The largest body accepted for this request, by its head (413 above it)."""

    def refusal(self, status: int, code: str, message: str,
                headers: dict[str, str] | None = None, head: Exchange | None = None
                ) -> Answer:
        """The JSON answer for a request the server itself refuses (``head``: the request,
        when its head was read)."""

    def quick(self, exchange: Exchange) -> Answer | None:
        """The answer, if it can be given now on the loop without waiting; else None."""

    async def respond(self, exchange: Exchange) -> Answer:
        """The answer (may wait: worker threads, delays)."""

    def gone(self, exchange: Exchange) -> None:
        """``exchange`` will never be answered: its client left before it started."""

    def stop(self) -> None:
        """Called once on the server's loop when it stops serving."""


def raise_open_files_limit() -> int | None:
    """Raise the soft limit on open files to the hard one (where the platform has such
    limits): the soft limit in force after, or None when there is none."""
    try:
        import resource
    except ImportError:  # (Windows)
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):  # (macOS refuses an infinite soft limit)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _open_files() -> int:
    """How many descriptors the process has open (0 where it cannot be told)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(folder))
    return 0


def connection_cap(wanted: int) -> int:
    """``wanted`` connections, or fewer when the open-files limit (raised to its hard limit
    first) would run out before: a connection the cap admits always has its descriptor, so
    idle connections are evicted before ``accept`` fails."""
    limit = raise_open_files_limit()
    if limit is None:
        return wanted
    return max(1, min(wanted, limit - _open_files() - _FD_HEADROOM))


#: a refusal that sends nothing (an HTTP/0.9 request): the connection just closes
_UNANSWERED = Answer(0, [])


class _RefusedError(Exception):
    """Raised inside parser callbacks: answer this and close the connection."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def answer_in_worker(loop: asyncio.AbstractEventLoop, workers: ThreadPoolExecutor,
                           make: Callable[..., Answer], *args: object) -> Answer:
    """``make(*args)`` in a worker thread. If the wait is cancelled (the server stops) and
    the worker still answers, the answer's ``release`` is called all the same (from the
    worker: the loop may be closed by then), so a stream's place taken meanwhile is given
    back."""
    work = workers.submit(make, *args)
    try:
        return await asyncio.shield(asyncio.wrap_future(work, loop=loop))
    except asyncio.CancelledError:
        if work.cancel():  # (not started yet: it never runs)
            raise

        def release(done: concurrent.futures.Future[Answer]) -> None:
            if not done.cancelled() and done.exception() is None:
                answer = done.result()
                if isinstance(answer, StreamAnswer):
                    answer.release()

        work.add_done_callback(release)
        raise


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop: uvloop's where it is installed (a faster loop, same API), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class HttpServer:
    """Serves an :class:`HttpApplication` on a listening socket until :meth:`stop`."""

    def __init__(self, app: HttpApplication, sock: socket.socket, *, threads: int = 8,
                 limits: ServerLimits | None = None) -> None:
        self.app = app
        self.sock = sock
        self.limits = limits or ServerLimits()
        self.threads = threads
        self.connections: set[_Connection] = set()
        #: requests read whole, and connections that went away while one of theirs waited
        #: for its answer (tests and the benchmark read them)
        self.requests_read = 0
        self.abandoned = 0
        #: the connection cap in force (``limits.max_connections`` or fewer: see
        #: :func:`connection_cap`), set when serving starts
        self.max_connections = self.limits.max_connections
        #: True once stopping: no new connection, no new request read
        self.draining = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.workers: ThreadPoolExecutor | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_asked = False
        self._ready = threading.Event()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.sock.getsockname()[1])

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`stop`; then answer what was read (for at most
        ``limits.stop_timeout`` seconds), close every connection and the worker threads.
        ``on_ready`` is called once the server accepts connections, on its loop."""
        loop = asyncio.get_running_loop()
        self.max_connections = connection_cap(self.limits.max_connections)
        self.loop = loop
        self._stopping = asyncio.Event()
        if self._stop_asked:  # stop() came before the loop ran (a signal at start-up)
            self._stopping.set()
        self.workers = ThreadPoolExecutor(self.threads, thread_name_prefix="kontext-mock-worker")
        self.app.start(loop, self.workers)
        server = await loop.create_server(lambda: _Connection(self), sock=self.sock,
                                          backlog=1024)
        sweeper = loop.create_task(self._sweep())
        self._ready.set()
        if on_ready is not None:
            on_ready()
        try:
            await self._stopping.wait()
            server.close()  # no new connection; then the requests read are answered
            self.draining = True
            for connection in list(self.connections):
                connection.drain()
            until = loop.time() + self.limits.stop_timeout
            while self.connections and loop.time() < until:
                await asyncio.sleep(0.02)
        finally:
            self.draining = True
            sweeper.cancel()
            self.app.stop()
            server.close()
            for connection in list(self.connections):
                connection.shut()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
            # Workers finish what they hold (a request they started is answered to no one).
            await loop.run_in_executor(None, self.workers.shutdown)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the server accepts connections (from another thread)."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        """Stop serving (from any thread, or a signal handler; before or after it started)."""
        self._stop_asked = True
        loop, stopping = self.loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)

    async def _sweep(self) -> None:
        """Close connections past their deadline (checked a few times a second, so the hot
        path only stores a float)."""
        limits = self.limits
        period = min(0.5, limits.head_timeout / 4, limits.idle_timeout / 4)
        assert self.loop is not None
        while True:
            await asyncio.sleep(period)
            now = self.loop.time()
            for connection in list(self.connections):
                if connection.deadline is not None and connection.deadline <= now:
                    connection.expire()
                elif connection.stalled is not None and connection.stalled <= now:
                    connection.abort()

    def admit(self, connection: _Connection) -> bool:
        """Make room for a new connection: False when it must be refused (every other
        connection is busy and the cap is reached)."""
        if len(self.connections) < self.max_connections:
            self.connections.add(connection)
            return True
        idle = [c for c in self.connections if c.idle]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.last_active)
        oldest.close_idle()
        self.connections.add(connection)
        return True


class _Connection(asyncio.Protocol):
    """One client connection: parses its requests, answers them in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.limits
        assert server.loop is not None
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer: tuple[str, int] | None = None
        self.local: tuple[str, int] = ("127.0.0.1", 0)
        self.deadline: float | None = None
        #: when a client that reads none of its answers is disconnected (while it reads none)
        self.stalled: float | None = None
        self.last_active = self.loop.time()
        self.closed = False
        # the request being read
        self._reading = False
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        # the fields by lower-case name (the first value of each), whether a name repeats,
        # and their bytes: read once here, for the server's checks and the Exchange
        self._index: dict[str, str] = {}
        self._repeated = False
        self._fields_bytes = 0
        self._head: Exchange | None = None  # once the head is read
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._body_limit = 0
        #: the body's Content-Length, once a head that gives one is read
        self._length: int | None = None
        self._keep_alive = True
        # requests read and waiting for their turn; the one being answered
        self._queue: deque[tuple[Exchange, bool, Answer | None]] = deque()
        self._current: Exchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._streaming = False
        self._refused = False
        self._lingering = False
        self._linger_timer: asyncio.TimerHandle | None = None
        self._linger_unsent = 0
        self._linger_until = 0.0
        self._paused_reading = False
        self._paused_writing = False
        self._drained: asyncio.Event | None = None
        #: bytes read but not parsed yet: ``max_pipelined`` requests wait before them
        self._pending = b""
        self._feeding = False
        #: the client half-closed (sends nothing more); the server stops (reads nothing more)
        self._eof = False
        self._draining = False
        #: the server stops: the stream being sent ends with its last chunk
        self._ending_stream = False
        # a chunked body being read: its size line so far (None: not seen whole), and the
        # bytes of the chunk's data still to come
        self._chunks_watched = False
        self._chunk_line: bytearray | None = None
        self._chunk_left = 0
        self._exact = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: admit it (or refuse it when the server is full)."""
        # uvloop's transports have asyncio.Transport's methods without deriving from it
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            self.local = (str(local[0]), int(local[1]))
        self.transport.set_write_buffer_limits(high=self.limits.max_unsent_bytes)
        if self.server.draining:
            self.closed = True
            self.transport.close()
            return
        if not self.server.admit(self):
            self._refuse(503, "too_many_connections",
                         f"the mock holds {self.server.max_connections} connections, all busy;"
                         " try again shortly", {"Retry-After": "1"})
            return
        self.deadline = self.last_active + self.limits.idle_timeout

    def data_received(self, data: bytes) -> None:
        """Bytes from the client: parse them into requests."""
        if self.closed or self._refused:
            return  # (a refused connection's lingering bytes are thrown away)
        self.last_active = self.loop.time()
        if self._pending:  # (reading paused with bytes unparsed: they come first)
            self._pending += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse ``data``; once ``max_pipelined`` requests wait, keep the rest unparsed
        (and stop reading) until they are answered."""
        self._feeding = True
        try:
            start, end = 0, len(data)
            if (end <= _FEED_SLICE and len(self._queue) < self.limits.max_pipelined
                    and not self._draining and not self._chunks_watched
                    and (self._head is None or self._length is None) and not _says_chunked(data)):
                # The usual read (a request or a few, no body of known length under way, no
                # chunked coding): parsed whole, as :meth:`_parse` would, without its steps.
                try:
                    self.parser.feed_data(data)
                    return
                except httptools.HttpParserUpgrade as upgrade:
                    self.parser = httptools.HttpRequestParser(self)
                    start = int(upgrade.args[0])
                    if self.closed or self._refused:
                        return  # (answered, and not to be kept alive: nothing after it runs)
            view = memoryview(data)
            while start < end:
                if len(self._queue) >= self.limits.max_pipelined or self._draining:
                    self._pending = bytes(view[start:]) if not self._draining else b""
                    self._pause_reading()
                    return
                # (the usual read, one request or a few, is parsed as it came)
                start += self._parse(data if end <= _FEED_SLICE and not start
                                     else view[start:start + _FEED_SLICE])
                if self.closed or self._refused:
                    return
        except _RefusedError as exc:
            self._refuse(exc.status, exc.code, exc.message)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _RefusedError):
                self._refuse(refused.status, refused.code, refused.message)
            else:
                log.exception("error while reading a request")
                self._refuse(400, "malformed_request", "the request could not be read")
        except httptools.HttpParserError as exc:
            self._refuse(400, "malformed_request", f"not a valid HTTP/1.1 request: {exc}")
        finally:
            self._feeding = False

    def _parse(self, piece: bytes | memoryview) -> int:
        """Feed ``piece`` to the parser: how many of its bytes it took (fewer when a request
        asked for an Upgrade: the server offers none, so the bytes after that request are
        the next request, for a new parser). A chunked body is fed a byte at a time (a
        chunk's data at once), so that each chunk's size line is seen whole: a chunk larger
        than the body may be is refused before its data comes. A body of known length is
        fed at once (the word "chunked" in it is no reason to read it a byte at a time),
        then what follows it is parsed as above."""
        left = self._body_left()
        if left:
            if left >= len(piece):
                return self._feed_whole(piece)
            taken = self._feed_whole(piece[:left])
            if taken < left or self.closed or self._refused:
                return taken
            return left + self._parse(piece[left:])
        if not self._chunks_watched and not _says_chunked(piece):
            return self._feed_whole(piece)
        at, end = 0, len(piece)
        while at < end:
            if self._length is not None and self._body_left():  # (a body of known length)
                self._exact = False
                return at + self._parse(piece[at:])
            step = min(self._chunk_left, end - at) if self._chunk_left else 1
            part = piece[at:at + step]
            self._exact = step == 1
            if self._chunk_left:
                self._chunk_left -= step
            elif self._chunk_line is not None:
                self._chunk_line += part
            try:
                self.parser.feed_data(part)
            except httptools.HttpParserUpgrade as upgrade:
                self.parser = httptools.HttpRequestParser(self)
                return at + int(upgrade.args[0])
            at += step
            if self.closed or self._refused:
                break
        self._exact = False
        return at

    def _body_left(self) -> int:
        """The bytes still to come of a body of known length being read; else 0."""
        if self._length is None or self._head is None or self._chunks_watched:
            return 0
        return max(0, self._length - self._body_bytes)

    def _feed_whole(self, piece: bytes | memoryview) -> int:
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade as upgrade:
            self.parser = httptools.HttpRequestParser(self)
            return int(upgrade.args[0])
        return len(piece)

    def on_chunk_header(self) -> None:
        """A chunk's size line is read (by the parser, which checked it): refuse a chunk
        larger than what the body may still take, before its data."""
        line, self._chunk_line = self._chunk_line, None
        if line is None:
            return  # (its size line was not seen whole: the body's bytes are counted)
        try:
            size = int(bytes(line).split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            return
        if size > self._body_limit - self._body_bytes:
            raise _RefusedError(413, "payload_too_large",
                                f"a chunk of {size} bytes takes the request body over"
                                f" {self._body_limit} bytes, the most this route takes")
        self._chunk_left = size

    def on_chunk_complete(self) -> None:
        """A chunk (its data and line end) is read: the next size line begins."""
        self._chunk_left = 0
        self._chunk_line = bytearray() if self._exact else None

    def eof_received(self) -> bool:
        """The client closed its side (or half-closed it, as ``nc -N`` does: the two look
        the same): the requests it sent whole are answered, then the connection closes. A
        client that left for good is seen when it resets, or a write to it fails. An event
        stream being sent ends (its answer has no end to wait for)."""
        self._eof = True
        # True keeps our side open for the answers; False closes (a request half sent
        # never ends; connection_lost follows)
        return not (self._streaming
                    or (self._current is None and not self._queue and not self._pending))

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: waiting requests are abandoned, a stream ends."""
        self.closed = True
        self.deadline = self.stalled = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self.server.connections.discard(self)
        current = self._current
        if current is not None:
            current.client_gone = True  # (a stream made in a worker looks at it)
            if not self._streaming:  # (a stream ends when its client goes: not abandoned)
                self.server.abandoned += 1
        while self._queue:
            exchange, _, refusal = self._queue.popleft()
            if refusal is None:
                exchange.client_gone = True
                self.server.app.gone(exchange)
        # A stream ends now. A request waiting for a worker is not cancelled: the worker
        # sees ``client_gone``, does not run it, and the application records it as abandoned.
        if self._streaming and self._task is not None and not self._task.done():
            self._task.cancel()
        if self._drained is not None:
            self._drained.set()

    def pause_writing(self) -> None:
        """The client reads slower than we write: streams wait, reading and the next
        answers pause; a client that reads nothing for ``idle_timeout`` is disconnected."""
        self._paused_writing = True
        self.stalled = self.loop.time() + self.limits.idle_timeout
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()
        self._pause_reading()

    def resume_writing(self) -> None:
        """The client caught up: on to what waited."""
        self._paused_writing = False
        self.stalled = None
        if self._drained is not None:
            self._drained.set()
        if not self.closed and not self._lingering:
            # (reading again even while a stream is being sent: reading is how its
            # client's leaving is noticed)
            self._resume_reading_if_room()
            self._next()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request begins: its head must be complete within ``head_timeout``."""
        self._reading = True
        self._url = b""
        self._headers = []
        self._index = {}
        self._repeated = False
        self._fields_bytes = 0
        self._head = None
        self._head_bytes = 0
        self._body = []
        self._body_bytes = 0
        self._length = None
        self._chunks_watched, self._chunk_line, self._chunk_left = False, None, 0
        self.deadline = self.loop.time() + self.limits.head_timeout

    def on_url(self, url: bytes) -> None:
        """Part of the request target."""
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_head_bytes:
            self._count_head(0)  # (refused)

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field (a trailer field of a chunked body counts towards the head's
        bytes, and is otherwise ignored: the request's fields were read before its body)."""
        size = len(name) + len(value) + 4
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head_bytes:
            self._count_head(0)  # (refused)
        if self._head is not None:
            return
        headers = self._headers
        if len(headers) >= self.limits.max_header_fields:
            raise _RefusedError(431, "request_header_fields_too_large",
                           f"more than {self.limits.max_header_fields} header fields")
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers.append((key, text))
        self._fields_bytes += size
        lower = key.lower()
        if lower in self._index:
            self._repeated = True
        else:
            self._index[lower] = text

    def on_headers_complete(self) -> None:
        """The head is in: check what the body may be, before reading it."""
        parser = self.parser
        self._keep_alive = parser.should_keep_alive()
        url = self._url
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            if version == "0.9":  # (no version: its client reads no head; it is not answered)
                raise _RefusedError(0, "", "")
            raise _RefusedError(400, "malformed_request",
                                f"HTTP/{version} is not served here, only HTTP/1.1")
        index = self._index
        raw_path, _, query = url.partition(b"?")
        if raw_path[:1] == b"/" and not self._repeated and "host" in index:
            # (the usual request: origin form, one Host: nothing to check, a path as sent)
            path = (raw_path.decode("latin-1") if b"%" not in raw_path
                    else unquote_to_bytes(raw_path).decode("latin-1"))
        else:
            self._check_host(version, url)
            path = self._path()
        # (method, path, query, headers, body, client, server, http_version, target, index,
        # repeated, fields_bytes: in order, as keywords cost more)
        head = self._head = Exchange(
            parser.get_method().decode("ascii", "replace"), path, query, self._headers, b"",
            self.peer, self.local, version, url.decode("latin-1"), index, self._repeated,
            self._fields_bytes)
        if not self._repeated:  # (the usual case: each name once, told by the index)
            length, expect = index.get("content-length"), index.get("expect")
            coding = index.get("transfer-encoding")
            chunked = coding is not None and "chunked" in coding.lower()
        else:
            length = expect = None
            chunked = False
            for name, value in self._headers:
                lower = name.lower()
                if lower == "content-length":
                    length = value
                elif lower == "expect":
                    expect = value
                elif lower == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
        if length is None and not chunked and expect is None:
            # no body (a request has none without either): no limit to ask for
            self._body_limit = 0
            self.deadline = self.loop.time() + self.limits.body_timeout
            return
        limit = self._body_limit = self.server.app.body_limit(head)
        if chunked:
            self._chunks_watched = True
            self._chunk_line = bytearray() if self._exact else None
        if length is not None and length.strip().isdigit():
            self._length = int(length)
        if self._length is not None and self._length > limit:
            raise _RefusedError(413, "payload_too_large",
                           f"the request body is {self._length} bytes; this route takes at most"
                           f" {limit}")
        if (expect is not None and expect.strip().lower() == "100-continue" and self.transport
                and head.http_version == "1.1" and self._current is None and not self._queue):
            # (with answers still to send, a 100 now would come before them: the client
            # sends its body when it tires of waiting for the 100, as RFC 9110 lets it)
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.deadline = self.loop.time() + self.limits.body_timeout

    def on_body(self, body: bytes) -> None:
        """Part of the body (chunked bodies arrive decoded)."""
        self._body_bytes += len(body)
        if self._body_bytes > self._body_limit:
            raise _RefusedError(413, "payload_too_large",
                           f"the request body is over {self._body_limit} bytes, the most this"
                           " route takes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        """A whole request: answer it now, or queue it behind the one being answered."""
        self._reading = False
        self._chunks_watched, self._chunk_line, self._chunk_left = False, None, 0
        exchange = self._head
        assert exchange is not None
        self._head = None
        self.server.requests_read += 1
        if self._body:
            exchange.body = b"".join(self._body)
            self._body = []
        # (an Upgrade is not offered, so the connection goes on; after CONNECT the client
        # would send a tunnel's bytes, not requests)
        keep_alive = self._keep_alive and exchange.method != "CONNECT"
        if self._current is None and not self._queue and not self._paused_writing:
            self._answer(exchange, keep_alive)
        else:
            # (past max_pipelined, reading pauses and the rest of the read waits unparsed)
            self._queue.append((exchange, keep_alive, None))
            if len(self._queue) >= self.limits.max_pipelined:
                self._pause_reading()
        # (answered at once, the idle deadline is set: see _next)

    # -- answering -------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """True when the connection waits for a request and holds none."""
        return not (self._reading or self._current is not None or self._queue or self.closed)

    def _answer(self, exchange: Exchange, keep_alive: bool) -> None:
        self._current = exchange
        if not self._reading:  # (a request being read keeps its deadline)
            self.deadline = None
        app = self.server.app
        try:
            answer = app.quick(exchange)
        except Exception:
            log.exception("error answering %s %s", exchange.method, exchange.path)
            answer = app.refusal(500, "internal_error", "an unexpected error occurred")
        if answer is None:
            self._task = self.loop.create_task(self._respond(exchange, keep_alive))
            return
        if isinstance(answer, StreamAnswer):  # answered at once, its chunks still to come
            self._task = self.loop.create_task(self._deliver(exchange, answer, keep_alive))
            return
        self._send(exchange, answer, keep_alive)
        self._done(keep_alive)

    async def _respond(self, exchange: Exchange, keep_alive: bool) -> None:
        app = self.server.app
        try:
            answer = await app.respond(exchange)
        except asyncio.CancelledError:
            return  # the connection is gone
        except Exception:
            log.exception("error answering %s %s", exchange.method, exchange.path)
            answer = app.refusal(500, "internal_error", "an unexpected error occurred")
        await self._deliver(exchange, answer, keep_alive)

    async def _deliver(self, exchange: Exchange, answer: Answer, keep_alive: bool) -> None:
        """Write the answer, and a stream's chunks as they come; then the next request."""
        try:
            if self.closed:
                self._current = None
                return
            self._send(exchange, answer, keep_alive)
            stream = answer.stream if isinstance(answer, StreamAnswer) else None
            if stream is not None and exchange.method != "HEAD":
                chunked = exchange.http_version == "1.1"
                self._streaming = True
                try:
                    await self._pump(stream(), chunked)
                except asyncio.CancelledError:
                    if not self._ending_stream or self.closed or self.transport is None:
                        return  # the client left
                    # the server stops: the stream ends as a stream does, its last event
                    # (if it has one) then its last chunk
                    last = answer.last if isinstance(answer, StreamAnswer) else b""
                    if chunked:
                        self.transport.write((b"%x\r\n%s\r\n" % (len(last), last) if last else b"")
                                             + b"0\r\n\r\n")
                    elif last:
                        self.transport.write(last)
                    self.close()
                    return
                finally:
                    self._streaming = False
                keep_alive = keep_alive and chunked
        finally:
            if isinstance(answer, StreamAnswer):
                answer.release()  # the stream ended, or never ran
        self._done(keep_alive and not answer.drop)

    def _send(self, exchange: Exchange, answer: Answer, keep_alive: bool) -> None:
        """Write the answer's head and body (a stream's chunks follow in :meth:`_pump`)."""
        transport = self.transport
        if self.closed or transport is None:
            return
        if answer.drop:
            self.closed = True
            transport.abort()
            return
        status = answer.status
        body = answer.body
        if isinstance(answer, StreamAnswer):
            # (its length is unknown: chunked for HTTP/1.1, the connection's end for 1.0)
            fields = [f"{name}: {value}\r\n" for name, value in answer.headers
                      if name.lower() != "content-length"]
            if exchange.http_version == "1.1":
                fields.append("Transfer-Encoding: chunked\r\n")
            else:
                keep_alive = False
            body = b""
        else:
            fields = [f"{name}: {value}\r\n" for name, value in answer.headers]
            if status in _NO_BODY:
                body = b""
            else:
                for name, _ in answer.headers:
                    if len(name) == 14 and name.lower() == "content-length":
                        break
                else:
                    fields.append(f"Content-Length: {len(body)}\r\n")
                if exchange.method == "HEAD":
                    body = b""
        if self._draining and not self._queue:
            keep_alive = False  # (the last answer before the server stops)
        if not keep_alive:
            fields.append("Connection: close\r\n")
        elif exchange.http_version == "1.0":
            fields.append("Connection: keep-alive\r\n")
        status_line = (_STATUS_LINES.get(status)
                       or f"HTTP/1.1 {status} Unknown\r\n".encode("latin-1"))
        transport.write(b"".join((status_line, "".join(fields).encode("latin-1"), _HEAD_END,
                                  body)))

    async def _pump(self, chunks: AsyncIterator[bytes], chunked: bool) -> None:
        """Write a stream's chunks as they come, waiting while the client reads slowly."""
        transport = self.transport
        assert transport is not None
        try:
            async for chunk in chunks:
                if self.closed:
                    return
                if chunk:
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if self._paused_writing and self._drained is not None:
                    await self._drained.wait()  # (a client reading nothing is cut off: stalled)
            if chunked and not self.closed:
                transport.write(b"0\r\n\r\n")
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _done(self, keep_alive: bool) -> None:
        """The current request is answered: close, or on to the next one in line."""
        self._current = None
        self._task = None
        if self.closed:
            return
        if not keep_alive:
            if self._refused:
                self._linger()
            else:
                self.close()
            return
        self._next()

    def _next(self) -> None:
        """Answer the next request in line, unless one is being answered or the client
        has not read what was sent (then :meth:`resume_writing` calls again)."""
        if self._current is not None or self.closed:
            return
        if self._queue:
            if self._paused_writing:
                return
            exchange, keep_next, refusal = self._queue.popleft()
            if refusal is not None:
                self._current = exchange
                if refusal is not _UNANSWERED:
                    self._send(exchange, refusal, keep_alive=False)
                self._done(False)
                return
            self._answer(exchange, keep_next)  # (first: it is the next in line)
            self._resume_reading_if_room()
            return
        if self._paused_reading:
            self._resume_reading_if_room()
        if self._current is not None or self._queue or self.closed:
            return  # (the bytes kept brought more)
        if self._draining or (self._eof and not self._pending):
            self.close()  # everything asked for is answered
            return
        if not self._reading:
            self.deadline = self.loop.time() + self.limits.idle_timeout

    def _resume_reading_if_room(self) -> None:
        if (self._paused_reading and not self._refused and not self._paused_writing
                and not self._draining and not self._feeding
                and len(self._queue) < self.limits.max_pipelined // 2):
            if self._pending:
                pending, self._pending = self._pending, b""
                self._feed(pending)
                if self._pending or self.closed or self._refused:
                    return  # (paused again: more requests wait)
            if not self._eof:
                self._resume_reading()

    # -- refusing and closing --------------------------------------------------------------

    def _refuse(self, status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> None:
        """Answer a request the server refuses, then close (after earlier answers)."""
        if self.closed or self.transport is None or self._refused:
            return
        self._refused = True
        self._reading = False
        self.deadline = None
        # Nothing more is read from this connection; what was read before is answered first.
        self._pause_reading()
        self._pending = b""
        answer = (_UNANSWERED if status == 0
                  else self.server.app.refusal(status, code, message, headers, self._head))
        exchange = Exchange(method="GET", path="", query=b"", headers=[], client=self.peer)
        if self._current is None and not self._queue:
            self._current = exchange
            if answer is not _UNANSWERED:
                self._send(exchange, answer, keep_alive=False)
            self._done(False)
        else:
            self._queue.append((exchange, False, answer))

    def _linger(self) -> None:
        """After a refusal: send what was written and end our side, then read and throw
        away what the client still sends until it closes or ``linger`` seconds pass.
        (Closing at once, with its bytes unread, would reset the connection, and the
        client could lose the refusal.)"""
        transport = self.transport
        if transport is None or self.closed or not transport.can_write_eof():
            self.close()
            return
        self._lingering = True
        self._queue.clear()
        with contextlib.suppress(OSError, RuntimeError):
            transport.write_eof()
        # The ``linger`` seconds count from when the client has read everything: answers
        # to earlier requests may still be on their way to a slow reader, and are not
        # thrown away while it reads (one that reads nothing for ``idle_timeout`` is cut off).
        # (A timer, not the deadline: a newcomer refused at the connection cap is not
        # among the connections the sweeper looks at.)
        self._linger_unsent = transport.get_write_buffer_size()
        self._linger_until = self.loop.time() + (
            self.limits.idle_timeout if self._linger_unsent else self.limits.linger)
        self._linger_tick()
        if self._paused_reading:
            self._paused_reading = False
            with contextlib.suppress(RuntimeError):
                transport.resume_reading()

    def _linger_tick(self) -> None:
        transport = self.transport
        if self.closed or transport is None:
            return
        now = self.loop.time()
        unsent = transport.get_write_buffer_size()
        if unsent < self._linger_unsent:  # the client read: it gets more time
            self._linger_until = now + (self.limits.idle_timeout if unsent else self.limits.linger)
        self._linger_unsent = unsent
        if now >= self._linger_until:
            self.abort()
            return
        self._linger_timer = self.loop.call_at(  # (looked at again at least 0.1 s on)
            min(self._linger_until, now + max(self.limits.linger, 0.1)), self._linger_tick)

    def expire(self) -> None:
        """The deadline passed: a request not read in time is answered 408; an idle
        connection is closed."""
        self.deadline = None
        if self._reading:
            self._refuse(408, "request_timeout",
                         "the request was not received in time (head within"
                         f" {self.limits.head_timeout:g} s, body within"
                         f" {self.limits.body_timeout:g} s)")
        elif self.idle:
            self.close_idle()

    def drain(self) -> None:
        """The server stops: read nothing more; close once the requests read are answered
        (an event stream ends with its last chunk); an idle connection closes now."""
        self._draining = True
        self._pending = b""
        self._pause_reading()
        if self._streaming and self._task is not None and not self._task.done():
            self._ending_stream = True
            self._task.cancel()
        elif self._current is None and not self._queue:
            self.close()  # (idle, or a request half read: not yet asked, so not answered)

    def shut(self) -> None:
        """The server stops: close, and stop waiting for the answer being made."""
        self.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def close_idle(self) -> None:
        """Close an idle connection: at once, if the client has not read all it was sent
        (it is not kept open for a client that does not read)."""
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size():
            self.abort()
        else:
            self.close()

    def close(self) -> None:
        """Close the connection after what was written."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
        self.server.connections.discard(self)

    def abort(self) -> None:
        """Close the connection now, dropping what the client has not read."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()
        self.server.connections.discard(self)

    def _pause_reading(self) -> None:
        if not self._paused_reading and self.transport is not None and not self.closed:
            self._paused_reading = True
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._paused_reading and self.transport is not None and not self.closed:
            self._paused_reading = False
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    # -- helpers ---------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head_bytes:
            raise _RefusedError(431, "request_header_fields_too_large",
                           f"the request head is over {self.limits.max_head_bytes} bytes")

    def _check_host(self, version: str, url: bytes) -> None:
        """RFC 9112, 3.2: an HTTP/1.1 request has one ``Host`` field, any request at most
        one; a request in absolute form names its ``Host`` in its target (3.2.2), which
        replaces the field, so the application's Host rules judge the authority asked for."""
        headers = self._headers
        if self._repeated and sum(name.lower() == "host" for name, _ in headers) > 1:
            raise _RefusedError(400, "malformed_request",
                                "the request has more than one Host header field")
        if url[:1] != b"/" and (url[:7].lower() == b"http://" or url[:8].lower() == b"https://"):
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise _RefusedError(400, "malformed_request", "the request target is not a URL"
                                    ) from None
            if not parsed.host:
                raise _RefusedError(400, "malformed_request", "the request target names no host")
            host = parsed.host.decode("latin-1")
            if ":" in host:
                host = f"[{host}]"  # (an IPv6 address)
            authority = host if parsed.port is None else f"{host}:{parsed.port}"
            place = next((i for i, (name, _) in enumerate(headers) if name.lower() == "host"),
                         None)
            if place is not None:
                headers[place] = (headers[place][0], authority)
            else:
                headers.append(("Host", authority))
            self._index["host"] = authority  # (the first Host field's value, now)
            self._fields_bytes = -1  # (counted again from the fields)
        elif version == "1.1" and "host" not in self._index:
            raise _RefusedError(400, "malformed_request",
                                "an HTTP/1.1 request needs a Host header field (RFC 9112, 3.2)")

    def _path(self) -> str:
        raw = self._url
        cut = raw.find(b"?")
        if cut >= 0:
            raw = raw[:cut]
        if raw.startswith(b"http://") or raw.startswith(b"https://"):
            try:
                raw = httptools.parse_url(raw).path or b"/"
            except httptools.HttpParserInvalidURLError:
                raw = b"/"
        return unquote_to_bytes(raw).decode("latin-1") if b"%" in raw else raw.decode("latin-1")
