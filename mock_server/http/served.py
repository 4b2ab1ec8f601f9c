"""The mock served by its HTTP server: the request pipeline driven on the server's loop.

The server runs the steps before the handler on its event loop (they never wait), sleeps
a fault's latency there without a thread, answers right there when the router can and
the store is free, and hands anything that may wait (the Flask path, a busy store, the
control plane, a durable write) to a worker thread; an event stream is a coroutine on
the loop. Only a generator streamed by a route added to the Flask app is read in workers,
a few at a time (:class:`~kontext_mock.http.serving.wsgi.ThreadedStreams`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from kontext_mock.core.errors import log
from kontext_mock.http.pipeline import TICK_EVERY, Pipeline
from kontext_mock.http.serving.exchange import Answer, Exchange, error_answer
from kontext_mock.http.serving.server import answer_in_worker
from kontext_mock.http.serving.wsgi import ThreadedStreams
from kontext_mock.http.streams import STREAM_RETRY_AFTER

__all__ = ["ServedMock"]


class ServedMock:
    """The mock as an :class:`~kontext_mock.http.serving.server.HttpApplication` of the HTTP server."""

    def __init__(self, pipeline: Pipeline, max_threaded_streams: int = 4) -> None:
        self.pipeline = pipeline
        #: answers streamed from a generator of a route added to the Flask app: only a
        #: thread can read them, so they are read in workers, at most this many at once
        #: (the pipeline's refusal past them goes through its steps: stamped, journaled)
        self.threaded = ThreadedStreams(max_threaded_streams, error_answer, STREAM_RETRY_AFTER)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._ticker: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop, workers: ThreadPoolExecutor) -> None:
        """Remember the loop and the workers; play lifecycles for event streams."""
        self._loop, self._workers = loop, workers
        self.threaded.start(loop, workers)
        self.pipeline.threaded = self.threaded
        # The specs' validators are compiled on first use, which the first refused request
        # would otherwise pay on the loop (jsonschema's import included): compiled in a
        # worker now instead, while the mock already answers.
        workers.submit(self._warm)
        self._ticker = loop.create_task(self._tick_for_streams())

    def _warm(self) -> None:
        try:
            self.pipeline.warm()
        except Exception:  # (a first use compiles what is left, and reports its error)
            log.exception("compiling the specs' validators failed")

    def stop(self) -> None:
        """Stop playing lifecycles for streams; a route's generator is no longer the
        server's to read."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self.pipeline.threaded is self.threaded:
            self.pipeline.threaded = None

    def body_limit(self, head: Exchange) -> int:
        """The pipeline's."""
        return self.pipeline.body_limit(head)

    def refusal(self, status: int, code: str, message: str,
                headers: dict[str, str] | None = None, head: Exchange | None = None
                ) -> Answer:
        """The pipeline's."""
        return self.pipeline.refusal(status, code, message, headers, head)

    def quick(self, exchange: Exchange) -> Answer | None:
        """The steps before the handler, then the lane if it can answer now."""
        answer = self.pipeline.admit(exchange)
        return answer if answer is not None else self.pipeline.quick(exchange)

    async def respond(self, exchange: Exchange) -> Answer:
        """A fault's latency (on the loop), then the handler in a worker thread."""
        if exchange.delay:
            # counted from the request's arrival, and never short (a loop's timer may fire
            # a little early)
            until = exchange.started + exchange.delay
            while (left := until - time.perf_counter()) > 0:
                await asyncio.sleep(left)
        answer = self.pipeline.after_delay(exchange)
        if answer is not None:
            return answer
        assert self._loop is not None and self._workers is not None
        # (an event stream, from the router or the Flask path alike, comes back with its
        # coroutine: it runs on the loop, and no worker waits in it)
        return await answer_in_worker(self._loop, self._workers, self.pipeline.respond,
                                      exchange)

    def gone(self, exchange: Exchange) -> None:
        """A request read but never run: journaled as abandoned."""
        self.pipeline.abandoned(exchange)

    async def _tick_for_streams(self) -> None:
        # Lifecycles of a running clock play as requests come; while streams are open they
        # also play once a second without one, so the streams see them in time.
        mock = self.pipeline.mock
        assert self._loop is not None
        while True:
            await asyncio.sleep(TICK_EVERY.total_seconds())
            if mock.events.streams_open and mock.lifecycles.scripts and not mock.clock.frozen:
                with contextlib.suppress(Exception):
                    await self._loop.run_in_executor(self._workers, mock.tick)

