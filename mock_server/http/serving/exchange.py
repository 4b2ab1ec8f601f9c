"""One request and its answer, as every part of the HTTP layer sees them.

The HTTP server (``serving/server.py``), WSGI at its edges (``serving/wsgi.py``), the
request pipeline and the router all speak these types, from socket to handler and back:
an :class:`Exchange` in; an :class:`Answer` out, a :class:`StreamAnswer` for an event
stream, a :class:`Drop` for no answer at all. Only the Flask path needs a WSGI environ,
built from an :class:`Exchange` where it is called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import orjson

__all__ = ["Answer", "Drop", "Exchange", "Outcome", "Stream", "StreamAnswer",
           "SyncStream", "dropped", "error_answer", "json_answer"]

#: the chunks of an event stream on the server's event loop
Stream = Callable[[], AsyncIterator[bytes]]
#: the chunks of an event stream in the caller's thread, given what tells the client left
SyncStream = Callable[[Callable[[], bool] | None], Iterator[bytes]]


class Outcome(StrEnum):
    """How a request ended, as the journal tells it."""

    ANSWERED = "answered"
    #: a fault rule closed the connection instead of answering
    DROPPED = "dropped"
    #: the client left before its request was run
    ABANDONED = "abandoned"


@dataclass(slots=True, eq=False)
class Exchange:
    """A request as it arrived, and what the pipeline learned about it on the way.

    ``headers`` keep the client's names and order (the journal shows them as sent);
    :meth:`header` looks one up by its lower-case name.
    """

    method: str
    #: the path, percent-decoded, as WSGI's ``PATH_INFO`` (latin-1 text)
    path: str
    #: the raw query string
    query: bytes
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: the peer's address and port; None for an in-process client
    client: tuple[str, int] | None = None
    #: the address the server listens on
    server: tuple[str, int] = ("127.0.0.1", 80)
    http_version: str = "1.1"
    #: the request target as sent (path and query), for the environ's ``RAW_URI``
    target: str = ""
    #: the first value of each header field by its lower-case name, and whether a name
    #: occurs more than once: given by the server, which reads the fields once (else made
    #: on first use from ``headers``)
    index: dict[str, str] | None = field(default=None, repr=False)
    repeated: bool = field(default=False, repr=False)
    #: :attr:`header_bytes` when the server counted them as it read them (-1: not counted)
    fields_bytes: int = field(default=-1, repr=False)
    # -- set by the pipeline ------------------------------------------------------------
    request_id: str = ""
    started: float = 0.0
    #: the mock's clock when the request arrived (its Date, its journal time)
    now: datetime | None = None
    #: True for the control plane (``/_mock``): no faults, rate limit or journal
    control: bool = False
    #: what the handler that answered calls its operation, when known (the API's strict
    #: mode checks the answer against it; the server never looks)
    operation: Any = None
    #: what the application judged of the request's credentials at its head, when it did
    #: (kept so they are checked once; the server never looks)
    verdict: Any = None
    #: the fault rule that applied, if any
    fault: str | None = None
    #: seconds a fault rule asked to wait before answering
    delay: float = 0.0
    #: what a fault rule asked for after the delay: a :class:`Drop`, or an error answer
    then: Answer | None = None
    #: True once a handler ran (the answer may have changed state)
    handled: bool = False
    #: set by the server when the client went away before its answer was ready
    client_gone: bool = False
    #: asks the server outside whether the client went away (the mock's app served as a
    #: WSGI app, e.g. wrapped in middleware)
    outer_gone: Callable[[], bool] | None = None

    def gone(self) -> bool:
        """True once the client went away."""
        return self.client_gone or (self.outer_gone is not None and self.outer_gone())

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (any case), or None."""
        index = self.index
        if index is None:
            index = self._indexed()
        found = index.get(name)
        if found is None and not name.islower():
            return index.get(name.lower())  # (callers mostly ask in lower case already)
        return found

    def wsgi_header(self, name: str) -> str | None:
        """A header as a WSGI app reads it: ``name`` in any case, the values of a repeated
        field joined with commas (but ``Content-Type``'s first only); None when absent."""
        wanted = name.lower()
        index = self.index
        if index is None:
            index = self._indexed()
        if not self.repeated or wanted == "content-type":
            return index.get(wanted)
        values = [v for k, v in self.headers if k.lower() == wanted]
        return ",".join(values) if values else None

    def _indexed(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for key, value in self.headers:
            lower = key.lower()
            if lower in index:
                self.repeated = True
            else:
                index[lower] = value
        self.index = index
        return index

    @property
    def header_bytes(self) -> int:
        """How many bytes the header fields took on the wire (``Name: value\\r\\n`` each)."""
        if self.fields_bytes >= 0:
            return self.fields_bytes
        return sum(len(k) + len(v) + 4 for k, v in self.headers)


def _nothing() -> None:
    return None


@dataclass(slots=True)
class Answer:
    """A response: status, headers and a body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: an injected fault's answer (strict mode lets it through as injected)
    injected: bool = False
    #: said by a handler whose answer depends on nothing but its request's path, query
    #: and bearer token, the application's records and configuration, and the time: tells
    #: whether the answer still holds at an instant of the application's clock (its
    #: records and configuration not replaced). The application may send it again to the
    #: same request while it does; None: never (the server never looks)
    holds: Callable[[datetime], bool] | None = None
    #: True for a :class:`Drop`: the connection is closed, nothing is sent
    drop: ClassVar[bool] = False

    @property
    def outcome(self) -> Outcome:
        """How the request ended: answered."""
        return Outcome.ANSWERED


@dataclass(slots=True)
class Drop(Answer):
    """No answer: the connection is closed (a fault rule's drop), or the client left."""

    why: Outcome = Outcome.DROPPED
    drop: ClassVar[bool] = True

    @property
    def outcome(self) -> Outcome:
        """Dropped, or abandoned."""
        return self.why


def dropped(why: Outcome = Outcome.DROPPED, status: int = 0) -> Drop:
    """A :class:`Drop` (``status`` only for a log that wants one)."""
    return Drop(status, [], why=why)


@dataclass(slots=True)
class StreamAnswer(Answer):
    """An event stream: the head at once, then chunks as they come (chunked encoding).

    The handler that makes it does not know who runs it: the server takes ``stream`` (a
    coroutine on its loop, holding no thread), an in-process client ``chunks`` (read in
    its own thread). ``release`` gives back what the stream holds (its place among the
    open streams): called once, when the stream ended or when it will never run (HEAD,
    client gone).
    """

    stream: Stream | None = None
    chunks: SyncStream | None = None
    release: Callable[[], None] = _nothing
    #: sent last when the server ends the stream because it stops (an event stream's last
    #: event), before the chunked body's end
    last: bytes = b""


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None, *,
                holds: Callable[[datetime], bool] | None = None) -> Answer:
    """A JSON answer; ``body`` may be pre-serialized bytes (``holds``: see
    :attr:`Answer.holds`)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    pairs = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if headers:
        pairs.extend(headers.items())
    return Answer(status, pairs, data, False, holds)


def error_answer(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> Answer:
    """The API's error shape, ``{"error", "message", ...}``."""
    return json_answer({"error": code, "message": message, **extra}, status, headers)
