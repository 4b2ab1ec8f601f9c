"""The MCP gateway and its OAuth, request by request: metadata, the authorization
endpoint's refusals, the gateway grants' rules, and every refusal at ``/mcp``."""

from __future__ import annotations

import base64
import hashlib
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.config import MockConfig
from kontext_mock.core.jsonrpc import JsonRpcError
from kontext_mock.http.mcp import check_accept
from kontext_mock.http.serve import start

from .conftest import DEV_APP
from .serving import wait_until

CLIENT = f"app_{DEV_APP}"
REDIRECT = "http://127.0.0.1:5000/cb"
VERIFIER = "v" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
GATEWAY = "http://localhost/mcp"


def authorize(client: FlaskClient, **changes: str | None) -> Any:
    query = {"response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT,
             "state": "st-1", "code_challenge": CHALLENGE, "code_challenge_method": "S256",
             "scope": "mcp:invoke", "resource": GATEWAY}
    query.update(changes)
    return client.get("/oauth2/auth", query_string={k: v for k, v in query.items() if v is not None})


def redirected(answer: Any) -> dict[str, str]:
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def code_grant(client: FlaskClient, code: str, verifier: str = VERIFIER) -> Any:
    return client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": CLIENT, "redirect_uri": REDIRECT, "resource": GATEWAY})


def initialize(client: FlaskClient, token: str, **info: Any) -> Any:
    return client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "agent", "version": "1", **info}}},
        headers={"Authorization": f"Bearer {token}", "User-Agent": "agent/1"})


def initialize_over_http(gateway: str, token: str, name: str) -> str:
    """A session opened at ``gateway`` by a client over HTTP: its Mcp-Session-Id."""
    answer = requests.post(gateway, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": name, "version": "1"}}},
        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.headers["Mcp-Session-Id"])


def rpc(client: FlaskClient, token: str, session: str | None, method: str,
        version: str = "2025-06-18", **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", "MCP-Protocol-Version": version}
    if session is not None:
        headers["Mcp-Session-Id"] = session
    return client.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params},
                       headers=headers)


#: what the MCP transport says a client must accept (else 406: mcp-require-accept)
ACCEPT = "application/json, text/event-stream"


@pytest.fixture
def client(client: FlaskClient) -> FlaskClient:
    """The mock's test client, accepting what an MCP client must (a request's own
    ``Accept`` still wins)."""
    client.environ_base["HTTP_ACCEPT"] = ACCEPT
    return client


@pytest.fixture
def token(mock: KontextMock) -> str:
    return str(mock.oauth.gateway_token(DEV_APP, resource=GATEWAY)["access_token"])


def test_metadata_names_the_base_url_the_client_used(client: FlaskClient) -> None:
    meta = client.get("/.well-known/oauth-authorization-server",
                      base_url="http://127.0.0.1:8080").json
    assert meta["issuer"] == "http://127.0.0.1:8080"
    assert meta["authorization_endpoint"] == "http://127.0.0.1:8080/oauth2/auth"
    assert meta["token_endpoint"] == "http://127.0.0.1:8080/oauth2/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "mcp:invoke" in meta["scopes_supported"]
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])
    resource = client.get("/.well-known/oauth-protected-resource/mcp").json
    assert resource["resource"] == GATEWAY
    assert resource["authorization_servers"] == ["http://localhost"]


def test_each_application_has_a_public_client_in_the_control_plane(client: FlaskClient) -> None:
    rows = client.get("/_mock/applications").json["items"]
    assert {r["oauthClientId"] for r in rows} == {f"app_{r['id']}" for r in rows}


def test_authorize_approves_at_once_and_the_code_works_once(client: FlaskClient) -> None:
    reply = redirected(authorize(client))
    assert reply["state"] == "st-1"
    first = code_grant(client, reply["code"])
    assert first.status_code == 200
    assert first.json["scope"] == "mcp:invoke" and first.json["refresh_token"]
    again = code_grant(client, reply["code"])
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"


def test_a_code_expires_after_a_minute_of_the_mock_clock(client: FlaskClient,
                                                         mock: KontextMock) -> None:
    code = redirected(authorize(client))["code"]
    mock.advance("61s")
    assert code_grant(client, code).json["error"] == "invalid_grant"


def test_a_wrong_verifier_is_refused(client: FlaskClient) -> None:
    code = redirected(authorize(client))["code"]
    assert code_grant(client, code, "w" * 64).json["error"] == "invalid_grant"


@pytest.mark.parametrize(("change", "error"), [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "management:all"}, "invalid_scope"),
])
def test_faults_of_a_trusted_request_are_error_redirects(client: FlaskClient,
                                                         change: dict[str, str | None],
                                                         error: str) -> None:
    reply = redirected(authorize(client, **change))
    assert reply["error"] == error and reply["state"] == "st-1" and "code" not in reply


@pytest.mark.parametrize(("change", "error"), [
    ({"client_id": "app_00000000-0000-4000-8000-000000000000"}, "invalid_client"),
    ({"client_id": "dev-client"}, "invalid_client"),
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
    ({"redirect_uri": None}, "invalid_request"),
])
def test_an_untrusted_client_or_redirect_is_never_redirected(client: FlaskClient,
                                                             change: dict[str, str | None],
                                                             error: str) -> None:
    answer = authorize(client, **change)
    assert answer.status_code == 400 and answer.json["error"] == error


def test_refresh_rotates(client: FlaskClient) -> None:
    grant = code_grant(client, redirected(authorize(client))["code"]).json
    form = {"grant_type": "refresh_token", "refresh_token": grant["refresh_token"],
            "client_id": CLIENT}
    renewed = client.post("/oauth2/token", data=form)
    assert renewed.status_code == 200 and renewed.json["refresh_token"] != grant["refresh_token"]
    assert client.post("/oauth2/token", data=form).json["error"] == "invalid_grant"


def test_a_token_exchange_gives_a_gateway_token(client: FlaskClient) -> None:
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": "dev-token", "client_id": CLIENT,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "resource": "mcp-gateway", "scope": "gateway:access"}
    exchanged = client.post("/oauth2/token", data=form)
    assert exchanged.status_code == 200 and exchanged.json["scope"] == "gateway:access"
    assert initialize(client, exchanged.json["access_token"]).status_code == 200
    wrong = client.post("/oauth2/token", data={**form, "resource": "elsewhere"})
    assert wrong.status_code == 400 and wrong.json["error"] == "invalid_target"


def test_initialize_makes_a_session_with_hostname_from_client_info(client: FlaskClient,
                                                                    mock: KontextMock,
                                                                    token: str) -> None:
    answer = initialize(client, token, hostname="dev-box")
    session = mock.get_session(DEV_APP, answer.headers["Mcp-Session-Id"])
    assert session["hostname"] == "dev-box" and session["name"] == "agent@dev-box"
    assert session["clientInfo"] == {"name": "agent", "version": "1", "hostname": "dev-box"}


def test_client_session_id_is_required_only_when_configured(client: FlaskClient,
                                                             mock: KontextMock,
                                                             token: str) -> None:
    assert initialize(client, token).status_code == 200
    mock.config = mock.config.with_changes(mcp_require_client_session_id=True)
    refused = initialize(client, token)
    assert refused.status_code == 400
    assert refused.json["error"]["message"] == "initialize requires clientInfo.sessionId"
    assert initialize(client, token, sessionId="proc-1").status_code == 200


@pytest.mark.parametrize("grant", [
    {"scope": ""},                                          # no mcp:invoke: no audience
    {"scope": "mcp:invoke", "resource": "http://other.example/mcp"},
])
def test_a_token_not_for_the_gateway_is_invalid(client: FlaskClient, mock: KontextMock,
                                                 grant: dict[str, str]) -> None:
    token = mock.oauth.gateway_token(DEV_APP, **grant)["access_token"]
    refused = initialize(client, token)
    assert refused.status_code == 401
    challenge = refused.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert 'resource_metadata="http://localhost/.well-known/oauth-protected-resource/mcp"' in challenge


def test_management_tokens_and_no_token_are_refused(client: FlaskClient) -> None:
    assert initialize(client, "dev-token").status_code == 401
    bare = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert bare.status_code == 401 and "error=" not in bare.headers["WWW-Authenticate"]


def test_an_expired_token_is_refused_on_the_mock_clock(client: FlaskClient, mock: KontextMock,
                                                       token: str) -> None:
    session = initialize(client, token).headers["Mcp-Session-Id"]
    mock.advance("61m")
    refused = rpc(client, token, session, "ping")
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert mock.get_session(DEV_APP, session)["derivedStatus"] == "expired"


def test_the_discover_probe_and_requests_without_a_session_are_refused(client: FlaskClient,
                                                                       token: str) -> None:
    probe = rpc(client, token, None, "server/discover", version="2026-07-28")
    assert probe.status_code == 400 and probe.json["error"]["code"] == -32601
    bare = rpc(client, token, None, "tools/list")
    assert bare.status_code == 400 and bare.json["error"]["code"] == -32600


def test_session_refusals(client: FlaskClient, mock: KontextMock, token: str) -> None:
    session = initialize(client, token).headers["Mcp-Session-Id"]
    assert rpc(client, token, "no-such-session", "ping").status_code == 404
    other_app = next(a for a in mock.application_ids() if a != DEV_APP)
    other = mock.oauth.gateway_token(other_app, resource=GATEWAY)["access_token"]
    assert rpc(client, other, session, "ping").status_code == 404
    assert rpc(client, token, session, "ping", version="1999-01-01").status_code == 400
    batch = client.post("/mcp", json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
                        headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session})
    assert batch.status_code == 400
    unknown = rpc(client, token, session, "sampling/nothing")
    assert unknown.status_code == 200 and unknown.json["error"]["code"] == -32601
    assert rpc(client, token, session, "ping").json["result"] == {}


def test_tools_and_canned_results_come_from_the_scenario(client: FlaskClient, mock: KontextMock
                                                         ) -> None:
    mock.load_scenario_text("mcp:\n  tools:\n    - name: search\n      description: Find\n"
                            "      text: found 3\n")
    token = str(mock.oauth.gateway_token(DEV_APP, resource=GATEWAY)["access_token"])
    session = initialize(client, token).headers["Mcp-Session-Id"]
    tools = rpc(client, token, session, "tools/list").json["result"]["tools"]
    assert tools == [{"name": "search", "description": "Find", "inputSchema": {"type": "object"}}]
    called = rpc(client, token, session, "tools/call", name="search", arguments={})
    assert called.json["result"]["content"] == [{"type": "text", "text": "found 3"}]
    missing = rpc(client, token, session, "tools/call", name="nope")
    assert missing.json["error"]["code"] == -32602


def test_notifications_are_activity_and_delete_ends_the_session(client: FlaskClient,
                                                                mock: KontextMock,
                                                                token: str) -> None:
    session = initialize(client, token).headers["Mcp-Session-Id"]
    mock.advance("2m")
    note = client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                       headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session})
    assert note.status_code == 202
    assert mock.get_session(DEV_APP, session)["lastActiveAt"] == "2026-01-01T12:02:00.000Z"
    ended = client.delete("/mcp", headers={"Authorization": f"Bearer {token}",
                                           "Mcp-Session-Id": session})
    assert ended.status_code == 204
    record = mock.get_session(DEV_APP, session)
    assert record["status"] == "disconnected" and record["disconnectedAt"] == "2026-01-01T12:02:00.000Z"
    assert rpc(client, token, session, "ping").status_code == 404


def test_revoke_all_ends_the_gateway_tokens_of_the_application(client: FlaskClient,
                                                                mock: KontextMock,
                                                                token: str) -> None:
    initialize(client, token)
    client.post(f"/_mock/applications/{DEV_APP}/revoke")
    assert initialize(client, token).status_code == 401


def test_an_mcp_session_is_like_any_other_in_the_journal_and_the_state(
    client: FlaskClient, mock: KontextMock, token: str,
) -> None:
    session = initialize(client, token, hostname="dev-box").headers["Mcp-Session-Id"]
    sent = mock.journal.entries("POST", "/mcp")
    assert len(sent) == 1 and token not in str(sent)  # journaled, the token redacted
    exported = next(s for s in mock.export_state()["sessions"] if s["id"] == session)
    assert exported["clientInfo"]["name"] == "agent" and exported["hostname"] == "dev-box"
    again = KontextMock(seed=7)
    again.import_state(mock.export_state())
    assert again.get_session(DEV_APP, session) == mock.get_session(DEV_APP, session)
    listed = client.get(f"/api/v1/applications/{DEV_APP}/sessions?limit=200",
                        headers={"Authorization": "Bearer dev-token"}).json["items"]
    assert session in {s["id"] for s in listed}


@pytest.mark.parametrize("body", [
    b"null", b'"x"', b"[]", b"{}", b'{"jsonrpc":"2.0","id":true,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":[]}',
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}',
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"x",'
    b'"clientInfo":{"name":"a","deep":' + b'[' * 200 + b']' * 200 + b'}}}',
    b'{"jsonrpc":"2.0","method":"initialize"}', b"{not json",
])
def test_junk_is_refused_with_a_4xx_never_a_500(client: FlaskClient, token: str,
                                                body: bytes) -> None:
    answer = client.post("/mcp", data=body, content_type="application/json",
                         headers={"Authorization": f"Bearer {token}"})
    assert 400 <= answer.status_code < 500, answer.data


@pytest.mark.parametrize(("asked", "agreed"), [
    ("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"),
    ("2031-01-01", "2025-11-25"),
])
def test_the_protocol_version_is_negotiated(client: FlaskClient, token: str, asked: str,
                                            agreed: str) -> None:
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "a", "version": "1"}}},
        headers={"Authorization": f"Bearer {token}"})
    assert answer.json["result"]["protocolVersion"] == agreed


def test_open_session_streams_hold_no_worker(mock: KontextMock) -> None:
    server = start(mock.app, "127.0.0.1", 0, threads=2)
    streams: list[socket.socket] = []
    try:
        gateway = f"{server.url}/mcp"
        token = str(mock.oauth.gateway_token(DEV_APP, resource=gateway)["access_token"])
        host, port = server.url.removeprefix("http://").split(":")
        for _ in range(10):  # five times the workers
            session = initialize_over_http(gateway, token, "held")
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(f"GET /mcp HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Accept: text/event-stream\r\nAuthorization: Bearer {token}\r\n"
                         f"Mcp-Session-Id: {session}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            streams.append(sock)
        assert mock.state.gateway.watching() == 10
        read = requests.get(f"{server.url}/api/v1/applications/{DEV_APP}/sessions?limit=1",
                            headers={"Authorization": "Bearer dev-token"}, timeout=10)
        assert read.status_code == 200
        assert mock.revoke_all(DEV_APP) >= 10
        for sock in streams:  # every stream ends with its session: the chunked body's end
            sock.settimeout(10)
            received = b""
            while not received.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(4096)
                assert chunk, received
                received += chunk
    finally:
        for sock in streams:
            sock.close()
        server.stop()


def test_a_session_has_one_stream_and_a_second_is_409(mock: KontextMock) -> None:
    server = start(mock.app, "127.0.0.1", 0, threads=2)
    try:
        gateway = f"{server.url}/mcp"
        token = str(mock.oauth.gateway_token(DEV_APP, resource=gateway)["access_token"])
        session = initialize_over_http(gateway, token, "one")
        host, port = server.url.removeprefix("http://").split(":")
        request = (f"GET /mcp HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Accept: text/event-stream\r\nAuthorization: Bearer {token}"
                   f"\r\nMcp-Session-Id: {session}\r\n\r\n").encode()
        first = socket.create_connection((host, int(port)), timeout=10)
        first.sendall(request)
        assert first.recv(4096).startswith(b"HTTP/1.1 200")
        second = requests.get(gateway, headers={"Authorization": f"Bearer {token}",
                                                "Mcp-Session-Id": session}, timeout=10)
        assert second.status_code == 409 and second.json()["error"]["code"] == -32600
        assert mock.state.gateway.watching(session) == 1
        first.close()  # a stream whose client left frees the session's place
        wait_until(lambda: mock.state.gateway.watching(session) == 0, "the stream is freed")
        with socket.create_connection((host, int(port)), timeout=10) as again:
            again.sendall(request)
            assert again.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


@pytest.mark.parametrize("info", [{"version": 5}, {"title": ["x"]}, {"hostname": "h" * 256}])
def test_initialize_refuses_client_info_the_sessions_api_could_not_answer(
        client: FlaskClient, mock: KontextMock, token: str, info: dict[str, Any]) -> None:
    before = len(mock.store.sessions)
    answer = initialize(client, token, **info)
    assert answer.status_code == 400 and answer.json["error"]["code"] == -32602
    assert len(mock.store.sessions) == before


def test_a_long_user_agent_is_kept_to_the_sessions_bound(client: FlaskClient, mock: KontextMock,
                                                         token: str) -> None:
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "agent", "version": "1"}}},
        headers={"Authorization": f"Bearer {token}", "User-Agent": "u" * 5000})
    session = mock.store.sessions[answer.headers["Mcp-Session-Id"]]
    assert session.user_agent == "u" * 1024


@pytest.mark.parametrize("verifier", ["v", "v" * 42, "v" * 129, "v" * 60 + " !"])
def test_a_verifier_outside_rfc_7636_is_refused_even_when_it_matches(
        client: FlaskClient, verifier: str) -> None:
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = redirected(authorize(client, code_challenge=challenge))["code"]
    answer = code_grant(client, code, verifier)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_request"


@pytest.mark.parametrize("uri", ["http://evil.example\\@localhost/cb",
                                 "http://user@127.0.0.1/cb", "http://127.0.0.1/c b"])
def test_a_redirect_uri_that_could_fool_a_browser_is_untrusted(client: FlaskClient,
                                                                uri: str) -> None:
    answer = authorize(client, redirect_uri=uri)
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_what_oauth_keeps_is_bounded(client: FlaskClient, mock: KontextMock,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from kontext_mock.core import oauth

    monkeypatch.setattr(oauth, "MAX_CODES", 5)
    monkeypatch.setattr(oauth, "MAX_GRANTS", 10)
    grants = mock.state.gateway.grants
    for _ in range(20):  # codes of a frozen clock never expire: the oldest go
        code = redirected(authorize(client))["code"]
    assert len(grants.codes) <= 5
    assert code_grant(client, code).status_code == 200  # the newest still works
    for _ in range(30):
        mock.oauth.gateway_token(DEV_APP, resource=GATEWAY)
    assert len(grants.access) <= 10 and len(grants.refresh) <= 10
    answer = authorize(client, resource="r" * 2049)  # every OAuth input is bounded
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_a_web_page_of_another_origin_is_refused_at_the_gateway(client: FlaskClient,
                                                                 mock: KontextMock,
                                                                 token: str) -> None:
    before = len(mock.store.sessions)
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "page", "version": "1"}}},
        headers={"Authorization": f"Bearer {token}", "Origin": "http://evil.example"})
    assert answer.status_code == 403 and answer.json["error"] == "cross_origin_refused"
    assert len(mock.store.sessions) == before
    own = initialize(client, token)  # no Origin, as the SDKs send it
    assert own.status_code == 200


def test_an_origin_allowed_by_the_configuration_may_use_the_gateway() -> None:
    mock = KontextMock(seed=1, cors_origins=("http://localhost:6274",))
    token = str(mock.oauth.gateway_token(DEV_APP, resource=GATEWAY)["access_token"])
    answer = mock.app.test_client().post("/mcp", json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "inspector", "version": "1"}}},
        headers={"Authorization": f"Bearer {token}", "Origin": "http://localhost:6274",
                 "Accept": ACCEPT})
    assert answer.status_code == 200


@pytest.mark.parametrize("host", ['localhost:1", x="y', "127.0.0.1:1@evil.example", "a b"])
def test_a_host_that_is_no_authority_is_never_echoed(client: FlaskClient, host: str) -> None:
    # (the Host rule may name it inside a JSON string; never in a header or an issuer)
    metadata = client.get("/.well-known/oauth-authorization-server", headers={"Host": host})
    assert metadata.status_code in (400, 421) and "issuer" not in metadata.json
    unauthorized = client.post("/mcp", json={}, headers={"Host": host})
    assert unauthorized.status_code in (400, 421)
    assert "WWW-Authenticate" not in unauthorized.headers


def test_a_token_revoked_while_initialize_runs_makes_no_session(
        client: FlaskClient, mock: KontextMock, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = mock.gateway.token
    calls: list[str] = []

    def then_revoked(bearer: str | None, resource: str) -> Any:
        found = checked(bearer, resource)
        calls.append(bearer or "")
        if len(calls) == 1:  # the guard's check passed; revoke-all runs before the session
            mock.revoke_all(DEV_APP)
        return found

    monkeypatch.setattr(mock.gateway, "token", then_revoked)
    connected = {s.id for s in mock.store.sessions.values() if s.status == "active"}
    answer = initialize(client, token)
    assert answer.status_code == 401 and len(calls) == 1  # (checked once)
    assert {s.id for s in mock.store.sessions.values() if s.status == "active"} <= connected


def test_another_auth_scheme_is_challenged_without_an_error_code(client: FlaskClient) -> None:
    # RFC 6750 3.1: a request with no bearer token gets the challenge, no error code
    answer = client.post("/mcp", json={}, headers={"Authorization": "Basic eDp5"})
    challenge = answer.headers["WWW-Authenticate"]
    assert answer.status_code == 401 and "resource_metadata=" in challenge
    assert "error=" not in challenge
    malformed = client.post("/mcp", json={}, headers={"Authorization": "Bearer"})
    assert 'error="invalid_token"' in malformed.headers["WWW-Authenticate"]


# -- JSON-RPC's own refusals, batches, initialize within a session -------------------------


def sdk_error(answer: Any) -> tuple[int, Any]:
    """The JSON-RPC error as the official SDK's client reads a non-2xx answer (anything else
    it replaces by a stand-in "Server returned an error response")."""
    from mcp_types import JSONRPCError, jsonrpc_message_adapter

    parsed = jsonrpc_message_adapter.validate_json(answer.data, by_name=False)
    assert isinstance(parsed, JSONRPCError), answer.data
    return parsed.error.code, parsed.id


@pytest.mark.parametrize("body", [b"{not json", b'{"jsonrpc":"2.0","id":1,', b"", b"\xff\xfe"])
def test_a_body_that_is_no_json_is_a_parse_error(client: FlaskClient, token: str,
                                                 body: bytes) -> None:
    answer = client.post("/mcp", data=body, content_type="application/json",
                         headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.json["error"]["message"].startswith("Parse error")
    assert sdk_error(answer) == (-32700, None)


@pytest.mark.parametrize("body", [
    b"null", b'"x"', b"{}", b'{"jsonrpc":"1.0","id":1,"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":5}', b'{"jsonrpc":"2.0","id":1,"method":"ping","params":"bar"}',
    b'{"jsonrpc":"2.0","id":[1],"method":"ping"}', b'{"jsonrpc":"2.0","id":1,"result":{},"error":{}}',
    pytest.param(b'{"a":' * 300 + b"1" + b"}" * 300, id="nested-300-deep"),
])
def test_a_body_that_is_no_json_rpc_message_is_an_invalid_request(client: FlaskClient, token: str,
                                                                  body: bytes) -> None:
    answer = client.post("/mcp", data=body, content_type="application/json",
                         headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert sdk_error(answer) == (-32600, None)


def test_a_header_over_its_bound_is_an_invalid_request_in_json_rpc(client: FlaskClient,
                                                                   token: str) -> None:
    answer = rpc(client, token, "s" * 200, "ping")
    assert answer.status_code == 400
    assert sdk_error(answer) == (-32600, None)
    assert "Mcp-Session-Id" in answer.json["error"]["message"]


def open_session(client: FlaskClient, token: str, version: str) -> str:
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "a", "version": "1"}}},
        headers={"Authorization": f"Bearer {token}"})
    assert answer.json["result"]["protocolVersion"] == version
    return str(answer.headers["Mcp-Session-Id"])


def batch(client: FlaskClient, token: str, session: str | None, messages: Any,
          version: str = "2025-03-26") -> Any:
    headers = {"Authorization": f"Bearer {token}", "MCP-Protocol-Version": version}
    if session is not None:
        headers["Mcp-Session-Id"] = session
    return client.post("/mcp", json=messages, headers=headers)


def test_a_2025_03_26_session_gets_a_batch_answered_as_an_array(client: FlaskClient,
                                                                mock: KontextMock,
                                                                token: str) -> None:
    session = open_session(client, token, "2025-03-26")
    mock.advance("1m")
    answer = batch(client, token, session, [
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "no/such"},
    ])
    assert answer.status_code == 200
    replies = answer.json
    assert [r["id"] for r in replies] == ["a", 2, 3]
    assert replies[0]["result"] == {} and replies[1]["result"] == {"tools": []}
    assert replies[2]["error"]["code"] == -32601
    from mcp_types import jsonrpc_message_adapter  # each is a message the SDK reads
    assert all(jsonrpc_message_adapter.validate_python(r) for r in replies)
    assert mock.get_session(DEV_APP, session)["lastActiveAt"] == "2026-01-01T12:01:00.000Z"


def test_a_batch_of_notifications_and_responses_only_is_accepted_with_202(client: FlaskClient,
                                                                          token: str) -> None:
    session = open_session(client, token, "2025-03-26")
    answer = batch(client, token, session, [
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 9, "result": {}},
    ])
    assert answer.status_code == 202 and not answer.data


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2024-11-05"])
def test_a_batch_is_refused_for_a_session_of_a_revision_without_batches(
    client: FlaskClient, mock: KontextMock, token: str, version: str,
) -> None:
    session = open_session(client, token, version)
    before = mock.get_session(DEV_APP, session)
    mock.advance("1m")
    answer = batch(client, token, session, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
                   version=version)
    assert answer.status_code == 400
    assert sdk_error(answer) == (-32600, None)
    assert f"not supported in MCP {version}" in answer.json["error"]["message"]
    assert mock.get_session(DEV_APP, session) == before  # a refused request changes nothing


@pytest.mark.parametrize("messages", [
    [], [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}],
    [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"not": "json-rpc"}], [1],
])
def test_an_empty_batch_or_one_with_initialize_or_junk_is_refused_whole(
    client: FlaskClient, mock: KontextMock, token: str, messages: list[Any],
) -> None:
    session = open_session(client, token, "2025-03-26")
    before = mock.get_session(DEV_APP, session)
    mock.advance("1m")
    answer = batch(client, token, session, messages)
    assert answer.status_code == 400 and sdk_error(answer) == (-32600, None)
    assert mock.get_session(DEV_APP, session) == before


def test_initialize_with_a_live_session_id_is_refused_and_the_session_unchanged(
    client: FlaskClient, mock: KontextMock, token: str,
) -> None:
    session = open_session(client, token, "2025-06-18")
    before = mock.get_session(DEV_APP, session)
    count = len(mock.state.gateway.links)
    mock.advance("1m")
    again = client.post("/mcp", json={"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "2"}}},
        headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session})
    assert again.status_code == 400 and "Mcp-Session-Id" not in again.headers
    assert sdk_error(again) == (-32600, 5)
    assert "already initialized" in again.json["error"]["message"]
    assert len(mock.state.gateway.links) == count
    assert mock.get_session(DEV_APP, session) == before
    # a session that ended is no obstacle: the client initializes again as the 404 asks
    client.delete("/mcp", headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session})
    fresh = client.post("/mcp", json={"jsonrpc": "2.0", "id": 6, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "2"}}},
        headers={"Authorization": f"Bearer {token}", "Mcp-Session-Id": session})
    assert fresh.status_code == 200 and fresh.headers["Mcp-Session-Id"] != session


# -- the gateway grants' rules: a reused code, the resource, a blank scope, no client --------


def refresh_grant(client: FlaskClient, refresh_token: str, **extra: str) -> Any:
    return client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                              "refresh_token": refresh_token,
                                              "client_id": CLIENT, **extra})


def test_a_reused_code_revokes_every_token_issued_from_it(client: FlaskClient,
                                                          mock: KontextMock) -> None:
    code = redirected(authorize(client))["code"]
    first = code_grant(client, code).json
    renewed = refresh_grant(client, first["refresh_token"]).json
    unrelated = code_grant(client, redirected(authorize(client))["code"]).json
    assert initialize(client, renewed["access_token"]).status_code == 200
    again = code_grant(client, code)
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
    assert "revoked" in again.json["error_description"]
    # the code's tokens, and those refreshed from them, are gone; another code's are not
    assert initialize(client, first["access_token"]).status_code == 401
    assert initialize(client, renewed["access_token"]).status_code == 401
    assert refresh_grant(client, renewed["refresh_token"]).json["error"] == "invalid_grant"
    assert initialize(client, unrelated["access_token"]).status_code == 200
    assert refresh_grant(client, unrelated["refresh_token"]).status_code == 200


def test_a_reused_code_is_only_refused_when_configured_so(client: FlaskClient,
                                                          mock: KontextMock) -> None:
    mock.config = mock.config.with_changes(oauth_code_reuse_revokes=False)
    code = redirected(authorize(client))["code"]
    first = code_grant(client, code).json
    again = code_grant(client, code)
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
    assert initialize(client, first["access_token"]).status_code == 200


def test_the_token_is_for_the_resource_authorized_never_another(client: FlaskClient) -> None:
    code = redirected(authorize(client))["code"]
    other = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER,
        "client_id": CLIENT, "redirect_uri": REDIRECT, "resource": "http://other.example/mcp"})
    assert other.status_code == 400 and other.json["error"] == "invalid_target"
    assert "http://other.example/mcp" in other.json["error_description"]
    # left out at the token endpoint: the one authorized
    code = redirected(authorize(client))["code"]
    same = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER,
        "client_id": CLIENT, "redirect_uri": REDIRECT})
    assert same.status_code == 200
    assert initialize(client, same.json["access_token"]).status_code == 200


@pytest.mark.parametrize("scope", [" ", "   ", ""])
def test_a_refresh_with_a_blank_scope_keeps_the_scope_granted(client: FlaskClient,
                                                              scope: str) -> None:
    grant = code_grant(client, redirected(authorize(client))["code"]).json
    renewed = refresh_grant(client, grant["refresh_token"], scope=scope)
    assert renewed.status_code == 200 and renewed.json["scope"] == "mcp:invoke"
    assert initialize(client, renewed.json["access_token"]).status_code == 200


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token"])
def test_a_gateway_grant_without_client_id_is_an_invalid_request(client: FlaskClient,
                                                                 grant_type: str) -> None:
    answer = client.post("/oauth2/token", data={"grant_type": grant_type, "code": "c",
                                                "refresh_token": "r", "code_verifier": VERIFIER,
                                                "redirect_uri": REDIRECT})
    assert answer.status_code == 400 and answer.json["error"] == "invalid_request"
    assert answer.json["error_description"].startswith("client_id is required")
    assert "None" not in answer.json["error_description"]


@pytest.mark.parametrize("refused", [{"resource": "http://other.example/mcp"},
                                     {"code_verifier": "w" * 64},
                                     {"code_verifier": "short"},
                                     {"redirect_uri": "http://127.0.0.1:5001/cb"}])
def test_a_refused_redemption_leaves_the_code_as_it_was(client: FlaskClient,
                                                        refused: dict[str, str]) -> None:
    code = redirected(authorize(client))["code"]
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER,
            "client_id": CLIENT, "redirect_uri": REDIRECT, "resource": GATEWAY}
    wrong = client.post("/oauth2/token", data={**form, **refused})
    assert wrong.status_code == 400
    assert wrong.json["error"] in ("invalid_target", "invalid_grant", "invalid_request")
    assert "used" not in wrong.json["error_description"]
    # the retry with what was authorized gets the token; a reuse after it still revokes
    first = client.post("/oauth2/token", data=form)
    assert first.status_code == 200, first.json
    again = client.post("/oauth2/token", data=form)
    assert again.status_code == 400 and "revoked" in again.json["error_description"]
    assert initialize(client, first.json["access_token"]).status_code == 401


def test_a_reused_code_ends_the_mcp_sessions_its_tokens_opened(client: FlaskClient,
                                                               mock: KontextMock,
                                                               token: str) -> None:
    code = redirected(authorize(client))["code"]
    first = code_grant(client, code).json
    renewed = refresh_grant(client, first["refresh_token"]).json
    opened = initialize(client, first["access_token"]).headers["Mcp-Session-Id"]
    refreshed = initialize(client, renewed["access_token"]).headers["Mcp-Session-Id"]
    other = initialize(client, token).headers["Mcp-Session-Id"]
    mock.advance("5s")
    assert code_grant(client, code).status_code == 400
    for session in (opened, refreshed):
        record = mock.get_session(DEV_APP, session)
        assert record["status"] == "disconnected", record
        assert client.get(f"/_mock/sessions/{session}").json["disconnectReason"] == "revoked"
        assert session not in mock.state.gateway.links
    assert mock.get_session(DEV_APP, other)["status"] == "active"
    assert rpc(client, token, other, "ping").status_code == 200
    ended = client.get("/_mock/events/history?types=session.disconnected").json["items"]
    assert sorted((e["data"]["sessionId"], e["data"]["reason"]) for e in ended) == sorted(
        [(opened, "revoked"), (refreshed, "revoked")])


def test_a_reused_code_ends_the_stream_of_a_session_its_token_opened(mock: KontextMock) -> None:
    server = start(mock.app, "127.0.0.1", 0, threads=2)
    try:
        gateway = f"{server.url}/mcp"
        code = redirected(requests.get(f"{server.url}/oauth2/auth", params={
            "response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT,
            "code_challenge": CHALLENGE, "code_challenge_method": "S256", "scope": "mcp:invoke",
            "resource": gateway}, allow_redirects=False, timeout=10))["code"]
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER,
                "client_id": CLIENT, "redirect_uri": REDIRECT}
        token = requests.post(f"{server.url}/oauth2/token", data=form,
                              timeout=10).json()["access_token"]
        session = initialize_over_http(gateway, token, "held")
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"GET /mcp HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Accept: text/event-stream\r\nAuthorization: Bearer"
                         f" {token}\r\nMcp-Session-Id: {session}\r\n\r\n".encode())
            received = sock.recv(4096)
            assert received.startswith(b"HTTP/1.1 200")
            reuse = requests.post(f"{server.url}/oauth2/token", data=form, timeout=10)
            assert reuse.status_code == 400
            while not received.endswith(b"0\r\n\r\n"):  # the chunked body's end
                chunk = sock.recv(4096)
                assert chunk, received
                received += chunk
        assert mock.state.gateway.watching(session) == 0
    finally:
        server.stop()



@pytest.mark.parametrize("uri", ["http://localhost./cb", "http://[::1%25lo]:9/cb"])
def test_a_loopback_redirect_uri_in_no_rfc_8252_form_gets_no_code(client: FlaskClient,
                                                                   uri: str) -> None:
    answer = authorize(client, redirect_uri=uri)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_request"
    assert "Location" not in answer.headers


@pytest.mark.parametrize(("method", "accept", "status"), [
    ("POST", None, 406),
    ("POST", "application/json", 406),
    ("POST", "text/event-stream", 406),
    ("POST", "application/json, text/event-stream;q=0", 406),
    ("POST", "text/event-stream, application/json;q=0.5", 200),
    ("POST", "application/*, text/*", 200),
    ("POST", "*/*", 200),
    ("GET", "application/json", 406),
    ("GET", None, 406),
])
def test_the_client_must_accept_what_the_transport_says(
        client: FlaskClient, mock: KontextMock, token: str, method: str, accept: str | None,
        status: int) -> None:
    session = initialize(client, token).headers["Mcp-Session-Id"]
    headers = {"Authorization": f"Bearer {token}", "Mcp-Session-Id": session,
               "MCP-Protocol-Version": "2025-06-18", "Accept": accept or ""}
    before = mock.get_session(DEV_APP, session)["lastActiveAt"]
    mock.advance("1m")
    if method == "POST":
        answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "ping"},
                             headers=headers)
    else:  # (a stream would stay open: only refusals here, the probes open one)
        answer = client.get("/mcp", headers=headers)
    assert answer.status_code == status
    if status == 406:
        assert answer.json == {"jsonrpc": "2.0", "id": None, "error": {
            "code": -32000, "message": answer.json["error"]["message"]}}
        assert "text/event-stream" in answer.json["error"]["message"]
        # a refused request changes nothing
        assert mock.get_session(DEV_APP, session)["lastActiveAt"] == before


@pytest.mark.parametrize("accept", ["text/event-stream", "text/*", "*/*;q=0.1",
                                    "application/json, TEXT/EVENT-STREAM; charset=utf-8"])
def test_a_stream_may_open_for_any_accept_that_takes_an_event_stream(accept: str) -> None:
    check_accept("GET", accept)  # (no refusal raised)


@pytest.mark.parametrize("accept", ["image/*", "text/html", "text/event-stream;q=0",
                                    "application/json", ""])
def test_a_stream_is_refused_to_an_accept_without_an_event_stream(accept: str) -> None:
    with pytest.raises(JsonRpcError) as refused:
        check_accept("GET", accept)
    assert refused.value.status == 406


def test_a_delete_needs_no_accept(client: FlaskClient, token: str) -> None:
    session = initialize(client, token).headers["Mcp-Session-Id"]
    answer = client.delete("/mcp", headers={"Authorization": f"Bearer {token}", "Accept": "",
                                            "Mcp-Session-Id": session})
    assert answer.status_code == 204


def test_a_token_is_checked_before_accept(client: FlaskClient) -> None:
    answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                         headers={"Accept": "text/html"})
    assert answer.status_code == 401


def test_accept_is_not_required_when_configured_so(
        mock: KontextMock, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONTEXT_MOCK_MCP_REQUIRE_ACCEPT", "0")
    assert MockConfig.from_env().mcp_require_accept is False
    mock.config = mock.config.with_changes(mcp_require_accept=False)
    answer = initialize(mock.app.test_client(), token)  # (Flask's client sends no Accept)
    assert answer.status_code == 200 and answer.headers["Mcp-Session-Id"]


@pytest.mark.parametrize(("content_type", "status"), [("text/plain", 415), (None, 415)])
def test_a_body_of_another_media_type_is_refused_in_json_rpc(
        client: FlaskClient, token: str, content_type: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    answer = client.post("/mcp", data=b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
                         headers=headers)
    assert answer.status_code == status
    assert answer.json["id"] is None and answer.json["error"]["code"] == -32000


def test_a_method_the_gateway_has_not_is_refused_in_json_rpc(client: FlaskClient,
                                                             token: str) -> None:
    answer = client.put("/mcp", json={}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 405 and "POST" in answer.headers["Allow"]
    assert answer.json["id"] is None and answer.json["error"]["code"] == -32000
    # the REST API's own refusal keeps its shape
    rest = client.put("/api/v1/applications")
    assert rest.status_code == 405 and rest.json["error"] == "method_not_allowed"


def test_the_rate_limit_refuses_the_gateway_in_json_rpc(client: FlaskClient, mock: KontextMock,
                                                       token: str) -> None:
    mock.rate_limit(1)
    assert initialize(client, token).status_code == 200
    refused = initialize(client, token)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert refused.json["id"] is None and refused.json["error"]["code"] == -32000
    # the REST API's own 429 keeps its shape
    sessions = f"/api/v1/applications/{DEV_APP}/sessions"
    assert client.get(sessions, headers={"Authorization": "Bearer dev-token"}).status_code == 200
    rest = client.get(sessions, headers={"Authorization": "Bearer dev-token"})
    assert rest.status_code == 429 and rest.json["error"] == "rate_limited"
