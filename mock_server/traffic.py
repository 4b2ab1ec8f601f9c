"""What happens to public API traffic around the routes: faults, rate limits, the journal.

Two request hooks, for every request that is not to the control plane. Before: play
due lifecycle steps of a running clock (at most once a second), count the request
against the rate limit, and apply the first matching fault rule. After: record the
request in the journal. With no fault rules, no rate limit and no scripts, the cost
is three truth tests and one deque append.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from .errors import ApiError
from .faults import ConnectionDroppedError, fault_error
from .journal import Recorded

if TYPE_CHECKING:
    from .mock import KontextMock

__all__ = ["CONTROL_PREFIX", "DroppedResponse", "install"]

CONTROL_PREFIX = "/_mock"
_TICK_EVERY = timedelta(seconds=1)


class DroppedResponse(Response):
    """A response that closes the client's connection instead of answering."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sock = _client_socket(environ)
        if sock is None:
            # No socket (an in-process client): the caller sees the dropped connection.
            raise ConnectionDroppedError(self.get_data(as_text=True))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        # The server may still try to write; nothing reaches the client any more.
        start_response("500 Connection Dropped", [("Content-Length", "0")])
        return []


def _client_socket(environ: dict[str, Any]) -> socket.socket | None:
    for key in ("werkzeug.socket", "gunicorn.socket"):
        if isinstance(environ.get(key), socket.socket):
            return environ[key]  # type: ignore[no-any-return]
    # waitress keeps the connection's channel behind this callable.
    channel = getattr(environ.get("waitress.client_disconnected"), "__self__", None)
    sock = getattr(channel, "socket", None)
    return sock if isinstance(sock, socket.socket) else None


def _credential() -> str:
    header = request.headers.get("Authorization")
    return header.strip() if header else f"address:{request.remote_addr}"


def install(app: Flask, mock: KontextMock) -> None:
    """Add the hooks to ``app`` (after the request-id hook, so records carry the id)."""
    journal, faults, limiter, lifecycles, clock = (
        mock.journal, mock.faults, mock.limiter, mock.lifecycles, mock.clock,
    )

    @app.before_request
    def _before() -> None:
        path = request.path
        if path.startswith(CONTROL_PREFIX) and (
            len(path) == len(CONTROL_PREFIX) or path[len(CONTROL_PREFIX)] == "/"
        ):
            return
        g.journal_start = time.perf_counter()
        if lifecycles.scripts and not clock.frozen:
            horizon = lifecycles.horizon
            if horizon is None or clock.now() - horizon >= _TICK_EVERY:
                mock.tick()
        if limiter.per_minute is not None:
            wait = limiter.hit(_credential(), clock.now())
            if wait is not None:
                raise ApiError(
                    429, "rate_limited",
                    f"more than {limiter.per_minute} requests a minute with this credential;"
                    f" retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
        if faults.rules:
            decision = faults.decide(request.method, path)
            if decision is not None:
                g.journal_fault = decision.fault_id
                if decision.delay > 0:
                    time.sleep(decision.delay)
                if decision.drop:
                    raise ConnectionDroppedError(f"dropped by the mock's fault rule {decision.fault_id}")
                if decision.status is not None:
                    raise fault_error(decision.status, decision.fault_id, request.endpoint)

    @app.errorhandler(ConnectionDroppedError)
    def _dropped(exc: ConnectionDroppedError) -> Response:
        return DroppedResponse(str(exc), status=500, mimetype="text/plain")

    @app.after_request
    def _record(response: Response) -> Response:
        start = g.get("journal_start")
        if start is None or not journal.enabled:
            return response
        body: Any = None
        try:
            if request.mimetype == "application/x-www-form-urlencoded":
                body = request.form.to_dict()
            elif request.content_length:
                body = request.get_data(cache=True)
        except Exception:
            body = None
        journal.record(Recorded(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers=tuple(request.headers.items()),
            body=body,
            content_type=request.mimetype,
            status=None if isinstance(response, DroppedResponse) else response.status_code,
            duration_ms=(time.perf_counter() - start) * 1000,
            request_id=g.get("request_id"),
            time=clock.now(),
            fault=g.get("journal_fault"),
        ))
        return response
