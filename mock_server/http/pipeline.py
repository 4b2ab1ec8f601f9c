"""The request pipeline: every step a request to the mock passes, in one list each side
of the handler, whichever handler answers it.

    before:   identify -> header limit -> Host -> Origin / CORS preflight -> rate limit -> fault
    handler:  the router (``router.py``), or the Flask app (its hooks, its spellings)
    after:    CORS headers -> x-request-id and Date -> strict check -> durable -> journal

A step before the handler may answer instead of it (a refusal); the steps after it run
on every answer, refusals included. No step is written twice: the server's driver
(``served.py``) and the in-process WSGI front (``inprocess.py``) drive the same
:class:`Pipeline`, and they differ only in how they wait.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

import orjson
from flask import Flask

from kontext_mock.config import check_origin
from kontext_mock.core.errors import ApiError, log
from kontext_mock.core.faults import fault_error
from kontext_mock.core.journal import Recorded
from kontext_mock.http.admin import is_control, judge
from kontext_mock.http.errors import answer_for
from kontext_mock.http.httpdate import HttpDate
from kontext_mock.http.limits import CONTROL_MAX_BODY_BYTES
from kontext_mock.http.origins import (
    control_origin_refusal,
    cors_headers,
    host_refusal,
    preflight_headers,
)
from kontext_mock.http.serving.exchange import (
    Answer,
    Exchange,
    Outcome,
    StreamAnswer,
    dropped,
    error_answer,
)
from kontext_mock.http.serving.requestids import new_request_id, request_id_for
from kontext_mock.http.serving.wsgi import ThreadedStreams, call_wsgi, environ_for
from kontext_mock.http.spec import Operation, ResponseMismatch, Spec, path_pattern

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine
    from kontext_mock.http.router import Router

__all__ = ["CHANGING_METHODS", "TICK_EVERY", "Durable", "Pipeline"]

#: methods whose answer may say "changed": with a state file, acknowledged only once on disk
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TICK_EVERY = timedelta(seconds=1)
#: the journal's word for an answered request (an enum's value is read through a descriptor)
_ANSWERED = Outcome.ANSWERED.value
#: distinct (Host, control) verdicts of the Host rule remembered (all forgotten past that)
_HOSTS_KEPT = 64
Step = Callable[[Exchange], Answer | None]
AfterStep = Callable[[Exchange, Answer], Answer]


class Durable(Protocol):
    """What the pipeline needs of a state file (``statefile.StateFile``)."""

    def commit(self) -> None:
        """Return once every change made so far is on disk; raise an ``ApiError`` (503
        ``state_not_saved``) when it cannot be."""


class Pipeline:
    """The steps around a mock's handlers (see the module's docstring)."""

    def __init__(self, mock: MockEngine, app: Flask, spec: Spec, control_spec: Spec,
                 router: Router) -> None:
        self.mock = mock
        #: the engine's state: its ``config`` is the configuration in force (read as the
        #: engine's ``config`` property reads it, a call less on every step that asks)
        self._state = mock.state
        #: the Flask app's own WSGI callable: routing, validation, handlers, error answers
        self.flask = app.wsgi_app
        #: the public API's handler without Flask (``router.py``)
        self.router = router
        self.spec = spec
        self.control_spec = control_spec
        #: set by the server that serves the pipeline: where a route's generator is read
        self.threaded: ThreadedStreams | None = None
        #: True once the specs' validators are compiled (:meth:`warm`): until then the
        #: server's loop answers nothing itself, as a refusal would compile one there
        self.warmed = False
        #: the state file, when the served mock keeps one
        self.durable: Durable | None = None
        self._date = HttpDate()
        self._endpoints = [(op.method, path_pattern(op.path), op.operation_id)
                           for s in (spec, control_spec) for op in s]
        #: paths whose refusals are JSON-RPC errors (``x-error-style: jsonrpc``)
        self._jsonrpc_paths = spec.jsonrpc_paths
        self._cors: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        #: the Host rule's verdicts by (Host, control plane or not), for the configuration
        #: they were judged under (a client sends the same Host again and again)
        self._hosts: tuple[object, dict[tuple[str | None, bool], str | None]] = (None, {})
        #: the steps, in order (tests read them; a new step is added here, once)
        self.before: tuple[Step, ...] = (
            self._identify, self._header_limit, self._host, self._origin, self._rate_limit,
            self._fault,
        )
        self.after: tuple[AfterStep, ...] = (
            self._cors_headers, self._stamp, self._strict, self._durable, self._journal,
        )

    # -- the drivers' calls ------------------------------------------------------------------

    def body_limit(self, head: Exchange) -> int:
        """The largest body this request may carry, by its head (413 above it): the
        control plane's large limit only for a request it would accept (the right Host,
        the admin token where one is needed); every other request, the API's. A control
        request's credentials judged here are judged once: the route's guard reads the
        verdict kept on the exchange (a request without a body, whose limit the server
        never asks, is judged by the guard alone)."""
        config = self.mock.config
        if is_control(head.path):
            # (every Authorization line, joined as the handler's inputs read them: two lines
            # are no token)
            given = [v for k, v in head.headers if k.lower() == "authorization"]
            verdict = head.verdict = judge(config, ",".join(given) if given else None,
                                           head.client[0] if head.client else None)
            if verdict.refusal is None and self._host_reason(head, control=True) is None:
                return CONTROL_MAX_BODY_BYTES
        return config.max_body_bytes

    def warm(self) -> None:
        """Compile the specs' validators now (they are compiled on first use otherwise)."""
        self.spec.warm()
        self.control_spec.warm()
        self.warmed = True

    def refusal(self, status: int, code: str, message: str,
                headers: dict[str, str] | None = None, head: Exchange | None = None
                ) -> Answer:
        """An answer for a request refused before it was read whole (by the server, or the
        in-process front for a body over the limit), stamped: the API's error shape, or
        JSON-RPC's for a JSON-RPC endpoint's request (``head``, when its head was read)."""
        if head is not None and head.path in self._jsonrpc_paths:
            answer = answer_for(ApiError(status, code, message, headers=headers), jsonrpc=True)
        else:
            answer = error_answer(status, code, message, headers)
        return self._stamp(Exchange("GET", "", b"", []), answer)

    def admit(self, exchange: Exchange) -> Answer | None:
        """The steps before the handler; a refusal (finished), or None to go on. Never waits."""
        for step in self.before:
            answer = step(exchange)
            if answer is not None:
                return self.finish(exchange, answer)
        return None

    def quick(self, exchange: Exchange) -> Answer | None:
        """After :meth:`admit`: the router's answer now, when nothing has to wait for it (no
        fault delay, no lifecycle step due, no durable write, the store free); else None."""
        if (exchange.delay or exchange.then is not None or not self.warmed
                or (self.mock.lifecycles.scripts and self._tick_due())):
            return None
        if exchange.control or (self.durable is not None and exchange.method in CHANGING_METHODS):
            return None  # (the control plane's work may be long: a worker's)
        lock = self.mock.store.lock
        if not lock.acquire(blocking=False):
            return None
        try:
            answer = self.router.answer(exchange)
        finally:
            lock.release()
        if answer is None:
            return None
        exchange.handled = True
        return self.finish(exchange, answer)

    def after_delay(self, exchange: Exchange) -> Answer | None:
        """What a fault rule asked for once its latency passed: a drop or an error answer."""
        then = exchange.then
        if then is None:
            return None
        return self.finish(exchange, then)

    def respond(self, exchange: Exchange) -> Answer:
        """The handler and the steps after it; may wait (a worker thread, or in-process)."""
        if exchange.gone():
            return self.finish(exchange, dropped(Outcome.ABANDONED))
        if self._tick_due():
            self.mock.tick()
        answer = self.router.answer(exchange)
        if answer is None:
            answer = self._flask_answer(exchange)
        exchange.handled = True
        return self.finish(exchange, answer)

    def finish(self, exchange: Exchange, answer: Answer) -> Answer:
        """The steps after the handler, on every answer."""
        for step in self.after:
            answer = step(exchange, answer)
        return answer

    def abandoned(self, exchange: Exchange) -> None:
        """A request whose client left before it was run: journaled as abandoned."""
        if not exchange.request_id:
            self._identify(exchange)
        self._journal(exchange, dropped(Outcome.ABANDONED))

    # -- the handler -------------------------------------------------------------------------

    def _flask_answer(self, exchange: Exchange) -> Answer:
        # (a handler's event stream comes back whole, a StreamAnswer, which the driver
        # runs as it runs the router's: never read in a worker thread)
        environ = environ_for(exchange)
        # (read by a stream whose body is read as a plain WSGI iterable: its client left)
        environ["kontext.client_gone"] = exchange.gone
        return call_wsgi(self.flask, environ, functools.partial(self._stream_head, exchange.method))

    def _stream_head(self, method: str, chunks: Iterator[bytes], close: Callable[[], None],
                     status: int, headers: list[tuple[str, str]]) -> Answer:
        # An event stream from the Flask app that is no handler's StreamAnswer: HEAD's (Flask
        # leaves the body out), whose head is sent and which never runs; or a route added to
        # the app that streams from a generator: chunks only a thread can read. Served, they
        # are read in the server's workers, a few at once (a 503 past them, journaled as
        # such); in-process, in the caller's thread.
        if method == "HEAD":
            close()
            return StreamAnswer(status, headers)
        if self.threaded is not None:
            return self.threaded(chunks, close, status, headers)
        return StreamAnswer(status, headers, chunks=lambda gone: chunks, release=close)

    def _tick_due(self) -> bool:
        """True when lifecycle steps of a running clock may be due (played at most once a
        second, before the handler)."""
        mock = self.mock
        if not mock.lifecycles.scripts or mock.clock.frozen:
            return False
        horizon = mock.lifecycles.horizon
        return horizon is None or mock.clock.now() - horizon >= TICK_EVERY

    # -- the steps before the handler --------------------------------------------------------

    def _identify(self, exchange: Exchange) -> None:
        incoming = exchange.header("x-request-id")
        exchange.request_id = request_id_for(incoming) if incoming else new_request_id()
        exchange.started = time.perf_counter()
        exchange.now = self.mock.clock.now()
        exchange.control = is_control(exchange.path)

    def _header_limit(self, exchange: Exchange) -> Answer | None:
        limit = self._state.config.max_header_bytes
        size = exchange.fields_bytes  # (counted by the server as it read them, or -1)
        if (size if size >= 0 else exchange.header_bytes) > limit:
            return error_answer(431, "request_header_fields_too_large",
                                f"the request's header fields are larger than {limit} bytes")
        return None

    def _host(self, exchange: Exchange) -> Answer | None:
        judged_under, verdicts = self._hosts
        key = (exchange.header("host"), exchange.control)
        if judged_under is self._state.config and key in verdicts:
            reason = verdicts[key]  # (the usual request: its Host judged before)
        else:
            reason = self._host_reason(exchange, control=exchange.control)
        return None if reason is None else error_answer(421, "host_refused", reason)

    def _host_reason(self, exchange: Exchange, *, control: bool) -> str | None:
        config = self._state.config
        host = exchange.header("host")
        judged_under, verdicts = self._hosts
        if judged_under is not config:  # (a configuration is never changed, only replaced)
            verdicts = {}
            self._hosts = (config, verdicts)
        key = (host, control)
        try:
            return verdicts[key]
        except KeyError:
            pass
        reason = host_refusal(host, control=control, bound_to=config.host,
                              open_control=config.admin_token is None,
                              allowed=config.allowed_hosts)
        if len(verdicts) >= _HOSTS_KEPT:
            verdicts.clear()
        verdicts[key] = reason
        return reason

    def _origin(self, exchange: Exchange) -> Answer | None:
        origin = exchange.header("origin")
        if origin is None:
            return None
        if exchange.control:
            reason = control_origin_refusal(origin, exchange.header("host") or "")
            return None if reason is None else error_answer(403, "cross_origin_refused", reason)
        if exchange.method == "OPTIONS" and exchange.header("access-control-request-method"):
            headers = preflight_headers(origin, exchange.header("access-control-request-headers"),
                                        self._cors_origins())
            if headers is not None:
                return Answer(204, headers)
        return None

    def _rate_limit(self, exchange: Exchange) -> Answer | None:
        limiter = self.mock.limiter
        if exchange.control or limiter.per_minute is None:
            return None
        auth = exchange.header("authorization")
        credential = auth.strip() if auth else f"address:{(exchange.client or ('',))[0]}"
        wait = limiter.hit(credential, exchange.now or self.mock.now())
        if wait is None:
            return None
        return answer_for(ApiError(
            429, "rate_limited",
            f"more than {limiter.per_minute} requests a minute with this credential; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        ), jsonrpc=exchange.path in self._jsonrpc_paths)

    def _fault(self, exchange: Exchange) -> Answer | None:
        faults = self.mock.faults
        if exchange.control or not faults.rules:
            return None
        decision = faults.decide(exchange.method, exchange.path)
        if decision is None:
            return None
        exchange.fault = decision.fault_id
        exchange.delay = decision.delay
        if decision.drop:
            exchange.then = dropped()
        elif decision.status is not None:
            answer = answer_for(fault_error(decision.status, decision.fault_id,
                                            self._endpoint(exchange)))
            answer.injected = True
            exchange.then = answer
        return None

    # -- the steps after the handler ---------------------------------------------------------

    def _strict(self, exchange: Exchange, answer: Answer) -> Answer:
        op = exchange.operation
        if (not self._state.config.strict or not isinstance(op, Operation) or answer.injected
                or answer.drop or isinstance(answer, StreamAnswer)):
            return answer
        content_type = next((v for k, v in answer.headers if k.lower() == "content-type"), "")
        if not content_type.startswith("application/json"):
            return answer
        try:
            self.spec.check_response(op, answer.status, _Names(answer.headers),
                                     orjson.loads(answer.body) if answer.body else None)
        except (ResponseMismatch, orjson.JSONDecodeError) as exc:
            log.error("response does not match the spec: %s", exc)
            return self._stamp(exchange, error_answer(500, "internal_error", f"strict mode: {exc}"))
        return answer

    def _cors_headers(self, exchange: Exchange, answer: Answer) -> Answer:
        origin = exchange.header("origin")
        if (origin is None or exchange.control
                or any(k == "Access-Control-Allow-Origin" for k, _ in answer.headers)):
            return answer  # (no Origin: no CORS headers, told without looking further)
        extra = cors_headers(origin, self._cors_origins())
        if extra:
            answer.headers = [*answer.headers, *extra]
        return answer

    def _stamp(self, exchange: Exchange, answer: Answer) -> Answer:
        # The Date header tells the mock's time, so a client (or the contract kit) judges
        # expiry against the same clock the mock does.
        # (no handler sets these two: they are this step's alone)
        answer.headers.append(("x-request-id", exchange.request_id or request_id_for(None)))
        answer.headers.append(("Date", self._date(exchange.now or self.mock.now())))
        return answer

    def _journal(self, exchange: Exchange, answer: Answer) -> Answer:
        journal = self.mock.journal
        if exchange.control or not journal.enabled or not exchange.started:
            return answer
        if answer.drop:
            status, outcome = None, answer.outcome.value
        else:
            status, outcome = answer.status, _ANSWERED
        # (its fields in order: method, path, query, headers, ...; ``_make`` skips the
        # keyword-reading constructor)
        journal.record(Recorded._make((
            exchange.method,
            exchange.path,
            exchange.query,
            tuple(exchange.headers),
            exchange.body or None,
            exchange.header("content-type") or "",
            status,
            (time.perf_counter() - exchange.started) * 1000,
            exchange.request_id,
            exchange.now or self.mock.now(),
            exchange.fault,
            outcome,
        )))
        return answer

    def _durable(self, exchange: Exchange, answer: Answer) -> Answer:
        # A change is acknowledged only once it is on disk; when the disk refuses it, the
        # client is told so (503 state_not_saved) instead, and the journal records that.
        # A request refused for itself changed nothing, and gets its own answer at once.
        durable = self.durable
        if (durable is None or not exchange.handled or answer.status >= 400
                or exchange.method not in CHANGING_METHODS):
            return answer
        try:
            durable.commit()
        except ApiError as exc:
            refused = self._cors_headers(exchange, answer_for(exc))
            return self._stamp(exchange, refused)
        return answer

    # -- helpers -----------------------------------------------------------------------------

    def _cors_origins(self) -> tuple[str, ...]:
        configured = self._state.config.cors_origins
        cached_for, checked = self._cors
        if cached_for != configured:
            checked = tuple(check_origin(o) for o in configured)
            self._cors = (configured, checked)
        return checked

    def _endpoint(self, exchange: Exchange) -> str | None:
        for method, pattern, operation_id in self._endpoints:
            if method == exchange.method and pattern.fullmatch(exchange.path):
                return operation_id
        return None


class _Names:
    """Header pairs as the spec's response check reads them (``keys()``)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def keys(self) -> list[str]:
        return [k for k, _ in self._pairs]
