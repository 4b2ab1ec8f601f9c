"""The request journal: every public API request, with secrets redacted, queryable by
method and path, clearable; what a test asserts on ("my client sent exactly one revoke")."""

from __future__ import annotations

import base64

from flask.testing import FlaskClient

from kontext_mock import KontextMock

from .conftest import AUTH, DEV_APP, LiveMock

SESSIONS = f"/api/v1/applications/{DEV_APP}/sessions"


def test_a_request_is_recorded_with_what_the_client_sent(client: FlaskClient) -> None:
    answer = client.get(f"{SESSIONS}?limit=5&status=all", headers={
        **AUTH, "X-Request-Id": "req-42", "User-Agent": "my-client/1.0"})
    (entry,) = client.get("/_mock/journal").json["items"]
    assert entry["method"] == "GET"
    assert entry["path"] == SESSIONS
    assert entry["query"] == {"limit": "5", "status": "all"}
    assert entry["headers"]["authorization"] == "Bearer [redacted]"
    assert entry["headers"]["user-agent"] == "my-client/1.0"
    assert entry["status"] == answer.status_code == 200
    assert entry["requestId"] == "req-42" == answer.headers["x-request-id"]
    assert entry["time"] == "2026-01-01T12:00:00.000Z"
    assert entry["body"] is None and entry["fault"] is None
    assert entry["durationMs"] >= 0


def test_my_client_sent_exactly_one_revoke(client: FlaskClient, mock: KontextMock) -> None:
    client.get(SESSIONS, headers=AUTH)
    client.delete(SESSIONS, headers=AUTH)
    client.get(f"{SESSIONS}?status=all", headers=AUTH)
    revokes = mock.journal.entries(method="DELETE", path="/api/v1/applications/*/sessions")
    assert len(revokes) == 1
    assert revokes[0]["status"] == 200
    over_http = client.get("/_mock/journal?method=delete&path=/api/v1/applications/*/sessions")
    assert over_http.json["items"] == revokes
    assert len(mock.journal.entries(method="GET")) == 2


def test_secrets_in_bodies_and_basic_credentials_are_redacted(client: FlaskClient,
                                                              mock: KontextMock) -> None:
    client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                       "client_id": "dev-client", "client_secret": "dev-secret"})
    basic = base64.b64encode(b"dev-client:dev-secret").decode()
    client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}"})
    client.post("/api/v1/agent-sessions", headers=AUTH, json={
        "tokenIdentifier": "tok_1", "authenticatedUserId": "u1", "clientSessionId": "c1"})
    form, basic_entry, agent = mock.journal.entries()
    assert form["body"] == {"grant_type": "client_credentials", "client_id": "dev-client",
                            "client_secret": "[redacted]"}
    assert basic_entry["headers"]["authorization"] == "Basic [redacted]"
    assert agent["body"]["tokenIdentifier"] == "tok_1"
    everything = str(mock.journal.entries())
    assert "dev-secret" not in everything and basic not in everything
    assert "dev-token" not in everything


def test_unknown_routes_and_refused_requests_are_recorded_too(client: FlaskClient,
                                                             mock: KontextMock) -> None:
    client.get("/api/v1/nowhere", headers=AUTH)
    client.get(SESSIONS)  # no token
    client.get(f"{SESSIONS}?limit=0", headers=AUTH)
    assert [e["status"] for e in mock.journal.entries()] == [404, 401, 400]


def test_the_control_plane_is_not_journaled(client: FlaskClient, mock: KontextMock) -> None:
    client.get("/_mock/clock")
    client.post("/_mock/clock/advance", json={"by": 1})
    assert len(mock.journal) == 0


def test_the_journal_is_cleared_over_http_and_in_python(client: FlaskClient,
                                                        mock: KontextMock) -> None:
    for _ in range(3):
        client.get(SESSIONS, headers=AUTH)
    assert client.delete("/_mock/journal").json == {"removed": 3}
    assert client.get("/_mock/journal").json == {"items": []}
    client.get(SESSIONS, headers=AUTH)
    assert mock.journal.clear() == 1 and len(mock.journal) == 0


def test_the_journal_keeps_the_time_on_the_mocks_clock(client: FlaskClient,
                                                      mock: KontextMock) -> None:
    client.get(SESSIONS, headers=AUTH)
    mock.advance("10m")
    client.get(SESSIONS, headers=AUTH)
    assert [e["time"] for e in mock.journal.entries()] == [
        "2026-01-01T12:00:00.000Z", "2026-01-01T12:10:00.000Z"]


def test_a_restore_clears_the_journal(mock: KontextMock) -> None:
    snap = mock.snapshot()
    mock.app.test_client().get(SESSIONS, headers=AUTH)
    assert len(mock.journal) == 1
    mock.restore(snap)
    assert len(mock.journal) == 0


def test_requests_over_real_http_are_journaled(live: LiveMock) -> None:
    live.http.get(live.url + SESSIONS, headers=AUTH)
    (entry,) = live.mock.journal.entries()
    assert entry["headers"]["host"].startswith("127.0.0.1:")
    assert entry["status"] == 200
