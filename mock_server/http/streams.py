"""Server-sent events: the event bus as a ``text/event-stream``.

A stream subscribes first, then replays recorded events after ``since`` (so a client
that reconnects with ``Last-Event-ID`` misses nothing; an id the mock never gave, from a
run before it restarted, replays all it has), then sends live events as they
are published, and a keep-alive comment every ``keepalive`` seconds. It ends after
``limit`` events or ``timeout`` seconds when given, when its subscription is closed, and
when its client leaves.

Served by the mock's HTTP server, a stream is a coroutine on the server's event loop
(:func:`async_event_stream`): it holds no thread, and it ends as soon as the connection
closes. In-process clients get the same chunks from a generator
(:func:`event_stream`). At most ``MockConfig.max_event_streams`` streams are open at once;
past that a stream is refused ``503`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from kontext_mock.core.errors import ApiError
from kontext_mock.core.events import Event, StreamsFullError, Subscription

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine

__all__ = ["STOPPING_EVENT", "STREAM_RETRY_AFTER", "StreamPlan", "async_event_stream", "encode",
           "event_stream", "open_stream"]

#: seconds a client refused an event stream (all places taken) is told to wait
STREAM_RETRY_AFTER = 5
#: the last event of a stream the server ends because it stops: a client reconnects later
#: with its Last-Event-ID (no id of its own, so that resumes where the events left off)
STOPPING_EVENT = b'event: mock.stopping\ndata: {"reason": "the mock is stopping"}\n\n'
_TICK = 1.0
_OPENING = b"retry: 1000\n: subscribed\n\n"
_KEEPALIVE = b": keep-alive\n\n"
#: events whose encoding is kept: every stream sends the same bytes for an event, so it
#: is encoded once, not once per stream
_ENCODED_KEPT = 64


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """What a client asked of its stream."""

    types: frozenset[str] | None = None
    since: int | None = None
    limit: int | None = None
    timeout: float | None = None
    keepalive: float = 15.0

    def bounded(self, mock: MockEngine) -> StreamPlan:
        """The plan with the mock's ``event_stream_max`` applied to its timeout."""
        cap = mock.config.event_stream_max
        if cap is None:
            return self
        seconds = cap.total_seconds()
        timeout = min(self.timeout or seconds, seconds)
        return StreamPlan(self.types, self.since, self.limit, timeout, self.keepalive)


_encoded: dict[int, tuple[Event, bytes]] = {}


def encode(event: Event) -> bytes:
    """One event in the event-stream format (encoded once for all the streams that send it)."""
    kept = _encoded.get(id(event))
    if kept is not None and kept[0] is event:  # (the entry holds the event, so its id is not reused)
        return kept[1]
    data = orjson.dumps(event.to_dict())
    wire = b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), data)
    if len(_encoded) >= _ENCODED_KEPT:
        _encoded.clear()
    _encoded[id(event)] = (event, wire)
    return wire


def open_stream(mock: MockEngine, plan: StreamPlan) -> Subscription:
    """Take one of the mock's event-stream places for ``plan`` (the route's handler does,
    so a full house is answered ``503 too_many_streams`` before any of the stream is sent).
    The stream closes the subscription when it ends; whoever does not run it must."""
    cap = mock.config.max_event_streams
    try:
        return mock.events.subscribe(plan.types, stream=True, cap=cap)
    except StreamsFullError:
        raise ApiError(503, "too_many_streams",
                       f"{cap} event streams are open, the most the mock serves at once;"
                       " retry shortly", headers={"Retry-After": str(STREAM_RETRY_AFTER)}) from None


class _Waker:
    """Wakes the streams of one event loop from the threads that publish events: one call
    into the loop per burst, however many streams wait (a call per stream would be a
    system call per stream, each taking the loop from the requests it serves)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._due: list[asyncio.Event] = []

    def wake(self, woken: asyncio.Event) -> None:
        """Set ``woken`` on the loop soon (from any thread)."""
        with self._lock:
            self._due.append(woken)
            if len(self._due) > 1:
                return  # a call is on its way and will set this one too
        with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits any more
            self._loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            due, self._due = self._due, []
        for woken in due:
            woken.set()


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()


def _waker(loop: asyncio.AbstractEventLoop) -> _Waker:
    waker = _wakers.get(loop)
    if waker is None:
        waker = _wakers[loop] = _Waker(loop)
    return waker


class _Sender:
    """The part both kinds of stream share: history first, then live events, no repeats,
    and the count towards ``limit``."""

    def __init__(self, mock: MockEngine, plan: StreamPlan) -> None:
        self.mock = mock
        self.plan = plan
        self.sent = 0
        since = plan.since
        if since is not None and since > mock.events.last_id:
            # An id this mock never gave: the client saw an earlier run of it (the mock
            # restarted, its ids with it), so it gets everything this run has.
            since = 0
        self.since = since
        self.last_id = since or 0

    def opening(self) -> list[bytes]:
        """What a stream sends first: the opening comment, then the history after
        ``since`` (up to ``limit`` events)."""
        chunks = [_OPENING]
        if self.since is not None:
            for event in self.mock.events.since(self.since, self.plan.types):
                if self.done:
                    break
                chunk = self.take(event)
                if chunk:
                    chunks.append(chunk)
        return chunks

    def take(self, event: Event) -> bytes | None:
        """The chunk for ``event`` (None: already sent from the history)."""
        if event.id <= self.last_id:
            return None
        self.last_id = event.id
        self.sent += 1
        return encode(event)

    @property
    def done(self) -> bool:
        return self.plan.limit is not None and self.sent >= self.plan.limit


def event_stream(mock: MockEngine, plan: StreamPlan, subscription: Subscription,
                 gone: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """The stream's chunks for a thread that may block (in-process clients, other servers),
    on a place :func:`open_stream` took; it also ends once ``gone()`` says the client left
    (looked at every second)."""
    plan = plan.bounded(mock)
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    sender = _Sender(mock, plan)
    try:
        yield from sender.opening()
        if sender.done:
            return
        quiet_since = time.monotonic()
        while True:
            wait = _TICK
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            live = subscription.get(timeout=wait)
            if live is None:
                if subscription.closed or (gone is not None and gone()):
                    return
                if not mock.clock.frozen:
                    mock.tick()
                if time.monotonic() - quiet_since >= plan.keepalive:
                    quiet_since = time.monotonic()
                    yield _KEEPALIVE
                continue
            chunk = sender.take(live)
            if chunk is None:
                continue
            quiet_since = time.monotonic()
            yield chunk
            if sender.done:
                return
    finally:
        subscription.close()


async def async_event_stream(mock: MockEngine, plan: StreamPlan, subscription: Subscription
                             ) -> AsyncIterator[bytes]:
    """The stream's chunks on an event loop, on a place :func:`open_stream` took: it waits
    for events without a thread (the publishing thread wakes it through the loop)."""
    plan = plan.bounded(mock)
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    waker = _waker(loop)
    subscription.notify = lambda: waker.wake(woken)
    deadline = None if plan.timeout is None else loop.time() + plan.timeout
    sender = _Sender(mock, plan)
    try:
        for first in sender.opening():
            yield first
        if sender.done:
            return
        quiet_since = loop.time()
        while True:
            live = subscription.get_nowait()
            if live is None:
                if subscription.closed:
                    return
                woken.clear()
                subscription.waiting = True
                live = subscription.get_nowait()  # published between the look and the wait
                if live is None:
                    if subscription.closed:
                        return
                    wait = plan.keepalive - (loop.time() - quiet_since)
                    if deadline is not None:
                        wait = min(wait, deadline - loop.time())
                    try:
                        async with asyncio.timeout(max(wait, 0)):
                            await woken.wait()
                    except TimeoutError:
                        if deadline is not None and loop.time() >= deadline:
                            return
                        if loop.time() - quiet_since >= plan.keepalive:
                            quiet_since = loop.time()
                            yield _KEEPALIVE
                    continue
            subscription.waiting = False
            chunk = sender.take(live)
            if chunk is None:
                continue
            quiet_since = loop.time()
            yield chunk
            if sender.done:
                return
    finally:
        subscription.close()
