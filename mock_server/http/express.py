"""The express lane: the API's hottest reads answered without Flask's per-request machinery.

Flask's request context, URL adapter and response object cost several times the mock's
own work on a read. So for a read it can answer exactly as the Flask path would, the
lane is the handler: it calls the same body functions as the Flask handlers
(:func:`~kontext_mock.http.public.read_bodies`) and answers in the same bytes and headers.
Everything around the handler (request id, ``Date``, limits, Host and Origin rules, CORS,
faults, the rate limit, the journal, strict mode) is the request pipeline's, which runs
the same steps whichever handler answers (``pipeline.py``).

It takes a request only if all of these hold:

* a GET of an operation whose body ``read_bodies`` computes, at the canonical path, with
  path parameters that pass their spec's quick checks and a query string of known
  parameters in plain characters, each given once and accepted;
* no request body, a bearer token the mock knows, with scopes the operation accepts;
* the Flask app has no request hook or signal receiver of its own (a hook added to
  ``mock.app`` would be skipped by the lane, so the lane then steps aside).

Anything else, and any exception on the way (so every error answer), goes to the Flask
path, which answers it in its one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, signals

from kontext_mock.core.credentials import ScopeCheck, parse_bearer
from kontext_mock.http.exchange import Answer, Exchange
from kontext_mock.http.public import Body
from kontext_mock.http.routing import Call
from kontext_mock.http.spec import Operation, Parameter, Spec, path_pattern

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine

__all__ = ["ExpressLane"]

# A query string the lane reads itself: name=value pairs in characters that need no
# decoding (anything else, e.g. %-escapes or "+", goes to the Flask path).
_PAIR = rb"[A-Za-z][A-Za-z0-9_]*=[A-Za-z0-9._~-]*"
_PLAIN_QUERY = re.compile(rb"%s(?:&%s)*" % (_PAIR, _PAIR))
_FLASK_SIGNALS = (signals.request_started, signals.request_finished,
                  signals.got_request_exception, signals.request_tearing_down,
                  signals.appcontext_pushed, signals.appcontext_popped,
                  signals.appcontext_tearing_down)


@dataclass(frozen=True)
class _Route:
    op: Operation
    body: Body
    path: list[Parameter]
    query: dict[str, Parameter]
    defaults: dict[str, Any]
    required: frozenset[str]
    scopes: ScopeCheck


class ExpressLane:
    """The handler of the hot reads, beside the Flask path; ``enabled`` switches it off."""

    def __init__(self, app: Flask, mock: MockEngine, spec: Spec, bodies: dict[str, Body]) -> None:
        self.enabled = True
        self._app = app
        self._mock = mock
        self._routes: list[tuple[re.Pattern[str], _Route]] = []
        for op in spec:
            route = _route(op, bodies.get(op.operation_id))
            if route is not None:
                # (the canonical path only, without a trailing slash: other spellings take
                # the Flask path)
                self._routes.append((path_pattern(op.path), route))

    @property
    def active(self) -> bool:
        """True while the lane takes requests: enabled, and the Flask app without hooks."""
        app = self._app
        if not self.enabled:
            return False
        if not (app.before_request_funcs or app.after_request_funcs or app.teardown_request_funcs
                or app.teardown_appcontext_funcs or app.url_value_preprocessors) and not any(
                s.receivers for s in _FLASK_SIGNALS):
            return True  # the usual case, told quickly: nothing registered at all
        return (
            not any(app.before_request_funcs.values())
            and not any(app.after_request_funcs.values())
            and not any(app.teardown_request_funcs.values())
            and not app.teardown_appcontext_funcs
            and not any(app.url_value_preprocessors.values())
            and not any(s.receivers for s in _FLASK_SIGNALS)
        )

    def route(self, exchange: Exchange) -> tuple[_Route, tuple[str, ...]] | None:
        """The lane's route for this request and its path values, or None."""
        if exchange.method != "GET" or exchange.body or not exchange.path.startswith("/api/"):
            return None
        for pattern, candidate in self._routes:
            match = pattern.fullmatch(exchange.path)
            if match is not None:
                return candidate, match.groups()
        return None

    def answer(self, exchange: Exchange) -> Answer | None:
        """The answer, when the lane takes the request; else None (the Flask path's turn).

        Call with the store's lock held, or where waiting for it is fine.
        """
        found = self.route(exchange)
        if found is None or not self.active:
            return None
        route, values = found
        if exchange.header("content-type") or exchange.header("transfer-encoding"):
            return None
        params = _parameters(route, values, exchange.query)
        if params is None:
            return None
        mock = self._mock
        try:
            token = mock.authenticate(parse_bearer(exchange.header("authorization")))
            route.scopes.require(token.scopes)
            body = route.body(Call(route.op, params[0], params[1], None, token))
        except Exception:  # every error is the Flask path's to answer, in its one place
            return None
        exchange.operation = route.op
        return Answer(200, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))], body)


def _route(op: Operation, body: Body | None) -> _Route | None:
    """What the lane needs to answer ``op``, or None when it does not take it."""
    if body is None or op.method != "GET" or not op.bearer or op.body_media_type:
        return None
    if any(scheme not in ("oauth2", "bearerAuth") for req in op.security for scheme, _ in req):
        return None
    path = [p for p in op.parameters if p.location == "path"]
    query = {p.name: p for p in op.parameters if p.location == "query"}
    if len(path) + len(query) != len(op.parameters) or any(p.accepts is None for p in op.parameters):
        return None
    if [p.name for p in path] != re.findall(r"\{([^}]+)\}", op.path):
        return None
    return _Route(
        op=op, body=body, path=path, query=query,
        defaults={p.name: p.default for p in query.values() if p.default is not None},
        required=frozenset(p.name for p in query.values() if p.required),
        scopes=ScopeCheck(op.scope_alternatives),
    )


def _parameters(route: _Route, values: tuple[str, ...], query: bytes
                ) -> tuple[dict[str, Any], frozenset[str]] | None:
    """The call's parameters as routing.py would make them, or None for the Flask path."""
    params: dict[str, Any] = {}
    for p, raw in zip(route.path, values, strict=True):
        value = p.coerce(raw)
        if not p.accepts(value):  # type: ignore[misc]
            return None
        params[p.name] = value
    explicit = set(params)
    if query:
        if not _PLAIN_QUERY.fullmatch(query):
            return None
        for pair in query.decode("ascii").split("&"):
            name, _, raw = pair.partition("=")
            q = route.query.get(name)
            if q is None or name in params:
                return None  # unknown or repeated: the Flask path decides
            value = q.coerce(raw)
            if not q.accepts(value):  # type: ignore[misc]
                return None
            params[name] = value
            explicit.add(name)
    if not route.required <= explicit:
        return None
    for name, default in route.defaults.items():
        params.setdefault(name, default)
    return params, frozenset(explicit)

