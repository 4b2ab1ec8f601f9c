"""Bad input: a documented 4xx with a JSON body that says what was wrong, never a 500,
and never a change of state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock

from .conftest import AUTH, DEV_APP, DEV_SESSION

LIST = f"/api/v1/applications/{DEV_APP}/sessions"


@pytest.fixture(autouse=True)
def state_is_unchanged(mock: KontextMock) -> Iterator[None]:
    """Every bad request here must leave the mock exactly as it was."""
    before = mock.export_state() if hasattr(mock, "export_state") else None
    sessions = {a: mock.list_sessions(a, status="all") for a in mock.application_ids()}
    yield
    assert {a: mock.list_sessions(a, status="all") for a in mock.application_ids()} == sessions
    if before is not None:
        assert mock.export_state() == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/applications/not-a-uuid/sessions", "applicationId"),
        ("/api/v1/applications/550e8400e29b41d4a716446655440000x/sessions", "applicationId"),
        (f"{LIST}/44444444", "sessionId"),
        ("/api/v1/applications/%20/sessions", "applicationId"),
    ],
)
def test_non_uuid_ids_are_400(client: FlaskClient, path: str, field: str) -> None:
    for method in ("get", "delete") if path.endswith("/sessions") else ("get",):
        response = getattr(client, method)(path, headers=AUTH)
        assert response.status_code == 400
        assert response.json["error"] == "validation_error"
        assert response.json["details"][0]["field"] == field
        assert response.json["details"][0]["location"] == "path"


def test_non_uuid_agent_session_id_is_400(client: FlaskClient) -> None:
    response = client.post("/api/v1/agent-sessions/xyz/heartbeat", headers=AUTH)
    assert response.status_code == 400 and response.json["details"][0]["field"] == "sessionId"


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=99999999999999999999",
     "status=foo", "status=ACTIVE", "status=", "includeInactive=yes", "includeInactive=1",
     "limit=5&limit=6", "status=active&status=all"],
)
def test_bad_query_parameters_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"{LIST}?{query}", headers=AUTH)
    assert response.status_code == 400
    body = response.json
    assert body["error"] == "validation_error"
    assert body["details"][0]["location"] == "query"
    assert body["details"][0]["field"] == query.split("=")[0]
    assert body["details"][0]["field"] in body["message"]


def test_limit_bounds_are_accepted(client: FlaskClient) -> None:
    for limit in (1, 200):
        assert client.get(f"{LIST}?limit={limit}", headers=AUTH).status_code == 200


def test_unknown_application_is_404(client: FlaskClient) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for response in (
        client.get(f"/api/v1/applications/{unknown}/sessions", headers=AUTH),
        client.delete(f"/api/v1/applications/{unknown}/sessions", headers=AUTH),
        client.get(f"/api/v1/applications/{unknown}/sessions/{DEV_SESSION}", headers=AUTH),
        client.get(f"{LIST}/{unknown}", headers=AUTH),
        client.post(f"/api/v1/agent-sessions/{unknown}/heartbeat", headers=AUTH),
    ):
        assert response.status_code == 404
        assert response.json["error"] == "not_found"


@pytest.mark.parametrize("path", ["/", "/api/v1", "/api/v1/application", "/api/v2/sessions",
                                  "/api/v1/applications/x/sessions/y/z"])
def test_unknown_routes_are_404_json(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.json["error"] == "not_found" and path in response.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", LIST, {"GET", "DELETE"}),
        ("post", LIST, {"GET", "DELETE"}),
        ("patch", LIST, {"GET", "DELETE"}),
        ("delete", f"{LIST}/{DEV_SESSION}", {"GET"}),
        ("get", "/oauth2/token", {"POST"}),
        ("get", "/api/v1/agent-sessions", {"POST"}),
    ],
)
def test_wrong_methods_are_405_json(client: FlaskClient, method: str, path: str,
                                    allowed: set[str]) -> None:
    response = getattr(client, method)(path, headers=AUTH)
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[]", "application/json", 400),
        ('{"tokenIdentifier": 5}', "application/json", 400),
        ('{"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": ""}',
         "application/json", 400),
        ("", "application/json", 400),
        ("tokenIdentifier=t", "application/x-www-form-urlencoded", 415),
        ('{"tokenIdentifier": "t"}', "text/plain", 415),
        ('{"tokenIdentifier": "t"}', None, 415),
        (b'{"tokenIdentifier": "\xff\xfe"}', "application/json", 400),
    ],
)
def test_malformed_json_bodies_are_refused(client: FlaskClient, data: str | bytes,
                                           content_type: str | None, status: int) -> None:
    headers = dict(AUTH)
    kwargs = {"data": data}
    if content_type:
        kwargs["content_type"] = content_type
    response = client.post("/api/v1/agent-sessions", headers=headers, **kwargs)
    assert response.status_code == status
    assert response.json["error"] in {"validation_error", "unsupported_media_type"}
    assert response.json["message"]


def test_oversized_body_is_413_json(client: FlaskClient, mock: KontextMock) -> None:
    big = '{"tokenIdentifier": "' + "x" * (mock.config.max_body_bytes + 10) + '"}'
    response = client.post("/api/v1/agent-sessions", data=big, content_type="application/json",
                           headers=AUTH)
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


def test_no_route_ever_answers_with_a_traceback(client: FlaskClient) -> None:
    for path in ("/api/v1/applications/%ff%fe/sessions", f"{LIST}?limit=%ff", "/%00"):
        response = client.get(path, headers=AUTH)
        assert 400 <= response.status_code < 500
        assert response.is_json and "Traceback" not in response.get_data(as_text=True)


def test_too_deep_for_the_parser_is_told_by_the_texts_nesting_not_its_message() -> None:
    import orjson

    from kontext_mock.core.nesting import JsonDepthError, parse_json

    with pytest.raises(JsonDepthError):
        parse_json(b"[" * 2000 + b"]" * 2000)
    with pytest.raises(orjson.JSONDecodeError):  # brackets inside a string are no nesting
        parse_json(b'"' + b"[" * 2000 + b'" x')
