"""The control plane's spec (``mock_server/control.yaml``): it validates, every operation
is served, and schemathesis (every phase, every check) finds no failure against the mock."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
import yaml
from openapi_spec_validator import validate
from schemathesis.engine import events as engine_events
from schemathesis.engine.recorder import ScenarioRecorder

from kontext_mock import KontextMock
from kontext_mock.http.control import handlers
from kontext_mock.http.serve import start
from kontext_mock.http.spec import default_spec_path, load_spec

from .conftest import NOW

CONTROL = default_spec_path("control.yaml")
ADMIN = "control-spec-admin-token"


def test_the_control_spec_is_valid_openapi_3_1() -> None:
    document = yaml.safe_load(CONTROL.read_text())
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert all(path.startswith("/_mock/") for path in document["paths"])


def test_every_control_operation_is_served_and_documented(mock: KontextMock) -> None:
    spec = load_spec(str(CONTROL))
    implemented = set(handlers(mock, spec))
    assert implemented == set(spec.operations)
    rules = {rule.endpoint for rule in mock.app.url_map.iter_rules()}
    assert implemented <= rules


def test_the_control_spec_is_served_as_json(client: Any) -> None:
    answer = client.get("/_mock/openapi.json")
    assert answer.status_code == 200
    assert answer.json["info"]["title"] == "kontext-mock control plane"


def _failures(recorder: ScenarioRecorder) -> list[str]:
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is not None:
                case = recorder.cases[case_id].value
                found.append(f"{case.method} {case.path}: {check.name}: "
                              f"{check.failure_info.failure.title}")
    return found


@pytest.mark.slow
def test_schemathesis_all_phases_and_checks_find_no_failure() -> None:
    # The admin token is required here, so that the auth checks have something to check;
    # event streams end quickly so that a generated request to one does not hang.
    mock = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN, max_sessions=3000,
                       event_stream_max=timedelta(milliseconds=50))
    config = schemathesis.Config.from_dict({
        "seed": 20261128,
        "headers": {"Authorization": f"Bearer {ADMIN}"},
        "generation": {"max-examples": 8},
        "checks": {
            # Bodies the schema allows but the mock cannot apply (a duration like "P",
            # times out of order) are answered 422, as control.yaml documents; /_mock/ui
            # answers its documented redirect to /_mock/ui/.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "308", "401", "403", "404", "409", "422"],
            },
        },
    })
    # Over real HTTP: the engine's in-process WSGI transport does not run on this werkzeug.
    server = start(mock.app, "127.0.0.1", 0)
    config.projects.default.update(base_url=server.url)
    schema = schemathesis.openapi.from_path(CONTROL, config=config)
    started = time.perf_counter()
    failures: list[str] = []
    errors: list[str] = []
    cases = 0
    try:
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, engine_events.ScenarioFinished):
                cases += len(event.recorder.cases)
                failures.extend(_failures(event.recorder))
            elif isinstance(event, engine_events.NonFatalError | engine_events.FatalError):
                errors.append(str(getattr(event, "value", None) or event))
    finally:
        server.stop()
    elapsed = time.perf_counter() - started
    print(f"schemathesis: {cases} cases in {elapsed:.1f} s, {len(failures)} failures")
    assert not errors, errors[:5]
    assert not failures, "\n".join(sorted(set(failures))[:30])
    assert cases > 200
