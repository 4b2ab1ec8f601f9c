"""The express lane: the API's hottest reads answered without Flask's per-request machinery.

Flask's request context, URL adapter, hooks and response object cost several times the
mock's own work on a read (bench/ANALYSIS.md has the figures). So the lane answers a read
itself when it can answer exactly as the Flask path would, and hands everything else to
the Flask path, untouched.

It takes a request only if all of these hold:

* a GET of an operation whose body :func:`~mock_server.api.read_bodies` computes, at the
  canonical path, with path parameters that pass their spec's quick checks and a query
  string of known parameters in plain characters, each given once and accepted;
* no request body, a bearer token the mock knows, with scopes the operation accepts;
* the request hooks are the ones this module knows, in their no-op state: no fault rules,
  no rate limit, no lifecycle scripts on a running clock, no strict mode, no CORS, header
  fields under the app's limit, nothing subscribed to Flask's request signals.

It then does what those hooks do on a read (request id, ``Date`` from the mock's clock, the
journal's record) and answers with the same body function as the Flask handler, in the
same bytes and headers. Any exception on the way, and so every error answer, goes down
the Flask path instead, which answers it in its one place. A new request hook that this
module does not know switches the lane off (tests/test_perf_guards.py notices).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, signals

from .api import Body
from .auth import ScopeCheck, parse_bearer
from .journal import Recorded
from .limits import header_fields
from .routing import Call
from .spec import Operation, Parameter, Spec

if TYPE_CHECKING:
    from .mock import KontextMock

__all__ = ["ExpressLane"]

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The request hooks whose work the lane does itself, by module and name.
KNOWN_BEFORE = (
    ("mock_server.limits", "_header_limit"),
    ("mock_server.origins", "_no_browsers_on_the_control_plane"),
    ("mock_server.app", "_request_id"),
    ("mock_server.traffic", "_before"),
)
KNOWN_AFTER = (("mock_server.app", "_finish"), ("mock_server.traffic", "_record"))
# A query string the lane reads itself: name=value pairs in characters that need no
# decoding (anything else, e.g. %-escapes or "+", goes to the Flask path).
_PAIR = r"[A-Za-z][A-Za-z0-9_]*=[A-Za-z0-9._~-]*"
_PLAIN_QUERY = re.compile(rf"{_PAIR}(?:&{_PAIR})*")
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
    """A WSGI app in front of Flask's: the reads it can answer, else the Flask path.

    ``enabled`` switches it off (every request then takes the Flask path).
    """

    def __init__(self, app: Flask, mock: KontextMock, spec: Spec, bodies: dict[str, Body],
                 request_id: Callable[[str | None], str],
                 http_date: Callable[[datetime], str]) -> None:
        self.flask_path: WsgiApp = app.wsgi_app
        self.enabled = True
        self._app = app
        # The hooks installed now, if they are the known ones; checked by identity on each
        # request (a hook added later switches the lane off).
        before = app.before_request_funcs.get(None, [])
        after = app.after_request_funcs.get(None, [])
        known = _names(app.before_request_funcs) == KNOWN_BEFORE and _names(
            app.after_request_funcs) == KNOWN_AFTER
        self._hooks = (list(before), list(after)) if known else None
        self._mock = mock
        self._request_id = request_id
        self._http_date = http_date
        self._routes: list[tuple[re.Pattern[str], _Route]] = []
        for op in spec:
            route = _route(op, bodies.get(op.operation_id))
            if route is not None:
                self._routes.append((_path_pattern(op.path), route))

    @property
    def active(self) -> bool:
        """True while the lane takes requests: enabled, and the app's hooks the known ones."""
        app, hooks = self._app, self._hooks
        return (
            self.enabled
            and hooks is not None
            and len(app.before_request_funcs) == 1 and len(app.after_request_funcs) == 1
            and app.before_request_funcs.get(None) == hooks[0]
            and app.after_request_funcs.get(None) == hooks[1]
            and not any(app.teardown_request_funcs.values())
            and not app.teardown_appcontext_funcs
            and not any(app.url_value_preprocessors.values())
            and not any(s.receivers for s in _FLASK_SIGNALS)
        )

    def claim(self, method: str, path: str) -> bool:
        """True when the lane would take a ``method`` request for ``path`` right now and the
        store is free: the server may then serve it on its own I/O thread, with no hand-off
        to a worker thread (nothing on the lane's way waits), and must call
        :meth:`release` after it. False: serve it like any other request."""
        if method != "GET" or not self._quiet() or not any(
            pattern.fullmatch(path) for pattern, _ in self._routes
        ):
            return False
        # Held until release(): a worker busy with the store (an import, a reset) makes
        # this request a worker's too, never the I/O thread's wait.
        return self._mock.store.lock.acquire(blocking=False)

    def release(self) -> None:
        """End a :meth:`claim`."""
        self._mock.store.lock.release()

    def parked(self) -> int:
        """How many server threads the app holds waiting, not computing (event streams)."""
        return self._mock.events.streams_open

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer ``environ`` in the lane, or pass it to the Flask path."""
        answer = self._answer(environ) if environ.get("REQUEST_METHOD") == "GET" else None
        if answer is None:
            return self.flask_path(environ, start_response)
        headers, body = answer
        start_response("200 OK", headers)
        return [body]

    # -- the lane ----------------------------------------------------------------------

    def _answer(self, environ: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes] | None:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/api/"):
            return None
        for pattern, candidate in self._routes:
            match = pattern.fullmatch(path)
            if match is not None:
                route = candidate
                break
        else:
            return None
        mock = self._mock
        if (
            not self._quiet()
            or environ.get("CONTENT_LENGTH", "0") not in ("", "0")
            or "HTTP_TRANSFER_ENCODING" in environ or environ.get("CONTENT_TYPE")
        ):
            return None
        size, fields = header_fields(environ)
        if size > mock.config.max_header_bytes:
            return None
        started = time.perf_counter()
        params = _parameters(route, match.groups(), environ.get("QUERY_STRING", ""))
        if params is None:
            return None
        try:
            token = mock.authenticate(parse_bearer(environ.get("HTTP_AUTHORIZATION")))
            route.scopes.require(token.scopes)
            body = route.body(Call(route.op, params[0], params[1], None, token))
        except Exception:  # every error is the Flask path's to answer, in its one place
            return None
        request_id = self._request_id(environ.get("HTTP_X_REQUEST_ID"))
        now = mock.now()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("x-request-id", request_id), ("Date", self._http_date(now))]
        journal = mock.journal
        if journal.enabled:
            journal.record(Recorded(
                method="GET", path=path, query=environ.get("QUERY_STRING", "").encode("latin-1"),
                headers=tuple(fields), body=None, content_type="",
                status=200, duration_ms=(time.perf_counter() - started) * 1000,
                request_id=request_id, time=now, fault=None,
            ))
        return headers, body

    def _quiet(self) -> bool:
        """True when the request hooks have nothing to do on a read but what the lane does."""
        mock = self._mock
        config = mock.config
        return not (
            config.strict or config.cors_origins or mock.faults.rules
            or mock.limiter.per_minute is not None
            or (mock.lifecycles.scripts and not mock.clock.frozen)
            or not self.active
        )


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


def _path_pattern(path: str) -> re.Pattern[str]:
    # Flask's default converter: one segment, no slash (strict_slashes off: the canonical
    # path only, without a trailing slash; other spellings take the Flask path).
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path)))


def _parameters(route: _Route, values: tuple[str, ...], query: str
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
        for pair in query.split("&"):
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


def _names(hooks: dict[Any, list[Callable[..., Any]]]) -> tuple[tuple[str, str], ...] | None:
    if any(key is not None for key, funcs in hooks.items() if funcs):
        return None  # blueprint-scoped hooks: not the known set
    return tuple((f.__module__, f.__name__) for f in hooks.get(None, []))
