"""Tokens are scoped to their organization, their scopes and their application, on every
route the spec protects, and expire on the mock's clock. The routes are read from
``openapi.yaml``, so an operation added to the spec is covered without a new test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.core import credentials as auth_module
from kontext_mock.core.credentials import KNOWN_SCOPES
from kontext_mock.core.records import OAuthClient
from kontext_mock.http.spec import Operation, load_spec

from .conftest import DEV_APP

AGENT_BODY = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
BEARER_OPS = [op for op in load_spec() if op.bearer]
SCOPED_OPS = [op for op in BEARER_OPS if op.scope_alternatives]
APP_OPS = [op for op in BEARER_OPS if "{applicationId}" in op.path]
AGENT_OPS = [op for op in BEARER_OPS if "{applicationId}" not in op.path]


@dataclass
class Org:
    """An organization with one application, a management client and an agent client."""

    id: str
    app: str
    manager: str
    agent: str


def grant(client: FlaskClient, client_id: str, secret: str = "pw",  # noqa: S107
          scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope is not None:
        form["scope"] = scope
    response = client.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def state(mock: KontextMock) -> Any:
    return {a: mock.list_sessions(a, status="all") for a in mock.application_ids()}


@pytest.fixture
def orgs(mock: KontextMock, client: FlaskClient) -> tuple[Org, Org]:
    """The dev organization and a seeded one, each with a manager token and an agent token."""
    out = []
    for org_id in (mock.config.dev_organization_id,
                   next(o for o in mock.store.organizations if o != mock.config.dev_organization_id)):
        app_id = mock.application_ids(org_id)[0]
        tag = org_id[:8]
        mock.add_client(OAuthClient(f"manager-{tag}", "pw", org_id, frozenset({"management:all"})))
        mock.add_client(OAuthClient(f"agent-{tag}", "pw", org_id, frozenset({"management:all"}),
                                    application_id=app_id))
        out.append(Org(org_id, app_id, grant(client, f"manager-{tag}"), grant(client, f"agent-{tag}")))
    return out[0], out[1]


def call(client: FlaskClient, op: Operation, token: str | None, app_id: str,
         session_id: str) -> Any:
    """One request to ``op`` (its body, if any, valid), with ``token`` as the bearer."""
    path = op.path.replace("{applicationId}", app_id).replace("{sessionId}", session_id)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"json": AGENT_BODY} if op.body_media_type == "application/json" else {}
    return client.open(path, method=op.method, headers=headers, **body)


def a_session(mock: KontextMock, app_id: str, connected: bool = True) -> str:
    """A session of the application (a connected one unless asked otherwise)."""
    if connected:
        return mock.open_session(app_id, token_identifier="t", authenticated_user_id="u",
                                 client_session_id="c").id
    return str(mock.list_sessions(app_id, status="all")[0]["id"])


def token_for(op: Operation, org: Org) -> str:
    return org.agent if op in AGENT_OPS else org.manager


# -- every protected route ----------------------------------------------------------------


@pytest.mark.parametrize("op", BEARER_OPS, ids=lambda op: op.operation_id)
def test_every_protected_route_refuses_no_unknown_or_malformed_token(
    client: FlaskClient, mock: KontextMock, op: Operation
) -> None:
    session_id = a_session(mock, DEV_APP)
    before = state(mock)
    for token in (None, "not-a-token", "", "dev-token\u00a0", "DEV-TOKEN", "dev-token\t\u2003"):
        response = call(client, op, token, DEV_APP, session_id)
        assert response.status_code == 401, (token, response.json)
        assert response.json["error"] == "unauthorized"
    assert state(mock) == before
    assert call(client, op, "dev-token", DEV_APP, session_id).status_code < 400


@pytest.mark.parametrize("op", BEARER_OPS, ids=lambda op: op.operation_id)
def test_every_protected_route_refuses_an_expired_token_on_the_mock_clock(
    client: FlaskClient, mock: KontextMock, orgs: tuple[Org, Org], op: Operation
) -> None:
    dev, _ = orgs
    token = token_for(op, dev)  # issued at the fixture's now, for token_ttl
    ttl = mock.config.token_ttl
    mock.advance(ttl - timedelta(milliseconds=1))
    assert call(client, op, token, dev.app, a_session(mock, dev.app)).status_code < 400
    mock.advance("0.001")  # now == expires_at: expired
    session_id = a_session(mock, dev.app)
    before = state(mock)
    response = call(client, op, token, dev.app, session_id)
    assert response.status_code == 401 and "expired" in response.json["message"]
    assert state(mock) == before
    # Moving the clock back makes it valid again: expiry is judged on the mock's clock only.
    mock.set_time(mock.now() - ttl / 2)
    assert call(client, op, token, dev.app, a_session(mock, dev.app)).status_code < 400


@pytest.mark.parametrize("op", SCOPED_OPS, ids=lambda op: op.operation_id)
def test_every_scoped_route_refuses_a_token_lacking_its_scope(
    client: FlaskClient, mock: KontextMock, op: Operation
) -> None:
    needed = {s for alternative in op.scope_alternatives for s in alternative}
    others = sorted(KNOWN_SCOPES - needed)
    token = grant(client, "dev-client", "dev-secret", scope=" ".join(others))
    session_id = a_session(mock, DEV_APP)
    before = state(mock)
    response = call(client, op, token, DEV_APP, session_id)
    assert response.status_code == 403
    assert response.json["error"] == "insufficient_scope"
    assert response.json["missingScopes"] == op.scope_alternatives[0]
    assert state(mock) == before
    for alternative in op.scope_alternatives:
        enough = grant(client, "dev-client", "dev-secret", scope=" ".join(alternative))
        assert call(client, op, enough, DEV_APP, session_id).status_code < 400


@pytest.mark.parametrize("op", APP_OPS, ids=lambda op: op.operation_id)
def test_cross_organization_reads_and_writes_are_not_found(
    client: FlaskClient, mock: KontextMock, orgs: tuple[Org, Org], op: Operation
) -> None:
    for mine, theirs in (orgs, orgs[::-1]):
        session_id = a_session(mock, theirs.app)
        before = state(mock)
        for token in (mine.manager, mine.agent, *(["dev-token"] if mine.id == orgs[0].id else [])):
            response = call(client, op, token, theirs.app, session_id)
            # 404, not 403: a foreign application's existence is not disclosed.
            assert response.status_code == 404, response.json
            assert response.json["error"] == "not_found"
            assert session_id not in str(response.json)
        assert state(mock) == before
        assert call(client, op, theirs.manager, theirs.app, session_id).status_code < 400


@pytest.mark.parametrize("op", [op for op in AGENT_OPS if "{sessionId}" in op.path],
                         ids=lambda op: op.operation_id)
def test_an_agent_token_reaches_only_its_own_applications_sessions(
    client: FlaskClient, mock: KontextMock, orgs: tuple[Org, Org], op: Operation
) -> None:
    dev, other = orgs
    sibling = mock.application_ids(other.id)[1]  # same organization, another application
    for victim_app in (dev.app, sibling):
        session_id = a_session(mock, victim_app)
        before = state(mock)
        response = call(client, op, other.agent, other.app, session_id)
        assert response.status_code == 404 and response.json["error"] == "not_found"
        assert state(mock) == before


def test_agent_sessions_open_in_the_tokens_own_application(
    client: FlaskClient, mock: KontextMock, orgs: tuple[Org, Org]
) -> None:
    dev, other = orgs
    created = client.post("/api/v1/agent-sessions", json=AGENT_BODY,
                          headers={"Authorization": f"Bearer {other.agent}"})
    assert created.status_code == 201
    session_id = created.json["sessionId"]
    session = mock.store.sessions[session_id]
    assert (session.application_id, session.organization_id) == (other.app, other.id)
    assert client.get(f"/api/v1/applications/{other.app}/sessions/{session_id}",
                      headers={"Authorization": f"Bearer {dev.manager}"}).status_code == 404


def test_a_management_token_without_an_application_cannot_open_agent_sessions(
    client: FlaskClient, orgs: tuple[Org, Org]
) -> None:
    response = client.post("/api/v1/agent-sessions", json=AGENT_BODY,
                           headers={"Authorization": f"Bearer {orgs[1].manager}"})
    assert response.status_code == 403


def test_a_token_cannot_ask_for_more_than_its_client_may_have(
    client: FlaskClient, mock: KontextMock
) -> None:
    mock.add_client(OAuthClient("reader", "pw", mock.config.dev_organization_id,
                                frozenset({"management:applications:read"})))
    for scope in ("management:all", "management:applications:write",
                  "management:applications:read management:applications:write"):
        response = client.post("/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": "reader", "client_secret": "pw",
            "scope": scope})
        assert response.status_code == 400 and response.json["error"] == "invalid_scope"


# -- secrets compared in constant time ----------------------------------------------------


def test_client_secrets_are_compared_with_hmac_compare_digest(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    cases = [("dev-client", "dev-secret", 200), ("dev-client", "dev-secreT", 401),
             ("dev-client", "", 401), ("no-such-client", "dev-secret", 401)]
    for client_id, secret, status in cases:
        before = len(calls)
        response = client.post("/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
        assert response.status_code == status
        # every attempt, an unknown client's too, goes through one constant-time comparison
        assert len(calls) == before + 1
        assert calls[-1][0] == secret.encode()
