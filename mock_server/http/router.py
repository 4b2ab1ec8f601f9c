"""The router: the specs' operations answered from the request itself, without Flask.

Flask's request context, URL adapter and response object cost several times the mock's
own work on a request. So the router matches a request to its operation, reads the
operation's inputs from the :class:`~kontext_mock.http.serving.exchange.Exchange` and calls the
same :class:`~kontext_mock.http.routing.Endpoint` (credentials, parameters, body, handler)
the Flask view of that operation calls; errors become answers as Flask's error handlers
make them (``errors.py``). Everything around the handler (request id, ``Date``, limits,
Host and Origin rules, CORS, faults, the rate limit, the journal, strict mode, the
durable write) is the request pipeline's.

It takes a request only when it reads it exactly as Flask would: the operation's method
(no HEAD or OPTIONS, which Flask answers for itself) at its canonical path (no trailing
slash), a query string and form body that decode as UTF-8, and a Flask app with no
request hook or signal receiver of its own (a hook added to ``mock.app`` would be
skipped, so the router then steps aside). Anything else is the Flask path's, which binds
the same endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from urllib.parse import parse_qsl

from flask import Flask, signals
from werkzeug.http import parse_options_header

from kontext_mock.core.errors import ApiError, log
from kontext_mock.http.errors import answer_for
from kontext_mock.http.kept import KeptAnswers, Mark
from kontext_mock.http.routing import MEMO_KEY_MAX, Endpoint, Inputs, StepAside
from kontext_mock.http.serving.exchange import Answer, Exchange
from kontext_mock.http.serving.wsgi import call_wsgi, environ_for
from kontext_mock.http.spec import path_pattern

__all__ = ["Router"]

_FLASK_SIGNALS = (signals.request_started, signals.request_finished,
                  signals.got_request_exception, signals.request_tearing_down,
                  signals.appcontext_pushed, signals.appcontext_popped,
                  signals.appcontext_tearing_down)
(_STARTED, _FINISHED, _EXCEPTION, _TEARING_DOWN, _PUSHED, _POPPED,
 _APP_TEARING_DOWN) = _FLASK_SIGNALS


#: request paths whose route :meth:`Router.route` remembers
_FOUND_KEPT = 1024
#: query strings whose decoded pairs :meth:`Router.answer` remembers
_QUERIES_KEPT = 1024


class Router:
    """The handler of the specs' operations beside the Flask path; ``enabled`` switches it
    off."""

    def __init__(self, app: Flask, endpoints: dict[str, Endpoint], mark: Mark,
                 lock: AbstractContextManager[object]) -> None:
        self.enabled = True
        #: answers of reads kept for the same request while they hold (``mark``: the
        #: engine's account of its state; ``lock``: the store's)
        self.kept = KeptAnswers(mark, lock)
        self._app = app
        self._routes: dict[str, list[tuple[re.Pattern[str], Endpoint]]] = {}
        #: each endpoint's path parameters, in the path's order
        self._names: dict[str, tuple[str, ...]] = {}
        #: (method, path) -> what :meth:`route` found for it (forgotten when it grows large)
        self._found: dict[tuple[str, str], tuple[Endpoint, Mapping[str, str]]] = {}
        #: query strings -> their decoded pairs (forgotten when it grows large)
        self._queries: dict[bytes, tuple[tuple[str, str], ...]] = {}
        for endpoint in endpoints.values():
            op = endpoint.op
            self._routes.setdefault(op.method, []).append((path_pattern(op.path), endpoint))
            self._names[op.operation_id] = tuple(re.findall(r"\{([^}]+)\}", op.path))

    @property
    def active(self) -> bool:
        """True while the router takes requests: enabled, and the Flask app without hooks."""
        app = self._app
        if not self.enabled:
            return False
        if not (app.before_request_funcs or app.after_request_funcs or app.teardown_request_funcs
                or app.teardown_appcontext_funcs or app.url_value_preprocessors) and not (
                _STARTED.receivers or _FINISHED.receivers or _EXCEPTION.receivers
                or _TEARING_DOWN.receivers or _PUSHED.receivers or _POPPED.receivers
                or _APP_TEARING_DOWN.receivers):
            return True  # the usual case, told quickly: nothing registered at all
        return (
            not any(app.before_request_funcs.values())
            and not any(app.after_request_funcs.values())
            and not any(app.teardown_request_funcs.values())
            and not app.teardown_appcontext_funcs
            and not any(app.url_value_preprocessors.values())
            and not any(s.receivers for s in _FLASK_SIGNALS)
        )

    def route(self, exchange: Exchange) -> tuple[Endpoint, Mapping[str, str]] | None:
        """The endpoint for this request and its path's arguments by name (read-only: made
        once per path remembered), or None."""
        key = (exchange.method, exchange.path)
        found = self._found.get(key)
        if found is not None:
            return found
        for pattern, endpoint in self._routes.get(exchange.method, ()):
            match = pattern.fullmatch(exchange.path)
            if match is not None:
                names = self._names[endpoint.op.operation_id]
                arguments = MappingProxyType(dict(zip(names, match.groups(), strict=True)))
                found = (endpoint, arguments)
                if len(exchange.path) <= MEMO_KEY_MAX:
                    if len(self._found) >= _FOUND_KEPT:
                        self._found.clear()
                    self._found[key] = found
                return found
        return None

    def _query(self, raw: bytes) -> tuple[tuple[str, str], ...] | None:
        """The query string's decoded pairs; None when it is not UTF-8 (the Flask path's)."""
        if not raw:
            return ()
        found = self._queries.get(raw)
        if found is None:
            try:
                found = tuple(parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                        errors="strict"))
            except UnicodeDecodeError:
                return None
            if len(raw) <= MEMO_KEY_MAX:
                if len(self._queries) >= _QUERIES_KEPT:
                    self._queries.clear()
                self._queries[raw] = found
        return found

    def answer(self, exchange: Exchange) -> Answer | None:
        """The answer, when the router takes the request; else None (the Flask path's turn)."""
        kept = self.kept.find(exchange)
        if kept is not None and self.active:
            exchange.operation = kept[0].op
            return kept[1]
        found = self._found.get((exchange.method, exchange.path)) or self.route(exchange)
        if found is None or not self.active:
            return None
        endpoint, arguments = found
        query = self._query(exchange.query)
        if query is None:
            return None
        inputs = _inputs(exchange, arguments, query, endpoint.op.body_media_type is not None)
        exchange.operation = endpoint.op
        before = self.kept.before(exchange, endpoint)
        try:
            made = endpoint(inputs)
        except StepAside:
            exchange.operation = None
            return None
        except ApiError as exc:
            return answer_for(exc)
        except Exception:  # as Flask's error handler does (errors.py): logged, a 500
            log.exception("unexpected error on %s %s", exchange.method, exchange.path)
            return answer_for(ApiError(500, "internal_error", "an unexpected error occurred"))
        if isinstance(made, Answer):
            if before is not None and made.holds is not None:
                self.kept.keep(before, endpoint, made)
            return made
        # (a handler that answers with Flask's response, e.g. a dashboard file: the bytes
        # it sends as a WSGI app)
        return call_wsgi(made, environ_for(exchange))


def _inputs(exchange: Exchange, arguments: Mapping[str, str],
            query: tuple[tuple[str, str], ...], reads_body: bool) -> Inputs:
    # (a header as a WSGI app reads it: repeated lines joined with commas, the first
    # Content-Type only; the body's media type only for an operation that reads a body)
    header = exchange.wsgi_header
    content_type = header("content-type") if reads_body else None
    mimetype = parse_options_header(content_type)[0].lower() if content_type else ""
    path, raw_query = exchange.path, exchange.query
    key = (path, raw_query) if len(path) + len(raw_query) <= MEMO_KEY_MAX else None
    return Inputs(arguments, query, header, mimetype, exchange.body, None,
                  exchange.client[0] if exchange.client else "", exchange.verdict, key)
