"""OAuth client credentials, bearer tokens, scopes and organizations."""

from __future__ import annotations

import base64

import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.core import tokens as tokens_module
from kontext_mock.core.records import OAuthClient

from .conftest import AUTH, DEV_APP, DEV_SESSION

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": "dev-client",
               "client_secret": "dev-secret"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def token_for(client: FlaskClient, **form: str) -> str:
    response = client.post("/oauth2/token", data={**CREDENTIALS, **form})
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_with_form_credentials(client: FlaskClient) -> None:
    response = client.post("/oauth2/token", data=CREDENTIALS)
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "management:all"
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get(LIST, headers=bearer(body["access_token"])).status_code == 200


def test_token_with_http_basic(client: FlaskClient) -> None:
    response = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                                  "audience": "https://api.kontext.security/api/v1"},
                           headers=basic("dev-client", "dev-secret"))
    assert response.status_code == 200
    assert client.get(LIST, headers=bearer(response.json["access_token"])).status_code == 200


def test_token_expires_on_the_mock_clock(client: FlaskClient, mock: KontextMock) -> None:
    token = token_for(client)
    mock.advance("PT59M59S")
    assert client.get(LIST, headers=bearer(token)).status_code == 200
    mock.advance("1s")
    expired = client.get(LIST, headers=bearer(token))
    assert expired.status_code == 401
    assert "expired" in expired.json["message"]
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    # a fresh token works again: what a client's refresh does
    assert client.get(LIST, headers=bearer(token_for(client))).status_code == 200


def test_tokens_expired_for_a_day_are_forgotten_once_many_were_issued(
        client: FlaskClient, mock: KontextMock, monkeypatch: pytest.MonkeyPatch) -> None:
    # A long load test asks for tokens without end; the mock must not keep them all.
    monkeypatch.setattr(tokens_module, "TOKEN_SWEEP_FROM", 8)
    mock.tokens.sweep_at = 8
    old = [token_for(client) for _ in range(3)]
    mock.advance("P1DT1H1S")  # expired (1 h) more than a day ago
    recent = token_for(client)
    mock.advance("PT2H")  # expired, but only just
    fresh = [token_for(client) for _ in range(4)]  # the store reaches 8: a sweep
    known = mock.store.tokens
    assert not any(t in known for t in old)
    assert recent in known and all(t in known for t in fresh)
    assert AUTH["Authorization"].split()[1] in known  # the dev token never expires
    assert "unknown" in client.get(LIST, headers=bearer(old[0])).json["message"]
    assert "expired" in client.get(LIST, headers=bearer(recent)).json["message"]
    assert client.get(LIST, headers=bearer(fresh[0])).status_code == 200
    # the next sweep waits for twice what that one kept
    assert len(known) < mock.tokens.sweep_at <= 2 * len(known)


def test_the_dev_token_does_not_expire(client: FlaskClient, mock: KontextMock) -> None:
    mock.advance("P30D")
    assert client.get(LIST, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("scope", "list_status", "revoke_status"),
    [
        ("management:applications:read", 200, 403),
        ("management:applications:write", 403, 200),
        ("management:applications:read management:applications:write", 200, 200),
        ("management:logs:read", 403, 403),
        ("management:all", 200, 200),
    ],
)
def test_scopes_are_enforced(client: FlaskClient, scope: str, list_status: int,
                             revoke_status: int) -> None:
    token = token_for(client, scope=scope)
    listing = client.get(LIST, headers=bearer(token))
    assert listing.status_code == list_status
    if list_status == 403:
        assert listing.json["error"] == "insufficient_scope"
        assert listing.json["missingScopes"] == ["management:applications:read"]
        read = client.get(f"{LIST}/{DEV_SESSION}", headers=bearer(token))
        assert read.status_code == 403
    revoke = client.delete(LIST, headers=bearer(token))
    assert revoke.status_code == revoke_status
    if revoke_status == 403:
        assert revoke.json["missingScopes"] == ["management:applications:write"]


def test_refused_revoke_changes_nothing(client: FlaskClient, mock: KontextMock) -> None:
    before = mock.list_sessions(DEV_APP, status="all")
    token = token_for(client, scope="management:applications:read")
    assert client.delete(LIST, headers=bearer(token)).status_code == 403
    assert mock.list_sessions(DEV_APP, status="all") == before


def test_another_organizations_application_is_not_found(client: FlaskClient, mock: KontextMock) -> None:
    foreign = [a for a in mock.application_ids() if a not in
               mock.application_ids(mock.config.dev_organization_id)]
    assert foreign
    app_id = foreign[0]
    foreign_session = mock.list_sessions(app_id, status="all")[0]["id"]
    before = mock.list_sessions(app_id, status="all")
    for response in (
        client.get(f"/api/v1/applications/{app_id}/sessions", headers=AUTH),
        client.get(f"/api/v1/applications/{app_id}/sessions/{foreign_session}", headers=AUTH),
        client.delete(f"/api/v1/applications/{app_id}/sessions", headers=AUTH),
    ):
        assert response.status_code == 404
        assert response.json["error"] == "not_found"
    assert mock.list_sessions(app_id, status="all") == before


def test_a_client_of_the_other_organization_reads_its_own(client: FlaskClient, mock: KontextMock) -> None:
    app_id = mock.application_ids()[-1]
    org_id = mock.store.applications[app_id].organization_id
    assert org_id != mock.config.dev_organization_id
    mock.add_client(OAuthClient("acme-ci", "s3cret", org_id, frozenset({"management:all"})))
    token = token_for(client, client_id="acme-ci", client_secret="s3cret")
    assert client.get(f"/api/v1/applications/{app_id}/sessions", headers=bearer(token)).status_code == 200
    assert client.get(LIST, headers=bearer(token)).status_code == 404


def test_a_session_of_another_application_is_not_found_under_this_one(
    client: FlaskClient, mock: KontextMock
) -> None:
    own = mock.application_ids(mock.config.dev_organization_id)
    other_session = mock.list_sessions(mock.application_ids()[-1], status="all")[0]["id"]
    assert client.get(f"/api/v1/applications/{own[0]}/sessions/{other_session}",
                      headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="kontext"'),
        ({"Authorization": "Bearer"}, 'error="invalid_token"'),
        ({"Authorization": "Token dev-token"}, 'error="invalid_token"'),
        ({"Authorization": "Bearer two words"}, 'error="invalid_token"'),
        ({"Authorization": "Bearer not-a-known-token"}, 'error="invalid_token"'),
        ({"Authorization": "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0"}, 'error="invalid_token"'),
    ],
)
def test_missing_malformed_or_unknown_bearer_is_401(
    client: FlaskClient, mock: KontextMock, headers: dict[str, str], challenge: str
) -> None:
    before = mock.list_sessions(DEV_APP, status="all")
    for response in (client.get(LIST, headers=headers), client.delete(LIST, headers=headers),
                     client.get(f"{LIST}/{DEV_SESSION}", headers=headers)):
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized" and response.json["message"]
        assert challenge in response.headers["WWW-Authenticate"]
    assert mock.list_sessions(DEV_APP, status="all") == before


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"client_id": "dev-client", "client_secret": "dev-secret"}, {}, 400, "invalid_request"),
        ({**CREDENTIALS, "grant_type": "password"}, {}, 400, "unsupported_grant_type"),
        ({**CREDENTIALS, "grant_type": ""}, {}, 400, "unsupported_grant_type"),
        ({**CREDENTIALS, "client_secret": "wrong"}, {}, 401, "invalid_client"),
        ({**CREDENTIALS, "client_id": "nobody"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, basic("dev-client", "nope"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, {"Authorization": "Basic !!!"}, 401, "invalid_client"),
        (CREDENTIALS, basic("dev-client", "dev-secret"), 400, "invalid_request"),
        ({**CREDENTIALS, "scope": "management:everything"}, {}, 400, "invalid_scope"),
    ],
)
def test_malformed_token_requests_follow_rfc_6749(
    client: FlaskClient, form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    response = client.post("/oauth2/token", data=form, headers=headers)
    assert response.status_code == status
    assert response.json["error"] == error and response.json["error_description"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_token_request_must_be_form_encoded(client: FlaskClient) -> None:
    response = client.post("/oauth2/token", json=CREDENTIALS)
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_repeated_token_fields_are_refused(client: FlaskClient) -> None:
    response = client.post(
        "/oauth2/token",
        data="grant_type=client_credentials&client_id=dev-client&client_id=x&client_secret=dev-secret",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_a_narrower_token_than_the_client_is_allowed(client: FlaskClient, mock: KontextMock) -> None:
    org = mock.config.dev_organization_id
    mock.add_client(OAuthClient("reader", "pw", org, frozenset({"management:applications:read"})))
    refused = client.post("/oauth2/token", data={**CREDENTIALS, "client_id": "reader",
                                                 "client_secret": "pw",
                                                 "scope": "management:applications:write"})
    assert refused.status_code == 400 and refused.json["error"] == "invalid_scope"
    token = token_for(client, client_id="reader", client_secret="pw")
    assert client.get(LIST, headers=bearer(token)).status_code == 200
    assert client.delete(LIST, headers=bearer(token)).status_code == 403


def test_agent_endpoints_need_an_application_bound_client(client: FlaskClient, mock: KontextMock) -> None:
    org = mock.config.dev_organization_id
    mock.add_client(OAuthClient("ops", "pw", org, frozenset({"management:all"})))
    token = token_for(client, client_id="ops", client_secret="pw")
    body = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
    refused = client.post("/api/v1/agent-sessions", json=body, headers=bearer(token))
    assert refused.status_code == 403
    assert client.post("/api/v1/agent-sessions", json=body).status_code == 401
