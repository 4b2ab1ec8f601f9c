"""Layer 1, schema conformance: schemathesis runs every operation the target serves.

It runs the *documented* view of the spec (``assumptions.documented_view``): keywords
that exist only because of an assumption are left out here and held to every answer
by ``assumed_schema.py`` instead, so a target that reads an undocumented rule otherwise
drifts there rather than failing here. Its rules are named in ``schema_checks.py``.

Positive and negative data, every built-in check that applies. Path parameters are set
to the application under test and its real session ids most of the time, so positive
cases reach data; the rest stay random (404s and malformed ids are tested too).
Requests go through the kit's own rate limit, ``Retry-After`` handling and passive rules.
In a read-only run only the reading operations (and the token endpoint) are included,
and the coverage phase sends no unexpected write methods.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import requests
import schemathesis
from requests.structures import CaseInsensitiveDict
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.transport.requests import REQUESTS_TRANSPORT

from kontext_mock.contracts.budget import BudgetSpentError
from kontext_mock.contracts.context import Outcome, RunContext
from kontext_mock.contracts.errors import ContractError, ReadOnlyError, TargetUnavailableError
from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.pacing import retry_after_seconds
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import schema_rule_name
from kontext_mock.contracts.schema_checks import OFF

if TYPE_CHECKING:
    from schemathesis.schemas import BaseSchema

__all__ = ["SchemaLayer"]

_KEEP = 3
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Methods the coverage phase may try on routes that do not declare them.
_READ_ONLY_UNEXPECTED = ["OPTIONS", "TRACE"]
_SESSION_IDS = 20
# schemathesis' probing phase sends its own requests (at most two: a null byte in a
# header, an unsafe path), on its own session: the kit counts them against the rate
# limit and the budget before it starts, having no way to route them.
_PROBES = 2
_AGENT_SIDE = "/api/v1/agent-sessions"


class SchemaLayer:
    """Runs schemathesis against the target and turns its check results into rule outcomes."""

    def __init__(self, ctx: RunContext, session_ids: list[str]) -> None:
        self.ctx = ctx
        self.session_ids = session_ids[:_SESSION_IDS]
        self.violations: dict[str, list[Violation]] = defaultdict(list)
        self.checks: Counter[str] = Counter()
        self.errors: list[str] = []
        self.operations: list[str] = []
        #: True once the run's request budget stopped schemathesis
        self.spent = False

    def included_operations(self) -> list[str]:
        """The operations to test: those the target serves, writes only when destructive;
        under a request budget not the agent side (its coverage alone would spend most of
        it; with a control plane ``lifecycle-model`` drives it)."""
        return [
            op.operation_id for op in self.ctx.spec.operations.values()
            if op.operation_id in self.ctx.served and (self.ctx.destructive or not op.writes)
            and not (self.ctx.frugal and op.path.startswith(_AGENT_SIDE))
        ]

    def config(self) -> SchemathesisConfig:
        """The schemathesis configuration of this run."""
        opts = self.ctx.options
        # The stateful phase walks the spec's links (applications -> sessions -> revoke):
        # a few walks cover them; as many as the other phases' examples cost the most time.
        walks = 1 if self.ctx.frugal else max(1, opts.max_examples // 5)
        phases: dict[str, Any] = {
            "stateful": {"enabled": self.ctx.destructive,
                         "max-steps": 3 if self.ctx.frugal else 10,
                         "generation": {"max-examples": walks}},
        }
        if not self.ctx.destructive:
            phases["coverage"] = {"unexpected-methods": _READ_ONLY_UNEXPECTED}
        data: dict[str, Any] = {
            "seed": self.ctx.seed,
            "base-url": self.ctx.client.base_url,
            "workers": 1,
            "request-timeout": opts.timeout,
            "suppress-health-check": ["all"],
            "generation": {"max-examples": 1 if self.ctx.frugal else max(1, opts.max_examples),
                           "database": "none"},
            "phases": phases,
            "checks": {check: {"enabled": False} for check in OFF},
            "dictionaries": {"kit-applications": {"values": [self.ctx.application_id]}},
            "parameters": {
                "path.applicationId": {"dictionary": "kit-applications", "probability": 0.9},
            },
        }
        if self.session_ids:
            data["dictionaries"]["kit-sessions"] = {"values": self.session_ids}
            data["parameters"]["path.sessionId"] = {"dictionary": "kit-sessions",
                                                    "probability": 0.8}
        return SchemathesisConfig.from_dict(data)

    def load(self) -> BaseSchema:
        """The documented view of the spec as a schemathesis schema, instrumented and filtered."""
        schema = schemathesis.openapi.from_dict(self.ctx.spec.documented, config=self.config())
        client = self.ctx.client

        class KitToken:
            """The kit's bearer token on every generated case (schemathesis removes it to
            probe auth enforcement)."""

            def get(self, case: Any, context: Any) -> str:
                return client.token()

            def set(self, case: Any, data: str, context: Any) -> None:
                case.headers = case.headers or {}
                case.headers["Authorization"] = f"Bearer {data}"

        schema.auth(refresh_interval=None)(KitToken)
        self.operations = self.included_operations()
        included = schema.include(operation_id=self.operations)
        return _with_transport(included, _KitTransport(self.ctx))

    def run(self) -> dict[str, Outcome]:
        """Run schemathesis; an outcome per check it ran."""
        if not self.included_operations():
            return {}
        schema = self.load()
        started = time.monotonic()
        try:
            for _ in range(_PROBES):
                self.ctx.client.spend()
        except BudgetSpentError:
            self.ctx.notes.append("the request budget was spent before the schema layer")
            return {}
        stream = from_schema(schema).execute()
        try:
            for event in stream:
                self._event(event)
                # Past the budget every request is refused; the scenario that ran into it
                # still reports the checks it made, then the layer stops.
                if self.spent and isinstance(event, events.ScenarioFinished):
                    stream.stop()
                    self.ctx.notes.append("the schema layer stopped where the request budget "
                                          "ran out")
                    break
        except BaseException:
            # Stop schemathesis' workers before giving up (target down, interrupted).
            stream.stop()
            raise
        self.ctx.progress(f"  schemathesis: {len(self.operations)} operations, "
                          f"{sum(self.checks.values())} checks in "
                          f"{time.monotonic() - started:.1f} s")
        out: dict[str, Outcome] = {}
        share = (time.monotonic() - started) / max(1, len(self.checks))
        for check, count in sorted(self.checks.items()):
            name = schema_rule_name(check)
            found = self.violations.get(name, [])
            out[name] = Outcome.judged(found, count, f"{count} responses checked")
            out[name].duration = share  # the checks run together: an even share each
        return out

    def _event(self, event: events.EngineEvent) -> None:
        if isinstance(event, events.PhaseFinished) and event.status is not None:
            self.ctx.progress(f"  schemathesis {event.phase.name.value}: {event.status.value}")
        elif isinstance(event, events.ScenarioFinished):
            self._scenario(event)
        elif isinstance(event, events.NonFatalError):
            exc = event.value
            inner = _unwrap(exc)
            if isinstance(inner, TargetUnavailableError):
                raise inner
            if isinstance(inner, requests.ConnectionError):
                self._dropped(event.label, inner)
                return
            if isinstance(inner, ReadOnlyError):
                raise inner
            if isinstance(inner, BudgetSpentError):
                self.spent = True
                return
            self.errors.append(f"{event.label}: {type(inner).__name__}: {inner}")
            self.ctx.notes.append(f"schemathesis could not test {event.label}: "
                                  f"{type(inner).__name__}: {str(inner)[:300]}")
        elif isinstance(event, events.FatalError):
            inner = _unwrap(event.exception)
            if isinstance(inner, ReadOnlyError):
                raise inner
            raise ContractError(f"schemathesis could not run: {inner}")
        elif (isinstance(event, events.EngineFinished)
              and event.stop_reason.value == "server_unavailable"):
            raise TargetUnavailableError(
                f"{self.ctx.client.base_url} stopped answering during the schema layer")

    def _dropped(self, label: str, exc: requests.ConnectionError) -> None:
        """A request got no answer: the target is down (exit 2), or it dropped this one
        connection, which no documented answer allows."""
        self.ctx.client.request("GET", self.ctx.sessions_path, auth=None,
                                operation="listSessions")  # TargetUnavailableError if down
        name = schema_rule_name("not_a_server_error")
        self.checks["not_a_server_error"] += 1
        if len(self.violations[name]) < _KEEP:
            request = getattr(exc, "request", None)
            curl = None
            if request is not None:
                curl = self.ctx.client.redact(
                    f"curl -sS -X {request.method} {request.url!r}")
            self.violations[name].append(Violation(
                name, f"{label}: the connection was dropped without an answer", curl,
                "no answer"))

    def _scenario(self, event: events.ScenarioFinished) -> None:
        recorder = event.recorder
        for case_id, nodes in recorder.checks.items():
            for node in nodes:
                if node.status.value not in ("success", "failure"):
                    continue
                self.checks[node.name] += 1
                info = node.failure_info
                if info is None:
                    continue
                name = schema_rule_name(node.name)
                failure = info.failure
                if len(self.violations[name]) >= _KEEP:
                    continue
                if any(v.message.startswith(f"{failure.operation}: {failure.title}")
                       for v in self.violations[name]):
                    continue  # the same problem on the same operation: once is enough
                response = recorder.find_response(case_id=failure.case_id or case_id)
                ex = _exchange(response, self.ctx) if response is not None else None
                detail = " ".join(str(failure.message or "").split())
                if len(detail) > 400:
                    detail = detail[:400] + "..."
                message = f"{failure.operation}: {failure.title}" + (f" ({detail})" if detail
                                                                      else "")
                self.violations[name].append(Violation(
                    name, message, ex.curl() if ex else None, ex.describe() if ex else None))


class _KitTransport:
    """schemathesis' requests transport, through the kit's rate limit, ``Retry-After``,
    read-only guard, token refresh and passive rules."""

    def __init__(self, ctx: RunContext) -> None:
        self._inner = REQUESTS_TRANSPORT
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send(self, case: Any, *, session: Any = None, **kwargs: Any) -> Any:
        client = self._ctx.client
        method = str(case.method).upper()
        if method not in _SAFE and case.path != "/oauth2/token" and not client.destructive:
            raise ReadOnlyError(f"{method} {case.path} in a read-only run")
        response = None
        for attempt in range(4):
            client.spend()
            started = time.monotonic()
            response = self._inner.send(case, session=session, **dict(kwargs))
            _observe(response, self._ctx, time.monotonic() - started)
            status = response.status_code
            if status == 429:
                client.throttled += 1
            if status == 429 and attempt < 3:
                wait = retry_after_seconds(_header(response.headers, "Retry-After"))
                if wait is not None:
                    time.sleep(wait)
                    continue
            sent = str((case.headers or {}).get("Authorization", ""))
            if (status == 401 and attempt == 0 and client.refreshable
                    and sent.removeprefix("Bearer ") in client.issued):
                # The kit's own token expired: repeat the request with a fresh one.
                fresh = client.refresh_token(sent.removeprefix("Bearer "))
                case.headers["Authorization"] = f"Bearer {fresh}"
                continue
            break
        return response


def _with_transport(schema: BaseSchema, transport: _KitTransport) -> BaseSchema:
    """A copy of ``schema`` that sends through ``transport`` (as ``clone`` builds copies)."""
    base = type(schema)
    kit_class = type(f"Kit{base.__name__}", (base,),
                     {"transport": property(lambda self: transport)})
    return kit_class(  # type: ignore[no-any-return]
        schema.raw_schema, config=schema.config, location=schema.location, app=schema.app,
        hooks=schema.hooks, auth=schema.auth, test_function=schema.test_function,
        filter_set=schema.filter_set,
    )


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) and value else value  # type: ignore[no-any-return]
    return None


def _exchange(response: Any, ctx: RunContext, elapsed: float | None = None) -> Exchange:
    request: requests.PreparedRequest = response.request
    body = request.body
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for key, value in (response.headers or {}).items():
        headers[key] = ", ".join(value) if isinstance(value, list) else str(value)
    return Exchange(
        method=(request.method or "GET").upper(),
        url=request.url or "",
        request_headers=dict(request.headers),
        request_body=body.encode() if isinstance(body, str) else body,
        status=response.status_code,
        reason=getattr(response, "message", "") or "",
        headers=headers,
        body=response.content or b"",
        elapsed=response.elapsed if elapsed is None else elapsed,
        redact=ctx.client.redact,
    )


def _observe(response: Any, ctx: RunContext, elapsed: float) -> None:
    ex = _exchange(response, ctx, elapsed)
    for observe in ctx.client.observers:
        observe(ex)


def _unwrap(exc: BaseException) -> BaseException:
    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(exc, TargetUnavailableError | ReadOnlyError | BudgetSpentError
                      | requests.ConnectionError):
            return exc
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            return exc
        exc = nxt
    return exc
