"""The MCP session's server-to-client stream (``GET /mcp``): one a session, at most
:data:`MAX_STREAMS` in all, open until the session ends.

On the mock's server the stream is a coroutine on its event loop that holds no thread;
in-process, a generator in the client's thread. Either waits for the session to end,
sending keep-alive comments meanwhile, and carries no server-initiated messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from kontext_mock.core.errors import ApiError
from kontext_mock.core.gatewaystate import GatewayState
from kontext_mock.core.jsonrpc import INVALID_REQUEST, jsonrpc_error
from kontext_mock.http.serving.exchange import Answer, StreamAnswer, json_answer

__all__ = ["KEEPALIVE", "MAX_STREAMS", "open_stream", "session_stream"]

#: seconds between keep-alive comments on a quiet session stream
KEEPALIVE = 15.0
#: session streams open at once (one a session), below the server's connection cap so
#: that streams never take the last connections from other clients
MAX_STREAMS = 600
_OPENING = b": session stream\n\n"
_KEEPALIVE = b": keep-alive\n\n"


def open_stream(gateway: GatewayState, session_id: str) -> Answer:
    """The stream of a session the gateway serves, unless one is open already (409, as
    the MCP SDKs' own servers answer) or every place is taken (503 with Retry-After)."""
    if gateway.watching(session_id):
        # one stream a session: a client cannot pile them up
        return json_answer(jsonrpc_error(INVALID_REQUEST, "Conflict: this session's stream"
                                         " is already open"), 409)
    if gateway.watching() >= MAX_STREAMS:
        raise ApiError(503, "too_many_streams", f"{MAX_STREAMS} MCP session streams are"
                       " open; try again later", headers={"Retry-After": "5"})
    return session_stream(gateway, session_id)


def session_stream(gateway: GatewayState, session_id: str) -> StreamAnswer:
    """``GET /mcp``'s answer: the stream of ``session_id``, open until the session ends (on
    the mock's server a coroutine holding no thread; in-process, the client's thread).

    The session's end is watched from the moment the answer is made, not from when its
    stream first runs: a session ended in between still ends its stream."""
    end = _SessionEnd()
    return StreamAnswer(
        200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
              ("X-Accel-Buffering", "no"), ("Mcp-Session-Id", session_id)],
        stream=end.async_chunks, chunks=end.chunks, release=gateway.watch(session_id, end.set),
    )


class _SessionEnd:
    """A session's end, as its stream waits for it on a loop or in a thread."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self._wakers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def set(self) -> None:
        """The session ended (called from any thread)."""
        with self._lock:
            self.ended.set()
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    async def async_chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits any more
                loop.call_soon_threadsafe(ended.set)

        with self._lock:
            self._wakers.append(wake)
            if self.ended.is_set():
                ended.set()
        yield _OPENING
        while not ended.is_set():
            try:
                async with asyncio.timeout(KEEPALIVE):
                    await ended.wait()
            except TimeoutError:
                yield _KEEPALIVE

    def chunks(self, gone: Callable[[], bool] | None) -> Iterator[bytes]:
        yield _OPENING
        quiet = 0.0
        while not self.ended.wait(1.0):
            if gone is not None and gone():
                return
            quiet += 1.0
            if quiet >= KEEPALIVE:
                quiet = 0.0
                yield _KEEPALIVE
