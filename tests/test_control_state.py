"""State export and import: the whole state, clock included, round-trips to the byte,
over HTTP and in Python, for the 10,000-session scenario too; a bad document changes nothing."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import requests
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.http.serve import start

from .conftest import AUTH, DEV_APP, NOW, ValidatingClient


def busy_mock() -> KontextMock:
    """A mock with a bit of everything: scripts, faults, a rate limit, made records."""
    mock = KontextMock(seed=5, now=NOW, frozen=True)
    mock.load_scenario("revoke-in-progress")
    mock.add_session(hostname="alice-mbp.local", lastActiveAt="-3m")
    org = mock.add_organization(name="Initech")
    app = mock.add_application(org.id, name="TPS Reports Bot")
    mock.add_client(client_id="initech", client_secret="pw", scopes=["management:all"],
                    organization_id=org.id, application_id=app.id, token="initech-token")
    mock.add_fault("GET", "/api/v1/*", status=503, probability=0.5, times=10)
    mock.rate_limit(120)
    mock.issue_token("dev-client", "dev-secret")
    mock.advance("45s")
    return mock


def test_export_then_import_gives_an_identical_mock_in_python() -> None:
    original = busy_mock()
    exported = original.export_state()
    copy = KontextMock(seed=1)
    copy.import_state(orjson.loads(orjson.dumps(exported)))  # through JSON, as a file would
    assert orjson.dumps(copy.export_state()) == orjson.dumps(exported)
    # ... and it behaves the same from there on: lifecycles, faults and made sessions
    for mock in (original, copy):
        mock.advance("3m")
        mock.add_session(state="idle")
    assert orjson.dumps(copy.export_state()) == orjson.dumps(original.export_state())
    assert (copy.list_sessions(DEV_APP, status="all", limit=200)
            == original.list_sessions(DEV_APP, status="all", limit=200))


def test_export_then_import_over_http_is_identical(client: FlaskClient) -> None:
    client.post("/_mock/scenarios/load", json={"name": "two-orgs"})
    client.post("/_mock/faults", json={"status": 503, "times": 2})
    client.put("/_mock/rate-limit", json={"perMinute": 120})
    exported = client.get("/_mock/state").json

    other = KontextMock(seed=2).app
    other.test_client_class = ValidatingClient
    other_client = other.test_client()
    answer = other_client.put("/_mock/state", json=exported)
    assert answer.status_code == 200
    assert answer.json["sessions"] == 24
    assert answer.json["clock"] == exported["clock"]
    assert other_client.get("/_mock/state").json == exported
    assert other_client.get("/_mock/faults").json["items"] == exported["faults"]


@pytest.mark.slow
def test_the_large_scenario_round_trips_to_the_byte(mock: KontextMock) -> None:
    mock.load_scenario("large")
    started = time.perf_counter()
    exported = orjson.dumps(mock.export_state())
    export_s = time.perf_counter() - started
    copy = KontextMock(seed=1)
    started = time.perf_counter()
    copy.import_state(orjson.loads(exported))
    import_s = time.perf_counter() - started
    print(f"10,000 sessions: export {export_s:.2f} s, import {import_s:.2f} s,"
          f" {len(exported) / 1e6:.1f} MB")
    assert orjson.dumps(copy.export_state()) == exported
    assert len(copy.store.sessions) == 10_000
    assert (copy.list_sessions(DEV_APP, status="all", limit=200)
            == mock.list_sessions(DEV_APP, status="all", limit=200))


@pytest.mark.slow
def test_the_large_scenario_exports_over_http(mock: KontextMock) -> None:
    # A plain client: validating 10,000 sessions against the schema would be most of the
    # test's time, and smaller exports are validated above.
    client = FlaskClient(mock.app)
    client.post("/_mock/scenarios/load", json={"name": "large"})
    exported = client.get("/_mock/state")
    assert exported.status_code == 200
    assert len(exported.json["sessions"]) == 10_000
    assert orjson.loads(exported.get_data()) == mock.export_state()


def test_the_export_is_json_with_the_clock_and_every_record(mock: KontextMock) -> None:
    exported = mock.export_state()
    assert exported["format"] == "kontext-mock-state/1"
    assert exported["clock"] == {"now": "2026-01-01T12:00:00.000Z", "frozen": True}
    assert len(exported["sessions"]) == len(mock.store.sessions)
    assert {t["token"] for t in exported["tokens"]} >= {"dev-token"}
    assert orjson.loads(orjson.dumps(exported)) == exported


def _broken(exported: dict[str, Any], how: str) -> dict[str, Any]:
    doc = orjson.loads(orjson.dumps(exported))
    if how == "session out of order":
        doc["sessions"][0]["createdAt"] = "2030-01-01T00:00:00.000Z"
    elif how == "unknown application":
        doc["sessions"][0]["applicationId"] = "11111111-1111-4111-8111-111111111111"
    elif how == "token of no client":
        doc["tokens"][0]["clientId"] = "nobody"
    elif how == "clock out of range":
        doc["clock"]["now"] = "0001-01-01T00:00:00Z"
    return doc


@pytest.mark.parametrize(("how", "status", "field"), [
    ("session out of order", 422, "sessions[0].connectedAt"),
    ("unknown application", 422, "sessions"),
    ("token of no client", 422, "tokens[0].clientId"),
    ("clock out of range", 422, "clock.now"),
])
def test_a_bad_state_document_is_refused_whole(
    client: FlaskClient, how: str, status: int, field: str,
) -> None:
    before = client.get("/_mock/state").json
    answer = client.put("/_mock/state", json=_broken(before, how))
    assert answer.status_code == status, answer.json
    assert answer.json["details"][0]["field"] == field
    assert client.get("/_mock/state").json == before
    listed = client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    assert listed.status_code == 200


def test_a_state_document_of_another_shape_is_a_400(client: FlaskClient) -> None:
    before = client.get("/_mock/state").json
    assert client.put("/_mock/state", json={"sessions": []}).status_code == 400
    assert client.put("/_mock/state", json={**before, "format": "v2"}).status_code == 400
    assert client.get("/_mock/state").json == before


def test_restore_returns_faults_rate_limit_and_lifecycles_and_clears_the_journal() -> None:
    mock = busy_mock()
    snap = mock.snapshot()
    exported = orjson.dumps(mock.export_state())
    mock.app.test_client().get(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    mock.clear_faults()
    mock.rate_limit(None)
    mock.advance("1h")  # plays every script to its end
    assert not mock.lifecycles.scripts
    started = time.perf_counter()
    mock.restore(snap)
    print(f"restore: {(time.perf_counter() - started) * 1e3:.2f} ms")
    assert orjson.dumps(mock.export_state()) == exported
    assert len(mock.journal) == 0
    assert mock.faults.rules and mock.limiter.per_minute == 120 and mock.lifecycles.scripts


@pytest.mark.slow
def test_the_large_scenario_imports_over_http_to_the_byte(mock: KontextMock) -> None:
    # A served mock, as `kontext-mock state import` meets it: the state is about 7 MB.
    mock.load_scenario("large")
    exported = FlaskClient(mock.app).get("/_mock/state").get_data()
    assert len(exported) > 5_000_000
    other = KontextMock(seed=1)
    server = start(other.app, "127.0.0.1", 0)
    try:
        started = time.perf_counter()
        answer = requests.put(server.url + "/_mock/state", data=exported, timeout=60,
                              headers={"Content-Type": "application/json"})
        print(f"10,000 sessions imported over HTTP in {time.perf_counter() - started:.2f} s")
        assert (answer.status_code, answer.json()["sessions"]) == (200, 10_000)
        assert requests.get(server.url + "/_mock/state", timeout=60).content == exported
    finally:
        server.stop()
