"""Who may use the control plane: open on loopback without credentials; with an admin
token only with that token (an API token never opens it); off loopback never without one."""

from __future__ import annotations

import socket

import pytest
import requests
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.http import admin
from kontext_mock.http.serve import start

from .conftest import AUTH, DEV_APP, NOW, ValidatingClient
from .serving import read_until_closed

ADMIN = "s3cret-admin-token-for-tests"
CONTROL_CALLS = [
    ("GET", "/_mock/clock", None),
    ("POST", "/_mock/clock/advance", {"by": "1h"}),
    ("POST", "/_mock/reset", {"empty": True}),
    ("PUT", "/_mock/rate-limit", {"perMinute": 1}),
    ("GET", "/_mock/state", None),
    ("DELETE", "/_mock/journal", None),
]


def validating(mock: KontextMock) -> FlaskClient:
    mock.app.test_client_class = ValidatingClient
    return mock.app.test_client()


def test_on_loopback_without_an_admin_token_the_control_plane_is_open(client: FlaskClient) -> None:
    for method, path, body in CONTROL_CALLS:
        assert client.open(path, method=method, json=body).status_code == 200, path


@pytest.mark.parametrize(("method", "path", "body"), CONTROL_CALLS)
def test_with_an_admin_token_only_that_token_opens_the_control_plane(
    method: str, path: str, body: dict[str, str] | None,
) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN)
    client = validating(mock)
    before = mock.export_state()
    for headers in ({}, AUTH, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {ADMIN}"}, {"Authorization": ADMIN}):
        refused = client.open(path, method=method, json=body, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json["error"] == "unauthorized"
        assert "admin token" in refused.json["message"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert mock.export_state() == before
    opened = client.open(path, method=method, json=body,
                         headers={"Authorization": f"Bearer {ADMIN}"})
    assert opened.status_code == 200


def test_the_admin_token_is_checked_before_the_body(mock: KontextMock) -> None:
    guarded = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN)
    answer = validating(guarded).post("/_mock/clock/advance", json={"by": "-5m"})
    assert answer.status_code == 401


def test_the_admin_token_never_opens_the_public_api(mock: KontextMock) -> None:
    guarded = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN)
    client = validating(guarded)
    answer = client.get(f"/api/v1/applications/{DEV_APP}/sessions",
                        headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 401
    assert client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "mock.example.com"])
def test_bound_off_loopback_without_an_admin_token_every_control_call_is_refused(
    host: str,
) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, host=host)
    client = validating(mock)
    before = mock.export_state()
    for method, path, body in CONTROL_CALLS:
        refused = client.open(path, method=method, json=body)
        assert refused.status_code == 403, path
        assert refused.json["error"] == "admin_token_required"
        assert "--admin-token" in refused.json["message"]
    assert mock.export_state() == before
    # the public API is not affected
    assert client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH).status_code == 200


def test_a_request_from_another_machine_without_an_admin_token_is_refused(
    client: FlaskClient,
) -> None:
    answer = client.get("/_mock/clock", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert answer.status_code == 403
    assert client.get("/_mock/clock", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_over_real_http_the_token_is_required_and_enough() -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN)
    server = start(mock.app, "127.0.0.1", 0)
    try:
        assert requests.get(f"{server.url}/_mock/clock", timeout=5).status_code == 401
        assert requests.get(f"{server.url}/_mock/clock", headers=AUTH, timeout=5).status_code == 401
        opened = requests.get(f"{server.url}/_mock/clock", timeout=5,
                              headers={"Authorization": f"Bearer {ADMIN}"})
        assert opened.json()["frozen"] is True
    finally:
        server.stop()


@pytest.mark.parametrize("via", ["router", "flask", "server"])
def test_the_admin_token_is_checked_once_a_request(monkeypatch: pytest.MonkeyPatch,
                                                   via: str) -> None:
    # judged once at the request's head (where the body limit needs it), and the verdict
    # kept for the route's guard: on the router, on the Flask path, and over HTTP
    mock = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN)
    if via == "flask":
        mock.app.before_request(lambda: None)  # (the router steps aside for a hook)
    compared: list[str] = []
    real = admin.secrets_equal

    def counted(given: str, token: str) -> bool:
        compared.append(given)
        return real(given, token)

    monkeypatch.setattr(admin, "secrets_equal", counted)
    server = start(mock.app, "127.0.0.1", 0) if via == "server" else None
    client = validating(mock)
    try:
        for method, path, body in CONTROL_CALLS:
            for token, status in ((ADMIN, 200), ("wrong", 401)):
                compared.clear()
                headers = {"Authorization": f"Bearer {token}"}
                if server is not None:
                    answer = requests.request(method, server.url + path, json=body,
                                              headers=headers, timeout=30)
                    assert answer.status_code == status, (path, answer.text)
                else:
                    assert client.open(path, method=method, json=body,
                                       headers=headers).status_code == status, path
                assert compared == [token], path
    finally:
        if server is not None:
            server.stop()


def test_two_authorization_lines_never_open_the_control_plane() -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, admin_token=ADMIN)
    server = start(mock.app, "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"GET /_mock/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer"
                         f" {ADMIN}\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
                         .encode())
            answer = read_until_closed(sock)
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
