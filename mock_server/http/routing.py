"""Binding the spec's operations to handlers: parameters, bodies and credentials checked once, here.

A handler receives a :class:`Call` whose parameters are already parsed, typed,
defaulted and valid, and whose bearer token (where the operation needs one) is known
and carries the scopes the operation requires.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask, Response, request

from kontext_mock.core.credentials import ScopeCheck, parse_bearer
from kontext_mock.core.errors import ApiError, OAuthError, ValidationError
from kontext_mock.core.nesting import JsonDepthError, parse_json
from kontext_mock.core.records import AccessToken
from kontext_mock.http.explain import explain
from kontext_mock.http.spec import Operation, Spec

__all__ = ["Call", "Handler", "bind"]


@dataclass(slots=True)
class Call:
    """One validated request to an operation."""

    op: Operation
    params: dict[str, Any]
    #: names of the parameters the client actually sent (the rest are defaults)
    explicit: frozenset[str]
    body: Any
    token: AccessToken | None


Handler = Callable[[Call], Response]
Authenticate = Callable[[str], AccessToken]
Guard = Callable[[], None]


def bind(
    app: Flask,
    spec: Spec,
    handlers: dict[str, Handler],
    authenticate: Authenticate,
    guards: Mapping[str, Guard] | None = None,
) -> None:
    """Add a URL rule for every operation of ``spec`` that ``handlers`` implements.

    ``guards`` maps security scheme names to checks: an operation whose security names
    one runs its check first, before anything is parsed (e.g. the control plane's admin
    token).
    """
    for op in spec:
        handler = handlers.get(op.operation_id)
        if handler is None:
            continue
        schemes = {scheme for req in op.security for scheme, _ in req}
        checks = [guard for name, guard in (guards or {}).items() if name in schemes]
        app.add_url_rule(
            op.rule,
            endpoint=op.operation_id,
            view_func=_view(op, handler, authenticate, checks[0] if checks else None),
            methods=[op.method],
        )


def _view(
    op: Operation, handler: Handler, authenticate: Authenticate, guard: Guard | None = None
) -> Callable[..., Response]:
    scopes = ScopeCheck(op.scope_alternatives)
    needs_bearer = op.bearer

    def view(**path_args: str) -> Response:
        exchange = request.environ.get("kontext.exchange")
        if exchange is not None:
            exchange.operation = op  # strict mode checks the answer against this operation
        if guard is not None:
            guard()
        token = None
        if needs_bearer:
            token = authenticate(parse_bearer(request.headers.get("Authorization")))
            scopes.require(token.scopes)
        params, explicit = _parameters(op, path_args)
        body = _body(op) if op.body_media_type else None
        return handler(Call(op, params, explicit, body, token))

    view.__name__ = op.operation_id
    return view


def _parameters(op: Operation, path_args: dict[str, str]) -> tuple[dict[str, Any], frozenset[str]]:
    params: dict[str, Any] = {}
    explicit: set[str] = set()
    problems: list[dict[str, Any]] = []
    for p in op.parameters:
        raw: str | None
        if p.location == "path":
            raw = path_args.get(p.name)
        elif p.location == "query":
            values = request.args.getlist(p.name)
            if len(values) > 1:
                problems.append(_problem("query", p.name, "given more than once"))
                continue
            raw = values[0] if values else None
        else:
            raw = request.headers.get(p.name)
        if raw is None:
            if p.required:
                problems.append(_problem(p.location, p.name, "is required"))
            elif p.default is not None:
                params[p.name] = p.default
            continue
        value = p.coerce(raw)
        if p.accepts is not None and p.accepts(value):
            params[p.name] = value
            explicit.add(p.name)
            continue
        failures = explain(p.validator.iter_errors(value))
        if failures:
            problems.append(_problem(p.location, p.name, failures[0][1]))
            continue
        params[p.name] = value
        explicit.add(p.name)
    if problems:
        _reject(op, problems)
    return params, frozenset(explicit)


def _body(op: Operation) -> Any:
    media = op.body_media_type
    if not op.body_required and not request.content_length and not request.mimetype:
        return None  # an optional body left out entirely
    if request.mimetype != media:
        got = request.mimetype or "no content type"
        if op.error_style == "oauth":
            raise OAuthError(400, "invalid_request", f"the body must be {media}, not {got}")
        raise ApiError(415, "unsupported_media_type", f"the body must be {media}, not {got}")
    present = True  # a JSON null is a body (and not an object); no bytes at all is none
    if media == "application/json":
        raw = request.get_data(cache=True)
        if not raw:
            body: Any = None
            present = False
        else:
            try:
                body = parse_json(raw)
            except JsonDepthError as exc:
                _reject(op, [_problem("body", None, str(exc))])
            except orjson.JSONDecodeError as exc:
                _reject(op, [_problem("body", None, f"malformed JSON: {exc}")])
    else:
        try:
            request.get_data(cache=True).decode("utf-8")
        except UnicodeDecodeError:
            _reject(op, [_problem("body", None, "the form body is not valid UTF-8")])
        form = request.form
        repeated = [k for k in form if len(form.getlist(k)) > 1]
        if repeated:
            _reject(op, [_problem("body", k, "given more than once") for k in repeated])
        body = form.to_dict()
    if body is None and not present:
        if op.body_required:
            _reject(op, [_problem("body", None, "a request body is required")])
        return None
    assert op.body_validator is not None
    if op.body_accepts is not None and op.body_accepts(body):
        return body
    problems = [_problem("body", field, message, rule)
                for field, message, rule in explain(op.body_validator.iter_errors(body))]
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
    if op.error_style == "oauth":
        first = problems[0]
        # RFC 6749 section 5.2: a grant type the server does not know has its own code.
        if first["field"] == "grant_type" and rules[0] == "enum":
            raise OAuthError(400, "unsupported_grant_type", "unsupported grant_type")
        where = f"{first['field']}: " if first["field"] else ""
        raise OAuthError(400, "invalid_request", f"{where}{first['message']}")
    raise ValidationError(problems)
