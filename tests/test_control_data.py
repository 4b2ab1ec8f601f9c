"""Reset and seed, and data given explicitly: organizations, applications, OAuth clients
with scopes, and sessions with any field given (the rest faked, coherent)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from kontext_mock import ApiError, KontextMock

from .conftest import AUTH, DEV_APP, DEV_SESSION, NOW

T0 = datetime.fromisoformat(NOW.replace("Z", "+00:00"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def states(mock: KontextMock, app_id: str = DEV_APP) -> Counter[str]:
    return Counter(s["derivedStatus"] for s in mock.list_sessions(app_id, status="all", limit=200))


# -- reset and seed ------------------------------------------------------------------------------


def test_reset_empty_keeps_only_the_dev_records(client: FlaskClient) -> None:
    answer = client.post("/_mock/reset", json={"empty": True})
    assert answer.status_code == 200
    assert {k: answer.json[k] for k in ("organizations", "applications", "clients", "sessions")} == {
        "organizations": 1, "applications": 1, "clients": 1, "sessions": 0}
    listed = client.get(f"/api/v1/applications/{DEV_APP}/sessions?status=all", headers=AUTH)
    assert listed.json == {"items": []}


def test_seeding_with_counts_and_a_status_mix_gives_exactly_those(
    client: FlaskClient, mock: KontextMock,
) -> None:
    answer = client.post("/_mock/reset", json={
        "seed": 21, "organizations": 2, "applications": 3, "sessions": 10,
        "statusMix": {"active": 0.5, "idle": 0.2, "expired": 0.1, "disconnected": 0.2}})
    assert answer.json["organizations"] == 3
    assert answer.json["applications"] == 7
    assert answer.json["sessions"] == 70
    for app_id in mock.application_ids():
        assert states(mock, app_id) == Counter(active=5, idle=2, expired=1, disconnected=2)


def test_a_reset_without_a_body_returns_to_the_configured_seed(client: FlaskClient,
                                                               mock: KontextMock) -> None:
    seeded = orjson.dumps(mock.export_state())
    client.post(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    client.delete(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    assert client.post("/_mock/reset").status_code == 200
    assert orjson.dumps(mock.export_state()) == seeded


def test_the_same_seed_gives_the_same_bytes_in_python() -> None:
    def seeded(seed: int) -> bytes:
        mock = KontextMock(now=NOW, frozen=True)
        mock.reset(seed=seed, sessions=30, status_mix={"active": 1, "disconnected": 1})
        return orjson.dumps(mock.export_state())

    assert seeded(4) == seeded(4)
    assert seeded(4) != seeded(5)


def test_too_many_sessions_is_a_422_and_changes_nothing(client: FlaskClient) -> None:
    before = client.get("/_mock/state").json
    answer = client.post("/_mock/reset", json={"organizations": 50, "applications": 50,
                                               "sessions": 1000})
    assert answer.status_code == 422
    assert "at most 100000" in answer.json["message"]
    assert client.get("/_mock/state").json == before


def test_reset_clears_faults_rate_limit_lifecycles_and_journal(mock: KontextMock) -> None:
    mock.add_fault(status=503)
    mock.rate_limit()
    mock.update_session(DEV_SESSION, lifecycle={"until": "+10m"})
    mock.app.test_client().get(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    assert len(mock.journal) == 1
    mock.reset()
    assert (mock.faults.rules, mock.limiter.per_minute, mock.lifecycles.scripts,
            len(mock.journal)) == ([], None, {}, 0)


# -- organizations, applications, clients ----------------------------------------------------------


def test_organizations_applications_and_clients_are_made_over_http(client: FlaskClient) -> None:
    org = client.post("/_mock/organizations", json={"name": "Initech"})
    assert org.status_code == 201
    org_id = org.json["organization"]["id"]
    app = client.post("/_mock/applications", json={"organizationId": org_id, "name": "TPS Bot"})
    assert app.status_code == 201
    app_id = app.json["application"]["id"]
    assert app.json["application"] == {"id": app_id, "organizationId": org_id, "name": "TPS Bot"}
    made = client.post("/_mock/clients", json={
        "clientId": "initech-reader", "clientSecret": "s3cret",
        "scopes": ["management:applications:read"], "organizationId": org_id,
        "token": "initech-reader-token"})
    assert made.status_code == 201
    assert made.json["client"] == {
        "clientId": "initech-reader", "organizationId": org_id, "applicationId": None,
        "scopes": ["management:applications:read"], "name": ""}

    # The client's scopes hold: it reads its organization's application, but may not revoke.
    token = client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "initech-reader",
        "client_secret": "s3cret"}).json
    assert token["scope"] == "management:applications:read"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get(f"/api/v1/applications/{app_id}/sessions", headers=bearer).json == {
        "items": []}
    assert client.delete(f"/api/v1/applications/{app_id}/sessions", headers=bearer).status_code == 403
    static = {"Authorization": "Bearer initech-reader-token"}
    assert client.get(f"/api/v1/applications/{app_id}/sessions", headers=static).status_code == 200
    assert client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=static).status_code == 404


def test_a_client_made_without_scopes_gets_every_management_scope(client: FlaskClient) -> None:
    made = client.post("/_mock/clients", json={
        "clientId": "no-scopes", "clientSecret": "s3cret", "token": "no-scopes-token"})
    assert made.status_code == 201
    assert made.json["client"]["scopes"] == ["management:all"]
    bearer = {"Authorization": "Bearer no-scopes-token"}
    assert client.delete(f"/api/v1/applications/{DEV_APP}/sessions", headers=bearer).status_code == 200


def test_every_seeded_organization_has_a_credential_of_its_own(
    client: FlaskClient, mock: KontextMock,
) -> None:
    mock.reset(organizations=2)
    for number, org_id in enumerate(list(mock.store.organizations)[1:], start=2):
        token = {"Authorization": f"Bearer dev-token-{number}"}
        for app_id in mock.application_ids(org_id):
            assert client.get(f"/api/v1/applications/{app_id}/sessions", headers=token).json["items"]
        assert client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=token).status_code == 404
        fetched = client.post("/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": f"dev-client-{number}",
            "client_secret": f"dev-secret-{number}"})
        assert fetched.status_code == 200


def test_the_same_records_are_made_in_python(mock: KontextMock) -> None:
    org = mock.add_organization(id="acme", name="Acme")
    app = mock.add_application("acme", name="Road Runner Tracker")
    client = mock.add_client(client_id="acme-agent", client_secret="pw",
                             scopes=["management:all"], application_id=app.id)
    assert (org.id, app.organization_id, client.organization_id) == ("acme", "acme", "acme")
    session = mock.add_session(app.id, "idle", hostname="wile-e.local")
    assert session["agentId"] == app.id and session["organizationId"] == "acme"
    assert session["derivedStatus"] == "idle"


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/_mock/organizations", {"id": "0b8d6c84-5f2e-4c1a-9d3e-1f7a2b3c4d5e"}, 409),
    ("/_mock/applications", {"id": DEV_APP}, 409),
    ("/_mock/applications", {"organizationId": "nobody"}, 404),
    ("/_mock/clients", {"clientId": "dev-client", "clientSecret": "x",
                        "scopes": ["management:all"]}, 409),
    ("/_mock/clients", {"clientId": "c", "clientSecret": "x", "scopes": ["root"]}, 400),
    ("/_mock/clients", {"clientId": "c", "clientSecret": "x", "scopes": ["management:all"],
                        "applicationId": "11111111-1111-4111-8111-111111111111"}, 404),
    ("/_mock/clients", {"clientId": "c", "clientSecret": "x", "scopes": ["management:all"],
                        "token": "dev-token"}, 409),
])
def test_a_conflicting_or_unknown_record_is_refused_and_changes_nothing(
    client: FlaskClient, path: str, body: dict[str, Any], status: int,
) -> None:
    before = client.get("/_mock/state").json
    assert client.post(path, json=body).status_code == status
    assert client.get("/_mock/state").json == before


# -- sessions --------------------------------------------------------------------------------------


def test_a_session_keeps_the_fields_given_and_fakes_the_rest_coherently(
    client: FlaskClient,
) -> None:
    answer = client.post("/_mock/sessions", json={
        "hostname": "alice-mbp.local", "lastActiveAt": "-3m",
        "clientInfo": {"name": "claude-code", "version": "2.1.4"}})
    assert answer.status_code == 201
    session = answer.json["session"]
    assert session["hostname"] == "alice-mbp.local"
    assert session["name"] == "claude-code@alice-mbp.local"
    assert session["lastActiveAt"] == "2026-01-01T11:57:00.000Z"
    assert session["derivedStatus"] == "active"
    assert at(session["createdAt"]) <= at(session["connectedAt"]) <= at(session["lastActiveAt"])
    assert session["disconnectedAt"] is None
    assert session["userAgent"]  # faked
    listed = client.get(f"/api/v1/applications/{DEV_APP}/sessions/{session['id']}", headers=AUTH)
    assert listed.json["session"] == session


@pytest.mark.parametrize("state", ["active", "idle", "expired", "disconnected"])
def test_a_session_is_made_in_the_state_asked_for(mock: KontextMock, state: str) -> None:
    session = mock.add_session(state=state)
    assert session["derivedStatus"] == state
    assert (session["disconnectedAt"] is not None) == (state == "disconnected")


def test_explicit_times_win_and_faked_ones_move_around_them(mock: KontextMock) -> None:
    session = mock.add_session(createdAt="-2m", lastActiveAt="-90s", id=(
        "0d4f1c2a-1111-4222-8333-444455556666"))
    assert session["id"] == "0d4f1c2a-1111-4222-8333-444455556666"
    assert session["createdAt"] == "2026-01-01T11:58:00.000Z"
    assert at(session["createdAt"]) <= at(session["connectedAt"]) <= at(session["lastActiveAt"])
    disconnected = mock.add_session(status="disconnected", disconnectedAt="2026-01-01T11:00:00Z")
    assert disconnected["derivedStatus"] == "disconnected"
    assert at(disconnected["lastActiveAt"]) <= at(disconnected["disconnectedAt"])


def test_made_sessions_are_the_same_for_the_same_seed() -> None:
    def made() -> list[dict[str, Any]]:
        mock = KontextMock(seed=8, now=NOW, frozen=True)
        return [mock.add_session(state=s) for s in ("active", "idle", "expired")]

    assert made() == made()


def test_a_session_is_changed_over_http_and_disconnecting_it_is_an_event(
    client: FlaskClient,
) -> None:
    moved = client.patch(f"/_mock/sessions/{DEV_SESSION}", json={"lastActiveAt": "-10m"})
    assert moved.status_code == 200
    assert moved.json["session"]["lastActiveAt"] == "2026-01-01T11:50:00.000Z"
    assert moved.json["session"]["derivedStatus"] == "idle"
    gone = client.patch(f"/_mock/sessions/{DEV_SESSION}",
                        json={"status": "disconnected", "disconnectReason": "timeout"})
    assert gone.json["session"]["disconnectedAt"] == "2026-01-01T12:00:00.000Z"
    assert gone.json["disconnectReason"] == "timeout"
    events = client.get("/_mock/events/history?types=session.disconnected").json["items"]
    assert [(e["data"]["sessionId"], e["data"]["reason"]) for e in events] == [
        (DEV_SESSION, "timeout")]
    back = client.patch(f"/_mock/sessions/{DEV_SESSION}",
                        json={"status": "active", "lastActiveAt": "now"})
    assert back.json["session"]["derivedStatus"] in ("active", "expired")
    assert back.json["session"]["disconnectedAt"] is None and back.json["disconnectReason"] is None


def test_moving_created_at_keeps_the_list_in_order(mock: KontextMock) -> None:
    last = [s for s in mock.list_sessions(DEV_APP, status="all") if s["status"] == "active"][-1]
    mock.update_session(last["id"], createdAt="-2s", connectedAt="-1s", lastActiveAt="now")
    assert mock.list_sessions(DEV_APP, status="all")[0]["id"] == last["id"]


@pytest.mark.parametrize("fields", [
    {"connectedAt": "-1m", "lastActiveAt": "-10m"},
    {"createdAt": "+5m"},
    {"status": "active", "disconnectedAt": "-1m"},
    {"lastActiveAt": "tomorrow"},
    {"disconnectReason": "revoked"},
])
def test_a_session_whose_times_do_not_hold_together_is_a_422_and_changes_nothing(
    client: FlaskClient, mock: KontextMock, fields: dict[str, Any],
) -> None:
    before = client.get("/_mock/state").json
    made = client.post("/_mock/sessions", json=fields)
    assert made.status_code in (400, 422), made.json
    changed = client.patch(f"/_mock/sessions/{DEV_SESSION}", json=fields)
    assert changed.status_code in (400, 422), changed.json
    assert client.get("/_mock/state").json == before
    with pytest.raises(ApiError) as raised:
        mock.add_session(**fields)
    assert raised.value.status == 422


def test_unknown_sessions_and_applications_are_404(client: FlaskClient) -> None:
    unknown = "11111111-1111-4111-8111-111111111111"
    assert client.get(f"/_mock/sessions/{unknown}").status_code == 404
    assert client.patch(f"/_mock/sessions/{unknown}", json={}).status_code == 404
    assert client.post("/_mock/sessions", json={"applicationId": unknown}).status_code == 404
    assert client.post(f"/_mock/applications/{unknown}/revoke").status_code == 404


def test_the_control_plane_revokes_an_application_of_any_organization(
    client: FlaskClient, mock: KontextMock,
) -> None:
    other = next(a for a in mock.application_ids() if a != DEV_APP)
    # connected: transport open, the token expired or not
    connected = sum(s["status"] == "active" for s in mock.list_sessions(other, status="all"))
    answer = client.post(f"/_mock/applications/{other}/revoke")
    assert answer.json == {"success": True, "disconnectedCount": connected}
    assert client.post(f"/_mock/applications/{other}/revoke").json["disconnectedCount"] == 0


def test_a_session_made_now_is_seen_as_created(mock: KontextMock) -> None:
    made = mock.add_session()
    (event,) = [e for e in mock.events.since(0) if e.type == "session.created"]
    assert event.data["sessionId"] == made["id"]
    assert event.time == T0
    assert mock.session_detail(made["id"])["lifecycle"] is None
    assert timedelta(0) < at(made["tokenExpiresAt"]) - T0
