"""The mock as a WSGI app (``mock.app``'s callable): the request pipeline in the caller's
thread, for in-process clients (Flask's test client, the pytest plugin's transports)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from kontext_mock.core.faults import ConnectionDroppedError
from kontext_mock.http.pipeline import Pipeline
from kontext_mock.http.serving.exchange import Answer, StreamAnswer
from kontext_mock.http.serving.wsgi import read_exchange

__all__ = ["InProcessFront"]


class InProcessFront:
    """The mock as a WSGI app (``mock.app``'s callable): the same pipeline, in the caller's
    thread, for in-process clients (Flask's test client, the pytest plugin's transports)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Answer one WSGI request."""
        pipeline = self.pipeline
        exchange, too_large = read_exchange(environ, pipeline.body_limit)
        method = exchange.method
        answer: Answer | None
        if too_large is not None:
            answer = pipeline.refusal(413, "payload_too_large",
                                      f"the request body is over {too_large} bytes, the most"
                                      " this route takes", head=exchange)
        else:
            answer = pipeline.admit(exchange)
            if answer is None:
                until = exchange.started + exchange.delay
                while (left := until - time.perf_counter()) > 0:
                    time.sleep(left)
                answer = pipeline.after_delay(exchange)
            if answer is None:
                answer = pipeline.respond(exchange)
        if answer.drop:
            # No socket to close: the caller sees the dropped connection as this error.
            raise ConnectionDroppedError(f"dropped by the mock's fault rule {exchange.fault}")
        start_response(_status_line(answer.status), answer.headers)
        if isinstance(answer, StreamAnswer):
            if method == "HEAD" or answer.chunks is None:
                answer.release()  # a stream's head only: it does not run
                return []
            return _Chunks(answer.chunks(exchange.gone), answer.release)
        if method == "HEAD":
            return []
        return [answer.body]


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class _Chunks:
    """A stream's chunks for an in-process client: a WSGI iterable whose ``close`` (called
    by whoever reads it, read to the end or not) closes the stream."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._close: Callable[[], None] | None = close

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        """End the stream (once)."""
        close, self._close = self._close, None
        if close is not None:
            try:
                close_chunks = getattr(self._chunks, "close", None)
                if close_chunks is not None:
                    close_chunks()
            finally:
                close()
