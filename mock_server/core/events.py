"""Session lifecycle events, published to subscribers and kept in a bounded history.

Every change to a session (created, heartbeat, idle, expired, disconnected) becomes an
:class:`Event`. The control plane streams them as server-sent events; Python callers
subscribe or read the history.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kontext_mock.core.durations import format_instant

__all__ = ["MAX_QUEUED", "Event", "EventBus", "StreamsFullError", "Subscription"]

#: events a subscriber may leave unread; past that its subscription closes (an event
#: stream's client then resumes from the history with ``Last-Event-ID``)
MAX_QUEUED = 10_000


class StreamsFullError(RuntimeError):
    """Every event stream the mock allows is open."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"{cap} event streams are open, the most the mock serves at once")
        self.cap = cap


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event: ``type`` like ``session.disconnected``, at ``time`` on the mock's clock."""

    id: int
    type: str
    time: datetime
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        return {"id": self.id, "type": self.type, "time": format_instant(self.time), "data": self.data}


class Subscription:
    """A subscriber's queue of events: ``get`` with a timeout (threads), or ``get_nowait``
    and a ``notify`` callback (an event loop)."""

    def __init__(self, bus: EventBus, types: frozenset[str] | None, stream: bool = False,
                 notify: Callable[[], None] | None = None) -> None:
        self._bus = bus
        self._types = types
        #: True for an event stream's subscription (counted against the streams' cap)
        self.stream = stream
        self.queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        #: True once closed (by :meth:`close`, the bus's :meth:`EventBus.close_all`, or when
        #: its reader left more than :data:`MAX_QUEUED` events unread)
        self.closed = False
        #: called (from the publishing thread) when an event arrives or the subscription
        #: closes, while :attr:`waiting` is set; it is cleared before the call
        self.notify = notify
        self.waiting = False

    def deliver(self, event: Event) -> None:
        """Queue an event for this subscriber (the bus calls it)."""
        if self.queue.qsize() >= MAX_QUEUED:
            self._bus.unsubscribe(self)
            self._closed()
            return
        self.queue.put(event)
        self.wake()

    def wake(self) -> None:
        """Tell a waiting reader that something happened."""
        if self.waiting and self.notify is not None:
            self.waiting = False
            self.notify()

    def _closed(self) -> None:
        self.closed = True
        self.queue.put(None)  # wakes a reader blocked in get(): it then sees ``closed``
        self.wake()

    def get_nowait(self) -> Event | None:
        """The next event, or None when none is queued."""
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            return None

    def wants(self, event: Event) -> bool:
        """True when this subscriber asked for events of this type."""
        return self._types is None or event.type in self._types

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds (or once closed)."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)
        self._closed()


class EventBus:
    """Publishes events to every subscriber; keeps the last ``history`` events."""

    def __init__(self, history: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        #: the id of the last event published (0: none yet)
        self.last_id = 0
        self._subscribers: list[Subscription] = []
        self.history: deque[Event] = deque(maxlen=history)
        #: open subscriptions of event streams (see :attr:`Subscription.stream`)
        self.streams_open = 0
        self.listeners: list[Callable[[Event], None]] = []

    def publish(self, type_: str, time: datetime, data: dict[str, Any]) -> Event:
        """Record an event and hand it to every subscriber that wants it."""
        return self.publish_all(type_, time, [data])[0]

    def publish_all(self, type_: str, time: datetime, datas: list[dict[str, Any]]
                    ) -> list[Event]:
        """Record events of one type and time, in order, and hand each to every subscriber
        that wants it (what one act, e.g. a revoke-all, did to many sessions)."""
        with self._lock:
            events = [Event(next(self._ids), type_, time, data) for data in datas]
            if events:
                self.last_id = events[-1].id
            self.history.extend(events)
            subscribers = list(self._subscribers)
        for event in events:
            for sub in subscribers:
                if sub.wants(event):
                    sub.deliver(event)
            for listener in self.listeners:
                listener(event)
        return events

    def subscribe(self, types: frozenset[str] | None = None, *, stream: bool = False,
                  cap: int | None = None, notify: Callable[[], None] | None = None
                  ) -> Subscription:
        """A new subscription to events (of the given types, or all); ``stream`` for an
        event stream's, refused with :class:`StreamsFullError` when ``cap`` streams are open."""
        sub = Subscription(self, types, stream, notify)
        with self._lock:
            if stream and cap is not None and self.streams_open >= cap:
                raise StreamsFullError(cap)
            self._subscribers.append(sub)
            self.streams_open += stream
        return sub

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def close_all(self) -> int:
        """Close every subscription (event streams end within a second); how many."""
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
            self.streams_open = 0
        for sub in subscribers:
            sub._closed()
        return len(subscribers)

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription."""
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
                self.streams_open -= sub.stream

    @contextmanager
    def subscribed(self, types: frozenset[str] | None = None) -> Iterator[Subscription]:
        """A subscription for the length of a ``with`` block."""
        sub = self.subscribe(types)
        try:
            yield sub
        finally:
            sub.close()

    def since(self, event_id: int = 0, types: frozenset[str] | None = None) -> list[Event]:
        """Recorded events after ``event_id``, optionally of some types only."""
        with self._lock:
            return [
                e for e in self.history
                if e.id > event_id and (types is None or e.type in types)
            ]

    def clear(self) -> None:
        """Forget the history (subscribers stay)."""
        with self._lock:
            self.history.clear()
