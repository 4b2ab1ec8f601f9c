"""Faults and rate limiting: injected latency, error statuses with the documented body,
dropped connections, counts and seeded probabilities; 120 requests a minute per
credential on the mock's clock."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from kontext_mock import ApiError, KontextMock
from kontext_mock.core.faults import ConnectionDroppedError
from kontext_mock.http.spec import load_spec

from .conftest import AUTH, DEV_APP, NOW, LiveMock

SESSIONS = f"/api/v1/applications/{DEV_APP}/sessions"
ERROR_SCHEMA = load_spec().validator({"$ref": "#/components/schemas/Error"})


def timed(http: requests.Session, url: str) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = http.get(url, headers=AUTH)
    return time.perf_counter() - started, answer


# -- latency, status, drop ----------------------------------------------------------------------


def test_injected_latency_is_never_shorter_than_asked(live: LiveMock) -> None:
    # A lower bound is what a latency rule promises; how much longer a loaded machine
    # takes is the benchmark's business, not a test's.
    url = live.url + SESSIONS
    plain = requests.Session()
    live.mock.add_fault("GET", "/api/v1/applications/*/sessions", latency=0.25, times=3)
    for _ in range(3):
        elapsed, answer = timed(plain, url)
        assert answer.status_code == 200 and elapsed >= 0.25
    assert timed(plain, url)[1].status_code == 200
    faults = [e["fault"] for e in live.mock.journal.entries()]
    assert faults[:3] == ["fault-1"] * 3 and faults[3] is None  # the rule is spent
    assert all(e["durationMs"] >= 250 for e in live.mock.journal.entries()[:3])


def test_a_latency_range_is_drawn_within_the_range(live: LiveMock) -> None:
    live.mock.add_fault("GET", "/api/v1/*", latency=(0.05, 0.15), times=4, seed=3)
    # the draws are the rule's seeded generator's: the same four every run
    draws = random.Random(3)
    expected = [0.05 + 0.1 * draws.random() for _ in range(4)]
    plain = requests.Session()
    for delay in expected:
        elapsed, answer = timed(plain, live.url + SESSIONS)
        assert answer.status_code == 200
        assert elapsed >= delay
    entries = live.mock.journal.entries()
    assert [e["fault"] for e in entries] == ["fault-1"] * 4
    assert all(e["durationMs"] >= d * 1000 for e, d in zip(entries, expected, strict=True))


def test_an_injected_503_carries_the_documented_error_body(live: LiveMock) -> None:
    fault_id = live.mock.add_fault("GET", "/api/v1/applications/*/sessions", status=503, times=1)
    plain = requests.Session()
    answer = plain.get(live.url + SESSIONS, headers=AUTH)
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["x-request-id"]
    body = answer.json()
    assert list(ERROR_SCHEMA.iter_errors(body)) == []
    assert body["error"] == "service_unavailable"
    assert fault_id in body["message"]
    assert plain.get(live.url + SESSIONS, headers=AUTH).status_code == 200  # times=1
    assert [e["status"] for e in live.mock.journal.entries()] == [503, 200]
    assert live.mock.journal.entries()[0]["fault"] == fault_id


@pytest.mark.parametrize(("status", "code", "header"), [
    (429, "rate_limited", "Retry-After"),
    (401, "unauthorized", "WWW-Authenticate"),
    (500, "internal_error", None),
    (404, "not_found", None),
])
def test_injected_statuses_the_spec_documents_validate_against_it(
    client: FlaskClient, mock: KontextMock, status: int, code: str, header: str | None,
) -> None:
    mock.add_fault("GET", SESSIONS, status=status, times=1)
    answer = client.get(SESSIONS, headers=AUTH)  # the validating client: the spec's shape
    assert (answer.status_code, answer.json["error"]) == (status, code)
    if header:
        assert answer.headers[header]


def test_a_dropped_connection_gets_no_answer_at_all(live: LiveMock) -> None:
    live.mock.add_fault("DELETE", "/api/v1/*", drop=True, times=1)
    plain = requests.Session()
    with pytest.raises(requests.ConnectionError):
        plain.delete(live.url + SESSIONS, headers=AUTH)
    # the request never ran: nothing was revoked, and the next one goes through
    assert len(live.mock.list_sessions(DEV_APP)) > 0
    assert plain.delete(live.url + SESSIONS, headers=AUTH).json()["success"] is True
    statuses = [e["status"] for e in live.mock.journal.entries(method="DELETE")]
    assert statuses == [None, 200]


def test_a_dropped_connection_in_process_raises(mock: KontextMock) -> None:
    mock.add_fault(drop=True)
    with pytest.raises(ConnectionDroppedError, match="fault-1"):
        mock.app.test_client().get(SESSIONS, headers=AUTH)


def test_a_probability_is_seeded_so_a_run_can_be_replayed() -> None:
    def pattern(seed: int) -> list[int]:
        mock = KontextMock(seed=1, now=NOW, frozen=True)
        mock.add_fault(status=503, probability=0.5, seed=seed)
        http = mock.app.test_client()
        return [http.get(SESSIONS, headers=AUTH).status_code for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert first != pattern(8)
    assert 8 <= first.count(503) <= 32


def test_rules_match_by_method_and_path_and_never_touch_the_control_plane(
    client: FlaskClient, mock: KontextMock,
) -> None:
    mock.add_fault("POST", "/oauth2/token", status=429)
    mock.add_fault("*", "*", status=500, times=1)
    assert client.get("/_mock/clock").status_code == 200
    assert client.get(SESSIONS, headers=AUTH).status_code == 500
    assert client.get(SESSIONS, headers=AUTH).status_code == 200
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                        headers={"Authorization": "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0"})
    assert token.status_code == 429


def test_faults_are_listed_and_removed_over_http(client: FlaskClient) -> None:
    made = client.post("/_mock/faults", json={"method": "get", "path": "/api/v1/*",
                                              "status": 500, "times": 2})
    assert made.status_code == 201
    fault = made.json["fault"]
    assert (fault["method"], fault["remaining"], fault["hits"]) == ("GET", 2, 0)
    assert client.get(SESSIONS, headers=AUTH).status_code == 500
    assert client.get("/_mock/faults").json["items"][0]["remaining"] == 1
    assert client.delete(f"/_mock/faults/{fault['id']}").json == {"removed": 1}
    assert client.delete(f"/_mock/faults/{fault['id']}").status_code == 404
    client.post("/_mock/faults", json={"latency": 0})
    assert client.delete("/_mock/faults").json == {"removed": 1}


@pytest.mark.parametrize("body", [
    {"kind": "explode"},
    {"status": 503, "corrupt": True},
    {},
    {"drop": False},
    {"status": 200},
    {"latency": -1},
    {"latency": [0.5, 0.1, 0.2]},
    {"status": 503, "probability": 0},
    {"status": 503, "times": 0},
    {"status": 503, "path": "api/v1/*"},
])
def test_an_unknown_or_impossible_fault_is_a_4xx_and_changes_nothing(
    client: FlaskClient, body: dict[str, Any],
) -> None:
    answer = client.post("/_mock/faults", json=body)
    assert answer.status_code in (400, 422)
    assert client.get("/_mock/faults").json == {"items": []}
    assert client.get(SESSIONS, headers=AUTH).status_code == 200


def test_an_impossible_fault_raises_in_python(mock: KontextMock) -> None:
    with pytest.raises(ApiError, match="needs an effect"):
        mock.add_fault()
    with pytest.raises(ApiError, match="400-599"):
        mock.add_fault(status=200)
    with pytest.raises(ApiError, match="low <= high"):
        mock.add_fault(latency=(0.5, 0.1))
    with pytest.raises(TypeError):
        mock.add_fault(explode=True)  # type: ignore[call-arg]
    assert mock.faults.rules == []


# -- rate limiting -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_121st_request_in_a_virtual_minute_is_refused_until_the_clock_moves_on(
    client: FlaskClient, mock: KontextMock,
) -> None:
    assert client.put("/_mock/rate-limit", json={"perMinute": 120}).json == {"perMinute": 120}
    statuses = [client.get(SESSIONS, headers=AUTH).status_code for _ in range(120)]
    assert statuses == [200] * 120
    refused = client.get(SESSIONS, headers=AUTH)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.json["error"] == "rate_limited"
    mock.advance("59s")
    assert client.get(SESSIONS, headers=AUTH).headers["Retry-After"] == "1"
    mock.advance("1s")
    assert client.get(SESSIONS, headers=AUTH).status_code == 200


def test_retry_after_counts_from_the_oldest_request_in_the_window(
    client: FlaskClient, mock: KontextMock,
) -> None:
    mock.rate_limit()  # the production figure by one switch
    assert mock.limiter.per_minute == 120
    client.get(SESSIONS, headers=AUTH)
    mock.advance("30s")
    for _ in range(119):
        assert client.get(SESSIONS, headers=AUTH).status_code == 200
    refused = client.get(SESSIONS, headers=AUTH)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "30")
    mock.advance("30s")  # the first request leaves the window: one more may pass
    assert client.get(SESSIONS, headers=AUTH).status_code == 200
    assert client.get(SESSIONS, headers=AUTH).status_code == 429


def test_the_limit_is_per_credential(client: FlaskClient, mock: KontextMock) -> None:
    mock.rate_limit(2)
    for _ in range(2):
        client.get(SESSIONS, headers=AUTH)
    assert client.get(SESSIONS, headers=AUTH).status_code == 429
    other = mock.issue_token("dev-client", "dev-secret")["access_token"]
    assert client.get(SESSIONS, headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_rate_limiting_is_off_by_default_and_switched_off_with_null(
    client: FlaskClient, mock: KontextMock,
) -> None:
    assert client.get("/_mock/rate-limit").json == {"perMinute": None}
    mock.rate_limit(1)
    client.get(SESSIONS, headers=AUTH)
    assert client.get(SESSIONS, headers=AUTH).status_code == 429
    assert client.put("/_mock/rate-limit", json={"perMinute": None}).json == {"perMinute": None}
    assert client.get(SESSIONS, headers=AUTH).status_code == 200
    assert client.put("/_mock/rate-limit", json={"perMinute": 0}).status_code == 400
