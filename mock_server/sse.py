"""Server-sent events: the event bus as a ``text/event-stream``.

A stream subscribes first, then replays recorded events after ``since`` (so a client
that reconnects with ``Last-Event-ID`` misses nothing), then sends live events as they
are published. While waiting it plays due lifecycle steps of a running clock once a
second, and sends a keep-alive comment every ``keepalive`` seconds, which is also how it
notices a client that went away where the server cannot tell it sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import orjson

from .events import Event

if TYPE_CHECKING:
    from .mock import KontextMock

__all__ = ["encode", "event_stream"]

_TICK = 1.0


def encode(event: Event) -> bytes:
    """One event in the event-stream format."""
    data = orjson.dumps(event.to_dict())
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), data)


def event_stream(
    mock: KontextMock,
    *,
    types: frozenset[str] | None = None,
    since: int | None = None,
    limit: int | None = None,
    timeout: float | None = None,
    keepalive: float = 15.0,
    gone: Callable[[], bool] | None = None,
) -> Iterator[bytes]:
    """The stream's chunks; it ends after ``limit`` events or ``timeout`` seconds, if given
    (and after the mock's ``event_stream_max``, if configured), or once ``gone()`` says the
    client left (the server's check, looked at every second)."""
    cap = mock.config.event_stream_max
    if cap is not None:
        timeout = min(timeout or cap.total_seconds(), cap.total_seconds())
    deadline = None if timeout is None else time.monotonic() + timeout
    subscription = mock.events.subscribe(types, stream=True)
    sent = 0
    last_id = since or 0
    try:
        yield b"retry: 1000\n: subscribed\n\n"
        if since is not None:
            for event in mock.events.since(since, types):
                yield encode(event)
                last_id = event.id
                sent += 1
                if limit is not None and sent >= limit:
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
                if time.monotonic() - quiet_since >= keepalive:
                    quiet_since = time.monotonic()
                    yield b": keep-alive\n\n"
                continue
            if live.id <= last_id:
                continue  # already replayed from history
            last_id = live.id
            quiet_since = time.monotonic()
            yield encode(live)
            sent += 1
            if limit is not None and sent >= limit:
                return
    finally:
        subscription.close()
