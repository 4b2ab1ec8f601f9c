"""Binding the spec's operations to handlers: parameters, bodies and credentials checked once, here.

A handler receives a :class:`Call` whose parameters are already parsed, typed,
defaulted and valid, and whose bearer token (where the operation needs one) is known
and carries the scopes the operation requires. One :class:`Endpoint` per operation does
that work from the request's :class:`Inputs`, whichever way the request came: the
router (``router.py``) reads them from the request itself, a Flask view (:func:`bind`)
from Flask's request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Flask, Response, has_request_context, request

from kontext_mock.core.credentials import ScopeCheck, parse_bearer
from kontext_mock.core.errors import ApiError, OAuthError, ValidationError
from kontext_mock.core.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    TRANSPORT_ERROR,
    JsonRpcError,
)
from kontext_mock.core.nesting import JsonDepthError, parse_json
from kontext_mock.core.records import AccessToken
from kontext_mock.http.explain import explain
from kontext_mock.http.serving.exchange import Answer, StreamAnswer
from kontext_mock.http.serving.wsgi import StreamBody
from kontext_mock.http.spec import ErrorStyle, Operation, Spec

__all__ = ["Call", "Endpoint", "Handler", "Inputs", "StepAside", "bind", "response_of"]

Header = Callable[[str], str | None]


@dataclass(slots=True)
class Call:
    """One validated request to an operation."""

    op: Operation
    params: dict[str, Any]
    #: names of the parameters the client actually sent (the rest are defaults)
    explicit: frozenset[str]
    body: Any
    token: AccessToken | None
    #: a request header by name (any case), as the client sent it
    header: Header = lambda name: None


@dataclass(slots=True)
class Inputs:
    """What a request gives an operation: its raw parts, read however it arrived."""

    #: the path's parameters, percent-decoded
    path_args: Mapping[str, str]
    #: the query's name and value pairs, decoded, in order (a name may repeat)
    query: Sequence[tuple[str, str]]
    header: Header
    #: the body's media type (no parameters, lower case), "" without one (the router
    #: reads it only for an operation that takes a body: only :func:`_body` asks)
    mimetype: str
    body: bytes
    #: the form body's name and value pairs, decoded (may raise :class:`StepAside`); None:
    #: read from ``body`` as UTF-8 (:func:`form_pairs`)
    form: Callable[[], list[tuple[str, str]]] | None = None
    #: the client's address ("" when unknown)
    peer: str = ""
    #: what the request pipeline judged of its credentials at its head, when it did (the
    #: control plane's admin token: ``admin.ControlVerdict``); a guard reads it rather
    #: than checking the credential again
    verdict: Any = None
    #: what identifies the path and query as sent, short (the router's: its raw path and
    #: query string), so an endpoint remembers their parameters by it without reading
    #: them; None: by the parameters' text
    key: Hashable | None = None

    def form_pairs(self) -> list[tuple[str, str]]:
        """The form body's name and value pairs, decoded (may raise :class:`StepAside`)."""
        if self.form is not None:
            return self.form()
        try:
            return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise StepAside from None


class StepAside(Exception):  # noqa: N818 (not an error: a decision)
    """Raised (before any handler ran) when the router cannot read an input exactly as
    the Flask path would (e.g. a percent-escape that is not UTF-8): Flask's turn."""


Handler = Callable[[Call], Answer | Response]
#: distinct path and query inputs an endpoint remembers the parameters of (all forgotten
#: past that)
_PARSED_KEPT = 256
#: the longest input (a path, a query string, or the values a key is made of) a memo of
#: the router or an endpoint keeps: longer ones are read each time, so that memos stay
#: small whatever clients send (a head may be 64 KiB)
MEMO_KEY_MAX = 256
Authenticate = Callable[[str], AccessToken]
#: a check an operation's security scheme asks for, run before anything is parsed
#: (a scheme the endpoint does not know, e.g. the gateway's token, is checked by its guard,
#: which hands the handler the token it found: credentials are checked once)
Guard = Callable[[Operation, Inputs], AccessToken | None]


class Endpoint:
    """One operation bound to its handler: credentials, parameters and body checked, in
    that order, then the handler called with the :class:`Call`."""

    def __init__(self, op: Operation, handler: Handler, authenticate: Authenticate,
                 guard: Guard | None = None) -> None:
        self.op = op
        self.handler = handler
        self._authenticate = authenticate
        self._guard = guard
        self._scopes = ScopeCheck(op.scope_alternatives)
        self._bearer = op.bearer
        #: (path arguments, query pairs) -> the parameters they make: for an operation whose
        #: parameters are all in its path and query, a function of those alone, so a
        #: client that sends the same again (most do) has them read once
        self._parsed: dict[Hashable, tuple[dict[str, Any], frozenset[str]]] | None = (
            {} if op.parameters and all(p.location in ("path", "query") for p in op.parameters)
            else None)
        #: Authorization headers -> their bearer token (a client sends the same again and
        #: again; kept by the endpoint, so they go with the mock)
        self._bearers: dict[str, str] = {}
        #: the query's names the operation reads (the key holds no other pair)
        self._query_names = frozenset(p.name for p in op.parameters if p.location == "query")
        #: True for a read (GET) whose only credential is the bearer token checked here and
        #: that takes no body: its answer may be kept for the same request (``kept.py``)
        self.reads_only = (op.method == "GET" and self._bearer and guard is None
                           and not op.body_media_type)

    def __call__(self, inputs: Inputs) -> Answer | Response:
        """The handler's answer; raises an :class:`ApiError` for a refused request."""
        op = self.op
        token = self._guard(op, inputs) if self._guard is not None else None
        if self._bearer:
            token = self.token_for(inputs.header("Authorization"))
        params, explicit = self._parameters(inputs)
        body = _body(op, inputs) if op.body_media_type else None
        return self.handler(Call(op, params, explicit, body, token, inputs.header))

    def token_for(self, authorization: str | None) -> AccessToken:
        """The bearer token of an ``Authorization`` header, known, unexpired and holding the
        operation's scopes; raises an :class:`ApiError` (401, 403) otherwise."""
        token = self._authenticate(self._bearer_of(authorization))
        self._scopes.require(token.scopes)
        return token

    def _bearer_of(self, header: str | None) -> str:
        """:func:`parse_bearer`, remembered for short headers (refusals are not)."""
        if header is None:
            return parse_bearer(header)
        bearers = self._bearers
        token = bearers.get(header)
        if token is None:
            token = parse_bearer(header)
            if len(header) <= MEMO_KEY_MAX:
                if len(bearers) >= _PARSED_KEPT:
                    bearers.clear()
                bearers[header] = token
        return token

    def _parameters(self, inputs: Inputs) -> tuple[dict[str, Any], frozenset[str]]:
        """The call's parameters (remembered when they depend on the path and query alone:
        each call gets a copy of its own)."""
        parsed = self._parsed
        if parsed is None:
            return _parameters(self.op, inputs)
        key = inputs.key
        if key is None:
            names = self._query_names
            path_args = tuple(inputs.path_args.items())
            query = tuple(pair for pair in inputs.query if pair[0] in names)
            key = (path_args, query)
            if sum(len(name) + len(value) for name, value in (*path_args, *query)) > MEMO_KEY_MAX:
                return _parameters(self.op, inputs)  # (too long to keep)
        found = parsed.get(key)
        if found is None:
            found = _parameters(self.op, inputs)  # (refused inputs raise: never remembered)
            if len(parsed) >= _PARSED_KEPT:
                parsed.clear()
            parsed[key] = found
        return dict(found[0]), found[1]


def bind(
    app: Flask,
    spec: Spec,
    handlers: dict[str, Handler],
    authenticate: Authenticate,
    guards: Mapping[str, Guard] | None = None,
) -> dict[str, Endpoint]:
    """Add a URL rule for every operation of ``spec`` that ``handlers`` implements; the
    endpoints, by operationId.

    ``guards`` maps security scheme names to checks: an operation whose security names
    one runs its check first, before anything is parsed (e.g. the control plane's admin
    token).
    """
    endpoints: dict[str, Endpoint] = {}
    for op in spec:
        handler = handlers.get(op.operation_id)
        if handler is None:
            continue
        schemes = {scheme for req in op.security for scheme, _ in req}
        checks = [guard for name, guard in (guards or {}).items() if name in schemes]
        endpoint = endpoints[op.operation_id] = Endpoint(
            op, handler, authenticate, checks[0] if checks else None)
        app.add_url_rule(op.rule, endpoint=op.operation_id, view_func=_view(endpoint),
                         methods=[op.method])
    return endpoints


def response_of(answer: Answer | Response) -> Response:
    """A handler's answer as Flask's response (the same status, headers and body). An
    event stream crosses Flask whole, as its body (a :class:`StreamBody` passed through
    untouched), so whoever called the Flask app runs it as it would the router's answer:
    the server on its loop, an in-process client in its thread."""
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, StreamAnswer):
        # (Flask's response closes its body when it is done with it without passing it
        # on, e.g. for HEAD: the stream's place is given back then too)
        gone = request.environ.get("kontext.client_gone") if has_request_context() else None
        return Response(StreamBody(answer, gone), status=answer.status,
                        headers=answer.headers, direct_passthrough=True)
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _view(endpoint: Endpoint) -> Callable[..., Response]:
    def view(**path_args: str) -> Response:
        exchange = request.environ.get("kontext.exchange")
        if exchange is not None:
            exchange.operation = endpoint.op  # strict mode checks the answer against it
        inputs = Inputs(path_args, list(request.args.items(multi=True)), request.headers.get,
                        request.mimetype, request.get_data(cache=True),
                        lambda: list(request.form.items(multi=True)), request.remote_addr or "",
                        exchange.verdict if exchange is not None else None)
        return response_of(endpoint(inputs))

    view.__name__ = endpoint.op.operation_id
    return view


def _parameters(op: Operation, inputs: Inputs) -> tuple[dict[str, Any], frozenset[str]]:
    params: dict[str, Any] = {}
    explicit: set[str] = set()
    problems: list[dict[str, Any]] = []
    query: dict[str, list[str]] | None = None
    for p in op.parameters:
        name, location = p.name, p.location
        raw: str | None
        if location == "path":
            raw = inputs.path_args.get(name)
        elif location == "query":
            if query is None:
                query = {}
                for key, value in inputs.query:
                    query.setdefault(key, []).append(value)
            values = query.get(name, ())
            if len(values) > 1:
                problems.append(_problem("query", name, "given more than once"))
                continue
            raw = values[0] if values else None
        else:
            raw = inputs.header(name)
        if raw is None:
            if p.required:
                problems.append(_problem(location, name, "is required"))
            elif p.default is not None:
                params[name] = p.default
            continue
        value = raw if p.kind == "string" else p.coerce(raw)  # (text is read as it is)
        accepts = p.accepts
        if accepts is not None and accepts(value):
            params[name] = value
            explicit.add(name)
            continue
        failures = explain(p.validator.iter_errors(value), op.resolve)
        if failures:
            problems.append(_problem(location, name, failures[0][1]))
            continue
        params[name] = value
        explicit.add(name)
    if problems:
        _reject(op, problems)
    return params, frozenset(explicit)


def _body(op: Operation, inputs: Inputs) -> Any:
    media = op.body_media_type
    mimetype = inputs.mimetype
    raw = inputs.body
    if not op.body_required and not raw and not mimetype:
        return None  # an optional body left out entirely
    if mimetype != media:
        got = mimetype or "no content type"
        if op.error_style is ErrorStyle.OAUTH:
            raise OAuthError(400, "invalid_request", f"the body must be {media}, not {got}")
        if op.error_style is ErrorStyle.JSONRPC:
            raise JsonRpcError(415, TRANSPORT_ERROR,
                               f"Unsupported Media Type: the body must be {media}, not {got}")
        raise ApiError(415, "unsupported_media_type", f"the body must be {media}, not {got}")
    present = True  # a JSON null is a body (and not an object); no bytes at all is none
    if media == "application/json":
        if not raw:
            if op.error_style is ErrorStyle.JSONRPC:  # (no JSON at all: nothing to parse)
                raise JsonRpcError(400, PARSE_ERROR, "Parse error: the body is empty")
            body: Any = None
            present = False
        else:
            try:
                body = parse_json(raw)
            except JsonDepthError as exc:
                _reject(op, [_problem("body", None, str(exc))])
            except orjson.JSONDecodeError as exc:
                if op.error_style is ErrorStyle.JSONRPC:
                    raise JsonRpcError(400, PARSE_ERROR, f"Parse error: {exc}") from None
                _reject(op, [_problem("body", None, f"malformed JSON: {exc}")])
    else:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            _reject(op, [_problem("body", None, "the form body is not valid UTF-8")])
        form: dict[str, str] = {}
        repeated: list[str] = []
        for name, value in inputs.form_pairs():
            if name in form:
                if name not in repeated:
                    repeated.append(name)
                continue
            form[name] = value
        if repeated:
            _reject(op, [_problem("body", k, "given more than once") for k in repeated])
        body = form
    if body is None and not present:
        if op.body_required:
            _reject(op, [_problem("body", None, "a request body is required")])
        return None
    assert op.body_validator is not None
    if op.body_accepts is not None and op.body_accepts(body):
        return body
    problems = [_problem("body", field, message, rule)
                for field, message, rule in explain(op.body_validator.iter_errors(body), op.resolve)]
    if problems:
        _reject(op, problems)
    return body


def _problem(location: str, name: str | None, message: str, rule: Any = None) -> dict[str, Any]:
    problem: dict[str, Any] = {"location": location, "field": name, "message": message}
    if rule is not None:
        problem["_rule"] = rule
    return problem


def _reject(op: Operation, problems: list[dict[str, Any]]) -> None:
    rules = [p.pop("_rule", None) for p in problems]
    if op.error_style is ErrorStyle.JSONRPC:
        first = problems[0]
        where = f"{first['location']} {first['field']}: " if first["field"] else ""
        raise JsonRpcError(400, INVALID_REQUEST, f"Invalid Request: {where}{first['message']}")
    if op.error_style is ErrorStyle.OAUTH:
        first = problems[0]
        # RFC 6749 section 5.2: a grant type the server does not know has its own code.
        if first["field"] == "grant_type" and rules[0] == "enum":
            raise OAuthError(400, "unsupported_grant_type", "unsupported grant_type")
        where = f"{first['field']}: " if first["field"] else ""
        raise OAuthError(400, "invalid_request", f"{where}{first['message']}")
    raise ValidationError(problems)
