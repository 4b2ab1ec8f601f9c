"""Regression guards for the hot path that time nothing: they count work, so a change
that makes serving slower in kind (compiling per request, scanning the whole store,
re-serializing unchanged sessions) fails here, whatever the machine's speed.

The figures themselves come from the benchmark (``make bench``, bench/RESULTS.md).
"""

from __future__ import annotations

import string
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kontext_mock import KontextMock, derived_status
from kontext_mock.core.records import (
    STATUS_FILTERS,
    Application,
    Session,
    pick_sessions,
    session_list_json,
)
from kontext_mock.http import spec
from kontext_mock.http.pipeline import Pipeline
from kontext_mock.http.router import Router
from kontext_mock.http.spec import Parameter, load_spec, quick_check

from .conftest import AUTH, DEV_APP, DEV_SESSION

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
GET = f"{LIST}/{DEV_SESSION}"
TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "dev-client",
              "client_secret": "dev-secret"}


def every_public_request(client: FlaskClient) -> None:
    """One of each kind of request, good and bad, to the public API."""
    client.get(GET, headers=AUTH)
    client.get(f"{LIST}?limit=5&status=all&includeInactive=true", headers=AUTH)
    client.get(f"{LIST}?limit=0", headers=AUTH)
    client.get(f"{LIST}?status=nope", headers=AUTH)
    client.get(f"{LIST}/not-a-uuid", headers=AUTH)
    client.get(f"{LIST}/{DEV_APP}", headers=AUTH)
    client.get(GET)
    client.post("/oauth2/token", data=TOKEN_FORM)
    client.post("/oauth2/token", data={"grant_type": "password"})
    client.delete(LIST, headers=AUTH)
    client.get("/api/v1/nowhere", headers=AUTH)


# -- validators are compiled once (each at its first use) ---------------------------------


def test_serving_compiles_no_validator(client: FlaskClient) -> None:
    every_public_request(client)  # the app, its specs and the validators used are built by now
    before = spec.compilations
    for _ in range(3):
        every_public_request(client)
    assert spec.compilations == before


def test_a_second_mock_reuses_the_compiled_spec() -> None:
    KontextMock(seed=3).app  # noqa: B018 - building the app is the point
    before = spec.compilations
    KontextMock(seed=4).app  # noqa: B018
    assert spec.compilations == before


@pytest.fixture
def counted_validation(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every jsonschema validation run, as the instances validated."""
    seen: list[Any] = []
    original = Draft202012Validator.iter_errors

    def counting(self: Draft202012Validator, instance: Any, *args: Any) -> Any:
        seen.append(instance)
        return original(self, instance, *args)

    monkeypatch.setattr(Draft202012Validator, "iter_errors", counting)
    return seen


def test_valid_parameters_never_reach_jsonschema(
    client: FlaskClient, counted_validation: list[Any]
) -> None:
    client.get(GET, headers=AUTH)  # warm: the app is built
    counted_validation.clear()
    assert client.get(GET, headers=AUTH).status_code == 200
    assert client.get(f"{LIST}?limit=100&status=all&includeInactive=false",
                      headers=AUTH).status_code == 200
    # The test client's own response check validates bodies; parameters were not validated.
    assert not any(isinstance(x, str | int | bool) for x in counted_validation)


def test_an_invalid_parameter_still_gets_the_validators_message(client: FlaskClient) -> None:
    answer = client.get(f"{LIST}?limit=201", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json["details"][0]["message"] == "201 is greater than the maximum of 200"


# -- parameters remembered per path and query ---------------------------------------------------


QUERIES = st.lists(st.tuples(st.sampled_from(["limit", "status", "includeInactive", "x"]),
                             st.sampled_from(["0", "5", "100", "201", "all", "idle", "true", "",
                                              "nope"])), max_size=3)


@settings(max_examples=60, deadline=None)
@given(queries=st.lists(QUERIES, min_size=1, max_size=6))
def test_remembered_parameters_are_the_parameters_parsed(
    queries: list[list[tuple[str, str]]],
) -> None:
    # each query answered first when its parameters are parsed, then (in the other order,
    # all of them remembered) again: the same answers, refusals included
    client = KontextMock(seed=5, now="2026-01-01T12:00:00Z", frozen=True).app.test_client()
    targets = [f"{LIST}?{'&'.join(f'{k}={v}' for k, v in pairs)}" for pairs in queries]
    first = {t: client.get(t, headers=AUTH) for t in targets}
    for target in reversed(targets):
        again = client.get(target, headers=AUTH)
        assert (again.status_code, again.get_data()) == (
            first[target].status_code, first[target].get_data())


def test_a_handler_gets_remembered_parameters_of_its_own(mock: KontextMock) -> None:
    from kontext_mock.http.routing import Call, Endpoint, Inputs

    op = next(op for op in load_spec() if op.operation_id == "listSessions")
    seen: list[dict[str, Any]] = []

    def handler(call: Call) -> Any:
        seen.append(dict(call.params))
        call.params["limit"] = -1  # (a handler that changes what it was given)
        return None

    endpoint = Endpoint(op, handler, mock.authenticate)
    inputs = Inputs({"applicationId": DEV_APP}, [("limit", "5")],
                    lambda name: "Bearer dev-token" if name == "Authorization" else None, "", b"")
    endpoint(inputs)
    endpoint(inputs)
    assert seen[0] == seen[1] and seen[1]["limit"] == 5


# -- quick parameter checks only say yes where jsonschema does ---------------------------------


def every_parameter() -> list[Parameter]:
    from kontext_mock.http.spec import default_spec_path

    specs = [load_spec(), load_spec(str(default_spec_path("control.yaml")))]
    return [p for s in specs for op in s for p in op.parameters]


def test_every_simple_parameter_of_the_specs_has_a_quick_check() -> None:
    simple = [p for p in every_parameter()
              if p.schema.get("type") in ("string", "integer", "boolean")
              and set(p.schema) <= {"type", "format", "enum", "minimum", "maximum", "default",
                                    "description", "minLength", "maxLength", "pattern"}
              and p.schema.get("format") in (None, "uuid")]
    assert simple
    assert all(p.accepts is not None for p in simple), [p.name for p in simple if not p.accepts]


values = st.one_of(
    st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
    st.text(alphabet=string.hexdigits + "-{}", max_size=40), st.text(max_size=12),
    st.integers(-5, 300), st.booleans(), st.floats(allow_nan=False), st.none(),
    st.sampled_from(["active", "inactive", "all", "true", "false", "1", ""]),
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_quick_checks_accept_only_what_the_validator_accepts(value: Any) -> None:
    for p in every_parameter():
        if p.accepts is not None and p.accepts(value):
            assert next(p.validator.iter_errors(value), None) is None, (p.name, value)


def body_operations() -> list[Any]:
    from kontext_mock.http.spec import default_spec_path

    specs = [load_spec(), load_spec(str(default_spec_path("control.yaml")))]
    return [op for s in specs for op in s if op.body_accepts is not None]


def test_the_token_form_and_the_agent_session_body_have_a_quick_check() -> None:
    assert {"issueToken", "createAgentSession"} <= {op.operation_id for op in body_operations()}


field_names = st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "audience",
                               "name", "id", "organizationId", "extra", "tokenIdentifier",
                               "authenticatedUserId", "clientSessionId", "hostname", "userAgent",
                               "clientInfo", "version"])
bodies = st.one_of(
    st.dictionaries(field_names, values, max_size=6),
    st.dictionaries(field_names, st.sampled_from(["client_credentials", "x", DEV_APP]),
                    max_size=6),
    st.dictionaries(field_names, st.one_of(values, st.dictionaries(field_names, values,
                                                                   max_size=3)), max_size=7),
    values,
)


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_body_quick_checks_accept_only_what_the_validator_accepts(body: Any) -> None:
    for op in body_operations():
        if op.body_accepts(body):
            assert next(op.body_validator.iter_errors(body), None) is None, (op.operation_id, body)


def test_a_bad_token_form_still_gets_the_validators_answer(client: FlaskClient) -> None:
    answer = client.post("/oauth2/token", data={"grant_type": "password"})
    assert answer.status_code == 400
    assert answer.json["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("schema", "value", "accepted"),
    [
        ({"type": "string", "format": "uuid"}, DEV_SESSION, True),
        ({"type": "string", "format": "uuid"}, DEV_SESSION.upper(), True),
        ({"type": "string", "format": "uuid"}, DEV_SESSION + "0", False),
        ({"type": "integer", "minimum": 1, "maximum": 200}, 200, True),
        ({"type": "integer", "minimum": 1, "maximum": 200}, 0, False),
        ({"type": "integer", "minimum": 1}, True, False),
        ({"type": "integer", "exclusiveMaximum": 1.5}, 1, True),
        ({"type": "string", "enum": ["a", "b"]}, "b", True),
        ({"type": "string", "enum": ["a", "b"]}, "c", False),
        ({"type": "string", "pattern": "^[0-9]+$", "maxLength": 3}, "123", True),
        ({"type": "string", "pattern": "^[0-9]+$", "maxLength": 3}, "1234", False),
        ({"type": "boolean"}, False, True),
        ({"type": "boolean"}, "false", False),
        ({"type": "object", "required": ["a"], "properties": {"a": {"const": "x"}}},
         {"a": "x", "b": 1}, True),
        ({"type": "object", "required": ["a"], "properties": {"a": {"const": "x"}}},
         {"b": 1}, False),
        ({"type": "object", "properties": {"a": {"type": "integer"}},
          "additionalProperties": False}, {"a": 1, "b": 1}, False),
        # vendor extensions (an assumption's id) assert nothing: still the quick path
        ({"type": "integer", "maximum": 200, "x-assumption": {"id": "some-rule"}}, 7, True),
        ({"type": "integer", "maximum": 200, "x-assumption": {"id": "some-rule"}}, 201, False),
        # a value or null
        ({"type": ["string", "null"], "maxLength": 2}, None, True),
        ({"type": ["string", "null"], "maxLength": 2}, "ab", True),
        ({"type": ["string", "null"], "maxLength": 2}, "abc", False),
        ({"type": ["string", "null"]}, 1, False),
        ({"oneOf": [{"type": "object"}, {"type": "null"}]}, None, True),
        ({"oneOf": [{"type": "null"}, {"type": "object"}]}, {"a": 1}, True),
        ({"oneOf": [{"type": "object"}, {"type": "null"}]}, "x", False),
    ],
)
def test_quick_check_examples(schema: dict[str, Any], value: Any, accepted: bool) -> None:
    check = quick_check(schema)
    assert check is not None
    assert check(value) is accepted


@pytest.mark.parametrize(
    "schema",
    [{"type": "string", "format": "date-time"}, {"type": "object", "minProperties": 1},
     {"anyOf": []},
     {"type": ["string", "number"]}, {"type": ["integer", "null"], "multipleOf": 2},
     {"oneOf": [{"type": "string"}, {"type": "integer"}]},
     {"oneOf": [{"type": ["string", "null"]}, {"type": "null"}]},
     {"type": "integer", "multipleOf": 2},
     {"$ref": "#/components/schemas/Session"},
     {"type": "object", "properties": {"a": {"type": "object", "minProperties": 1}}},
     {"type": "object", "additionalProperties": {"type": "string"}}],
)
def test_schemas_without_a_quick_form_go_to_the_validator(schema: dict[str, Any]) -> None:
    assert quick_check(schema) is None


# -- listing follows the application's size, not the store's ---------------------------------


def grow_other_applications(mock: KontextMock, apps: int, per_app: int) -> None:
    """Give the store many sessions that belong to other applications of the dev org."""
    template = mock.store.application_sessions(DEV_APP)[0]
    org = mock.config.dev_organization_id
    for a in range(apps):
        app_id = f"00000000-0000-4000-8000-{a:012d}"
        mock.store.add_application(Application(app_id, org, f"other {a}"))
        mock.store.add_sessions([
            Session(id=f"10000000-0000-4000-8000-{a * per_app + s:012d}",
                    application_id=app_id, organization_id=org, name=template.name,
                    status=template.status, created_at=template.created_at,
                    connected_at=template.connected_at, last_active_at=template.last_active_at,
                    token_expires_at=template.token_expires_at)
            for s in range(per_app)
        ])


def test_list_touches_only_the_applications_own_sessions(mock: KontextMock,
                                                           client: FlaskClient) -> None:
    own = len(mock.store.application_sessions(DEV_APP))
    grow_other_applications(mock, apps=20, per_app=100)
    assert len(mock.store.sessions) >= own + 2000
    before = mock.store.sessions_scanned
    assert client.get(f"{LIST}?status=all&limit=200", headers=AUTH).status_code == 200
    assert mock.store.sessions_scanned - before == own


def test_a_limited_list_stops_at_the_limit(mock: KontextMock, client: FlaskClient) -> None:
    before = mock.store.sessions_scanned
    assert len(client.get(f"{LIST}?status=all&limit=3", headers=AUTH).json["items"]) == 3
    assert mock.store.sessions_scanned - before == 3


def test_revoke_all_touches_only_the_applications_own_sessions(mock: KontextMock,
                                                               client: FlaskClient) -> None:
    grow_other_applications(mock, apps=5, per_app=50)
    others = [s for s in mock.store.sessions.values() if s.application_id != DEV_APP]
    cached = {s.id: s.to_json("active") for s in others}
    assert client.delete(LIST, headers=AUTH).status_code == 200
    # Other applications' sessions were neither changed nor had their cache dropped.
    assert all(s.to_json("active") is cached[s.id] for s in others)


# -- serialization is cached while a session does not change ---------------------------------


@pytest.fixture
def serializations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids of the sessions fully serialized (Session.to_public calls)."""
    done: list[str] = []
    original = Session.to_public

    def counting(self: Session, derived: str) -> dict[str, Any]:
        done.append(self.id)
        return original(self, derived)

    monkeypatch.setattr(Session, "to_public", counting)
    return done


def test_reading_an_unchanged_session_again_serializes_nothing(
    client: FlaskClient, serializations: list[str]
) -> None:
    first = client.get(f"{LIST}?status=all&limit=200", headers=AUTH).get_data()
    assert serializations  # the first list wrote each session once
    serializations.clear()
    assert client.get(f"{LIST}?status=all&limit=200", headers=AUTH).get_data() == first
    client.get(GET, headers=AUTH)
    assert serializations == []


def test_unchanged_bytes_are_the_same_object(mock: KontextMock) -> None:
    session = mock.store.sessions[DEV_SESSION]
    assert session.to_json("active") is session.to_json("active")


def test_a_changed_session_is_serialized_again(mock: KontextMock, client: FlaskClient,
                                                serializations: list[str]) -> None:
    client.get(GET, headers=AUTH)
    serializations.clear()
    assert client.delete(LIST, headers=AUTH).status_code == 200
    answer = client.get(GET, headers=AUTH).json["session"]
    assert answer["status"] == "disconnected" and answer["disconnectedAt"]
    assert serializations == [DEV_SESSION]


def test_time_moving_changes_only_the_derived_status(mock: KontextMock, client: FlaskClient,
                                                     serializations: list[str]) -> None:
    before = client.get(GET, headers=AUTH).json["session"]
    assert before["derivedStatus"] == "active"
    serializations.clear()
    mock.advance("PT10M")
    after = client.get(GET, headers=AUTH).json["session"]
    assert after["derivedStatus"] == "idle"
    assert {k: v for k, v in after.items() if k != "derivedStatus"} == {
        k: v for k, v in before.items() if k != "derivedStatus"}
    assert serializations == []  # the cached bytes were spliced, not rebuilt


# -- the inlined derived status is the documented rule -----------------------------------------

instants = st.one_of(
    st.none(),
    st.integers(-7200, 7200).map(
        lambda s: datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(seconds=s)),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["active", "disconnected"]), instants, instants,
       st.integers(1, 3600))
# the edges: a token that expires exactly now; a session last active exactly the idle
# threshold ago (idle), and a moment after (active)
@example("active", datetime(2026, 1, 1, 12, tzinfo=UTC), None, 60)
@example("active", None, datetime(2026, 1, 1, 11, 59, tzinfo=UTC), 60)
@example("active", None, datetime(2026, 1, 1, 11, 59, 1, tzinfo=UTC), 60)
@example("disconnected", datetime(2026, 1, 1, 12, tzinfo=UTC), None, 60)
def test_session_derived_status_is_the_rule(status: str, expires: datetime | None,
                                            last: datetime | None, idle: int) -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    session = Session(id="s", application_id="a", organization_id="o", name="n",
                      status=status,  # type: ignore[arg-type]
                      created_at=now, connected_at=now, last_active_at=last,
                      token_expires_at=expires)
    window = timedelta(seconds=idle)
    assert session.derived_status(now, window) == derived_status(status, expires, last, now,
                                                                 window)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["active", "disconnected"]), instants, instants),
                max_size=12),
       st.sampled_from(sorted(STATUS_FILTERS)), st.integers(1, 15), st.integers(1, 3600))
def test_the_list_loop_applies_the_rule_to_each_session(
    facts: list[tuple[str, datetime | None, datetime | None]], status: str, limit: int,
    idle: int,
) -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    window = timedelta(seconds=idle)
    sessions = [Session(id=str(n), application_id="a", organization_id="o", name="n",
                        status=s,  # type: ignore[arg-type]
                        created_at=now, connected_at=now, last_active_at=last,
                        token_expires_at=expires)
                for n, (s, expires, last) in enumerate(facts)]
    everything = [(x, derived_status(x.status, x.token_expires_at, x.last_active_at, now,
                                     window)) for x in sessions]
    wanted = [(x, d) for x, d in everything if d in STATUS_FILTERS[status]][:limit]
    picked, scanned = pick_sessions(sessions, STATUS_FILTERS[status], limit, now, window)
    assert picked == wanted
    assert scanned == (sessions.index(wanted[-1][0]) + 1 if len(wanted) == limit
                       else len(sessions))


def test_the_list_body_is_the_sessions_in_an_items_array(mock: KontextMock) -> None:
    rows = mock.select_sessions(DEV_APP, "all", 200)
    body = orjson.loads(session_list_json(rows))
    assert body == {"items": [s.to_public(d) for s, d in rows]}
    assert orjson.loads(session_list_json([])) == {"items": []}


# -- the express lane answers as the Flask path does; the pipeline runs around both ------------


def pipeline_of(mock: KontextMock) -> Pipeline:
    found = mock.app.extensions["kontext_pipeline"]
    assert isinstance(found, Pipeline)
    return found


def lane_of(mock: KontextMock) -> Router:
    return pipeline_of(mock).router


@pytest.fixture
def flask_path_calls(mock: KontextMock, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests the Flask path answered (the lane answered the rest)."""
    pipeline = pipeline_of(mock)
    passed: list[str] = []
    original = pipeline.flask

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        passed.append(environ["PATH_INFO"])
        return original(environ, start_response)

    monkeypatch.setattr(pipeline, "flask", counting)
    return passed


def test_the_router_takes_every_operation(client: FlaskClient,
                                                flask_path_calls: list[str]) -> None:
    assert client.get(GET, headers=AUTH).status_code == 200
    assert client.get(f"{LIST}?limit=100&status=all", headers=AUTH).status_code == 200
    assert client.get(LIST, headers=AUTH).status_code == 200
    assert client.delete(LIST, headers=AUTH).status_code == 200
    assert client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "dev-client",
        "client_secret": "dev-secret"}).status_code == 200
    assert client.get("/api/v1/applications", headers=AUTH).status_code == 200
    assert client.get("/_mock/clock").status_code == 200  # the control plane's too
    assert flask_path_calls == []
    assert client.get(f"{LIST}/", headers=AUTH).status_code == 200  # Flask's spelling
    assert flask_path_calls == [f"{LIST}/"]


OTHER_APP = "00000000-0000-4000-8000-000000000001"
PARITY_REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", GET, AUTH),
    ("GET", GET.upper().replace("/API/V1/APPLICATIONS/", "/api/v1/applications/")
     .replace("/SESSIONS/", "/sessions/"), AUTH),
    ("GET", LIST, AUTH),
    ("GET", f"{LIST}?limit=100&status=all", AUTH),
    ("GET", f"{LIST}?status=inactive&limit=3", AUTH),
    ("GET", f"{LIST}?includeInactive=true", AUTH),
    ("GET", f"{LIST}?includeInactive=true&status=active", AUTH),
    ("GET", f"{LIST}?limit=5", {**AUTH, "X-Request-Id": "client-chosen.id-1"}),
    ("GET", f"{LIST}?limit=5", {**AUTH, "X-Request-Id": "not ok!"}),
    ("GET", f"{LIST}?limit=0", AUTH),
    ("GET", f"{LIST}?limit=201", AUTH),
    ("GET", f"{LIST}?limit=5&limit=6", AUTH),
    ("GET", f"{LIST}?status=nope", AUTH),
    ("GET", f"{LIST}?unknown=1&limit=2", AUTH),
    ("GET", f"{LIST}?limit=%35", AUTH),
    ("GET", f"{LIST}?limit=", AUTH),
    ("GET", f"{LIST}/", AUTH),
    ("GET", f"{LIST}/not-a-uuid", AUTH),
    ("GET", f"{LIST}/{OTHER_APP}", AUTH),
    ("GET", f"/api/v1/applications/{OTHER_APP}/sessions", AUTH),
    ("GET", GET, {}),
    ("GET", GET, {"Authorization": "Bearer nope"}),
    ("GET", GET, {"Authorization": "Basic abc"}),
    ("HEAD", GET, AUTH),
]


def answers(mock: KontextMock, express: bool) -> list[tuple[Any, ...]]:
    """Every parity request's answer and journal record, with the lane on or off."""
    lane_of(mock).enabled = express
    client = mock.app.test_client()
    out = []
    for method, path, headers in PARITY_REQUESTS:
        answer = client.open(path, method=method, headers=headers)
        record = mock.journal.entries()[-1]
        for volatile in ("durationMs", "id", "seq"):
            record.pop(volatile, None)
        sent = headers.get("X-Request-Id")

        def which(request_id: str | None, sent: str | None = sent) -> str | None:
            return "the client's" if request_id == sent else "a new one" if request_id else None

        record["requestId"] = which(record.get("requestId"))
        kept = [(k, which(v) if k.lower() == "x-request-id" else v)
                for k, v in answer.headers.items()]
        out.append((method, path, answer.status_code, kept, answer.get_data(), record))
    return out


SETUPS = {
    "plain": lambda m: None,
    "fault-rule": lambda m: m.add_fault("GET", "/api/v1/*", status=503, times=3),
    "rate-limit": lambda m: m.rate_limit(4),
    "strict": lambda m: setattr(m, "config", m.config.with_changes(strict=True)),
    "header-limit": lambda m: setattr(m, "config", m.config.with_changes(max_header_bytes=10)),
    "cors": lambda m: setattr(m, "config", m.config.with_changes(
        cors_origins=("http://localhost:3000",))),
}


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
def test_the_express_lane_answers_as_the_flask_path_does(setup: Any) -> None:
    # Faults, the rate limit, strict mode, limits and CORS are the pipeline's steps: they
    # apply alike whichever handler answers, and so does everything the journal records.
    mocks = [KontextMock(seed=5, now="2026-01-01T12:00:00Z", frozen=True) for _ in range(2)]
    for mock in mocks:
        setup(mock)
    on, off = answers(mocks[0], express=True), answers(mocks[1], express=False)
    for with_lane, without in zip(on, off, strict=True):
        assert with_lane == without


def test_an_unknown_request_hook_switches_the_lane_off(mock: KontextMock, client: FlaskClient,
                                                       flask_path_calls: list[str]) -> None:
    assert lane_of(mock).active
    mock.app.before_request(lambda: None)
    assert not lane_of(mock).active
    client.get(GET, headers=AUTH)
    assert flask_path_calls == [GET]


def test_the_pipeline_steps_are_one_list_each_side_of_the_handler(mock: KontextMock) -> None:
    pipeline = pipeline_of(mock)
    assert [s.__name__ for s in pipeline.before] == [
        "_identify", "_header_limit", "_host", "_origin", "_rate_limit", "_fault"]
    assert [s.__name__ for s in pipeline.after] == [
        "_cors_headers", "_stamp", "_strict", "_durable", "_journal"]


# -- the Host rule's remembered verdicts ----------------------------------------------------------


def test_the_host_rules_remembered_verdicts_follow_the_configuration(mock: KontextMock,
                                                                     client: FlaskClient) -> None:
    def status() -> int:
        return int(client.get(GET, headers=AUTH, base_url="http://kontext.lan").status_code)

    assert status() == 421
    mock.config = mock.config.with_changes(allowed_hosts=("kontext.lan",))
    assert status() == 200
    mock.config = mock.config.with_changes(allowed_hosts=())
    assert status() == 421


def test_the_host_rule_tells_the_control_plane_from_the_api_for_one_host() -> None:
    # bound beyond loopback without an admin token: the API answers any name, the open
    # control plane only loopback names; one Host, two verdicts, in either order
    mock = KontextMock(seed=7, now="2026-01-01T12:00:00Z", frozen=True, host="0.0.0.0")
    client = mock.app.test_client()
    for _ in range(2):
        assert client.get(GET, headers=AUTH, base_url="http://mock.lan").status_code == 200
        control = client.get("/_mock/clock", base_url="http://mock.lan")
        assert control.status_code == 421 and control.json["error"] == "host_refused"


def test_the_host_rule_judges_more_names_than_it_remembers(mock: KontextMock) -> None:
    client = mock.app.test_client()
    pipeline = pipeline_of(mock)
    for n in range(150):
        host = f"name-{n}.test" if n % 2 else f"name-{n}.example.com"  # (.test: reserved)
        status = client.get(GET, headers=AUTH, base_url=f"http://{host}").status_code
        assert status == (200 if n % 2 else 421), host
        assert len(pipeline._hosts[1]) <= 64


def _memos(mock: KontextMock) -> list[dict[Any, Any]]:
    """The router's and its endpoints' memos (what they remember of requests)."""
    pipeline = pipeline_of(mock)
    router = pipeline.router
    endpoints = {e for routes in router._routes.values() for _, e in routes}
    return [router._found, router._queries,
            *(e._parsed for e in endpoints if e._parsed is not None)]


def _memo_bytes(mock: KontextMock) -> int:
    return sum(len(repr(key)) for memo in _memos(mock) for key in memo)


def test_the_memos_stay_small_whatever_clients_send(mock: KontextMock) -> None:
    client = mock.app.test_client()
    before = _memo_bytes(mock)
    for n in range(300):  # long queries, long values of a declared parameter, long paths
        assert client.get(f"{LIST}?limit=5&x{n}={'a' * 10_000}", headers=AUTH).status_code == 200
        client.get(f"{LIST}?status={'b' * 1_000}{n}", headers=AUTH)
        client.get(f"{LIST}/{n}{'c' * 1_000}", headers=AUTH)
    assert _memo_bytes(mock) - before < 20_000
    for n in range(1_500):  # short and distinct: each memo keeps at most its count
        status = ("all", "active", "idle")[n % 3]
        client.get(f"{LIST}?limit={n % 100 + 1}&status={status}&x={n}", headers=AUTH)
    pipeline = pipeline_of(mock)
    assert 0 < len(pipeline.router._queries) <= 1024
    listing = next(e for routes in pipeline.router._routes.values() for _, e in routes
                   if e.op.operation_id == "listSessions")
    assert listing._parsed is not None and 0 < len(listing._parsed) <= 256


def test_an_operation_with_a_header_parameter_checks_it_on_every_call(
        mock: KontextMock, client: FlaskClient) -> None:
    # the same path and query twice: the header, not remembered, is read each time
    mock.add_session()
    target = "/_mock/events?since=0&limit=1"
    assert client.get(target, headers={"Last-Event-ID": "0"}).status_code == 200
    refused = client.get(target, headers={"Last-Event-ID": "not-a-number"})
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["field"] == "Last-Event-ID"


def test_cached_session_json_holds_only_its_own_bytes(mock: KontextMock) -> None:
    # orjson's result carries its whole write buffer; cached per session, that was 8 KiB
    # for a 600-byte session (950 MB for 100,000 sessions).
    rows = mock.select_sessions(DEV_APP, "all", 200)
    for session, _ in rows:
        session.changed()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        total = sum(len(s.to_json(d)) for s, d in rows)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1.5 * total + 200 * 200, (grown, total)


def test_a_remembered_query_given_twice_is_still_refused(client: FlaskClient) -> None:
    assert client.get(f"{LIST}?limit=5", headers=AUTH).status_code == 200
    twice = client.get(f"{LIST}?limit=5&limit=5", headers=AUTH)
    assert twice.status_code == 400
    assert twice.get_json()["details"][0]["field"] == "limit"
