"""The control plane is closed whenever the mock is reachable from other machines, opens
only to the admin token (never to an API token), and to no web page but its own dashboard.

The non-loopback cases use the configuration the CLI builds for ``--host 0.0.0.0`` and the
CLI's own start-up path with the server call replaced, so no test binds beyond loopback.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

import kontext_mock.cli as cli
import kontext_mock.http.serve as serving
from kontext_mock import KontextMock
from kontext_mock.http.origins import control_origin_refusal
from kontext_mock.http.serve import start
from kontext_mock.http.spec import Operation, Spec

from .conftest import AUTH, DEV_APP, NOW, ValidatingClient

CONTROL = Spec.from_file(Path(cli.__file__).resolve().parent / "control.yaml")
OPERATIONS = list(CONTROL)
# The dashboard's page and files hold no data: with an admin token they are served without
# it (the page then asks for it); every other operation needs it.
PAGE_OPERATIONS = [op for op in OPERATIONS if any(not alt for alt in op.security)]
DATA_OPERATIONS = [op for op in OPERATIONS if op not in PAGE_OPERATIONS]
LIST = f"/api/v1/applications/{DEV_APP}/sessions"
SOME_ID = "44444444-4444-4444-8444-444444444444"


def control_request(client: FlaskClient, op: Operation, headers: dict[str, str] | None = None,
                    host: str = "localhost", **environ: Any) -> Any:
    path = op.path
    for p in op.parameters:
        if p.location == "path":
            path = path.replace("{" + p.name + "}", "fault-1" if p.name == "faultId" else SOME_ID)
    body = {"json": {}} if op.body_media_type == "application/json" else {}
    return client.open(path, method=op.method, headers=headers or {}, base_url=f"http://{host}",
                       environ_base={"REMOTE_ADDR": "127.0.0.1", **environ}, **body)


def validating(app: Flask) -> FlaskClient:
    app.test_client_class = ValidatingClient
    return app.test_client()


def access_token(client: FlaskClient) -> str:
    response = client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "dev-client", "client_secret": "dev-secret"})
    return str(response.json["access_token"])


# -- bound beyond loopback --------------------------------------------------------------------


@pytest.fixture
def exposed() -> KontextMock:
    """A mock configured as ``kontext-mock serve --host 0.0.0.0`` configures it."""
    args = cli.build_parser().parse_args(["serve", "--host", "0.0.0.0", "--seed", "3",
                                          "--now", NOW, "--frozen"])
    return KontextMock(cli.config_from_args(args))


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_without_an_admin_token_every_control_route_is_closed_off_loopback(
    exposed: KontextMock, op: Operation
) -> None:
    client = validating(exposed.app)
    before = exposed.export_state()
    for headers in ({}, AUTH, {"Authorization": f"Bearer {access_token(client)}"},
                    {"Authorization": "Bearer "}):
        response = control_request(client, op, headers)
        assert response.status_code == 403, (headers, response.json)
        assert response.json["error"] == "admin_token_required"
    assert exposed.export_state()["sessions"] == before["sessions"]
    # the public API is what a bound-to-all mock is for
    assert client.get(LIST, headers=AUTH).status_code == 200


@pytest.fixture
def started_by_the_cli(monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> tuple[Flask, str]:
    """``kontext-mock serve --host 0.0.0.0`` up to the point it would bind: its app and
    the admin token it printed."""
    captured: dict[str, Any] = {}

    def no_bind(app: Flask, host: str, port: int, threads: int = 8, on_ready: Any = None) -> None:
        captured["app"] = app
        on_ready(host, 8080)

    # the CLI imports the server only when it serves (its other commands start faster)
    monkeypatch.setattr(serving, "serve_forever", no_bind)
    assert cli.main(["serve", "--host", "0.0.0.0", "--now", NOW, "--frozen"]) == 0
    out = capsys.readouterr()
    assert "reachable from other machines" in out.err
    token = next(line.split()[2] for line in out.out.splitlines() if "admin token:" in line)
    return captured["app"], token


@pytest.mark.parametrize("op", DATA_OPERATIONS, ids=lambda op: op.operation_id)
def test_the_cli_generates_an_admin_token_and_nothing_else_opens_the_control_plane(
    started_by_the_cli: tuple[Flask, str], op: Operation
) -> None:
    app, admin = started_by_the_cli
    client = validating(app)
    wrong = [{}, AUTH, {"Authorization": f"Bearer {access_token(client)}"},
             {"Authorization": f"Bearer {admin[:-1]}"}, {"Authorization": f"Bearer {admin}x"},
             {"Authorization": f"Basic {admin}"}, {"Authorization": admin},
             {"X-Admin-Token": admin}]
    for headers in wrong:
        response = control_request(client, op, headers, REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 401, (headers, response.json)
        assert response.json["error"] == "unauthorized"
    if op.operation_id == "getClock":
        ok = control_request(client, op, {"Authorization": f"Bearer {admin}"},
                             REMOTE_ADDR="203.0.113.9")
        assert ok.status_code == 200


def test_only_the_dashboards_files_are_served_without_the_admin_token(
    started_by_the_cli: tuple[Flask, str]
) -> None:
    assert {op.operation_id for op in PAGE_OPERATIONS} == {
        "redirectDashboard", "getDashboard", "getDashboardFile"}
    app, admin = started_by_the_cli
    client = validating(app)
    for path in ("/_mock/ui/", "/_mock/ui/dashboard.js", "/_mock/ui/dashboard.css"):
        page = client.get(path, base_url="http://mock.internal:8080",
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert page.status_code == 200, path
        assert admin.encode() not in page.data
    assert client.get("/_mock/ui", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 308
    # what the page then asks for is refused without the token
    data = client.get("/_mock/applications", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert data.status_code == 401


def test_the_admin_token_is_not_an_api_token(started_by_the_cli: tuple[Flask, str]) -> None:
    app, admin = started_by_the_cli
    response = validating(app).get(LIST, headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 401


def test_an_empty_admin_token_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--host", "0.0.0.0", "--admin-token", "  "])
    assert exit_info.value.code == 2


# -- on loopback --------------------------------------------------------------------------------


def test_on_loopback_a_request_from_another_machine_is_refused(client: FlaskClient) -> None:
    # e.g. a port forwarded by a container runtime: the bind is loopback, the peer is not
    clock = next(op for op in OPERATIONS if op.operation_id == "getClock")
    assert control_request(client, clock).status_code == 200
    refused = control_request(client, clock, REMOTE_ADDR="192.168.1.20")
    assert refused.status_code == 403 and refused.json["error"] == "admin_token_required"


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:3000"])
def test_no_web_page_reaches_the_control_plane(mock: KontextMock, op: Operation,
                                               origin: str) -> None:
    client = validating(KontextMock(seed=7, now=NOW, frozen=True,
                                    cors_origins=("http://localhost:3000",)).app)
    response = control_request(client, op, {"Origin": origin})
    assert response.status_code == 403
    assert response.json["error"] == "cross_origin_refused"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(("origin", "host"), [
    ("http://localhost:8080", "localhost:8080"), ("http://127.0.0.1:8080", "127.0.0.1:8080"),
    ("http://[::1]:8080", "[::1]:8080"), ("http://localhost", "localhost"),
    ("http://localhost", "localhost:80"), ("http://localhost:80", "localhost"),
    ("HTTP://LocalHost:8080", "localhost:8080"), (None, "localhost:8080"),
])
def test_the_mocks_own_origin_is_let_through(origin: str | None, host: str) -> None:
    assert control_origin_refusal(origin, host) is None


@pytest.mark.parametrize(("origin", "host"), [
    ("http://localhost:3000", "localhost:8080"),  # another port is another origin
    ("http://127.0.0.1:8080", "localhost:8080"),  # so is another name for this machine
    ("https://localhost:8080", "localhost:8080"), ("http://localhost:8080.evil.example", "localhost:8080"),
    ("http://evil.example", "localhost:8080"), ("null", "localhost:8080"), ("", "localhost:8080"),
    ("http://localhost:8080/", "localhost:8080"), ("localhost:8080", "localhost:8080"),
    ("http://[::1]:8080", "[::1]:8081"), ("http://mock.internal", "mock.internal:8080"),
])
def test_every_other_origin_is_refused(origin: str, host: str) -> None:
    refusal = control_origin_refusal(origin, host)
    assert refusal is not None and "its own origin only" in refusal


def test_the_scheme_is_part_of_the_origin() -> None:
    assert control_origin_refusal("https://mock.example:443", "mock.example", "https") is None
    assert control_origin_refusal("http://mock.example", "mock.example", "https") is not None
    assert control_origin_refusal("https://mock.example", "mock.example", "http") is not None


def test_a_rebound_name_is_its_own_origin_and_its_host_refuses_it() -> None:
    # A page of attacker.net that points attacker.net at 127.0.0.1 is same-origin with the
    # mock under that name: only the Host tells it apart, while no token protects the plane.
    assert control_origin_refusal("http://attacker.net:8080", "attacker.net:8080") is None
    open_plane = validating(KontextMock(seed=7, now=NOW, frozen=True).app)
    refused = open_plane.get("/_mock/clock", headers={"Origin": "http://attacker.net:8080"},
                             base_url="http://attacker.net:8080")
    assert refused.json["error"] == "host_refused"
    # with an admin token any name may reach it (the token decides), its pages included
    guarded = validating(KontextMock(seed=7, now=NOW, frozen=True, admin_token="adm-123456789").app)
    answer = guarded.get("/_mock/clock", base_url="http://mock.internal:8080", headers={
        "Origin": "http://mock.internal:8080", "Authorization": "Bearer adm-123456789"})
    assert answer.status_code == 200


def test_the_dashboards_own_writes_reach_the_control_plane(client: FlaskClient,
                                                           mock: KontextMock) -> None:
    # a browser sends Origin on its same-origin writes: the page's own requests
    start = mock.now()
    own = client.post("/_mock/clock/advance", json={"by": "PT1M"},
                      headers={"Origin": "http://localhost:8080"}, base_url="http://localhost:8080")
    assert own.status_code == 200 and mock.now() - start == timedelta(minutes=1)
    for origin, host, why in (("http://localhost:3000", "localhost:8080", "cross_origin_refused"),
                              ("http://attacker.net:8080", "attacker.net:8080", "host_refused")):
        refused = client.post("/_mock/clock/advance", json={"by": "PT1M"},
                              headers={"Origin": origin}, base_url=f"http://{host}")
        assert refused.json["error"] == why, origin
    assert mock.now() - start == timedelta(minutes=1)


@pytest.mark.parametrize("host", ["attacker.net", "attacker.net:8080", "127.0.0.1.nip.io:8080",
                                  "localhost.attacker.net", "10.0.0.5:8080"])
def test_a_dns_rebinding_host_is_refused_while_the_control_plane_is_open(
    client: FlaskClient, host: str
) -> None:
    clock = next(op for op in OPERATIONS if op.operation_id == "getClock")
    response = control_request(client, clock, host=host)
    assert response.status_code == 421 and response.json["error"] == "host_refused"
    # the public API too, while the mock listens on loopback: a page that rebinds a name of
    # its own to 127.0.0.1 could otherwise read it with a token it learned (the dev token)
    public = client.get(LIST, headers=AUTH, base_url=f"http://{host}")
    assert public.status_code == 421 and public.json["error"] == "host_refused"


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080",
                                  "127.0.0.2", "kontext-mock.invalid", "kontext.test"])
def test_loopback_and_reserved_host_names_reach_the_open_control_plane(
    client: FlaskClient, host: str
) -> None:
    clock = next(op for op in OPERATIONS if op.operation_id == "getClock")
    assert control_request(client, clock, host=host).status_code == 200


def test_with_an_admin_token_any_host_may_use_it() -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, host="0.0.0.0", admin_token="adm-123456789")
    clock = next(op for op in OPERATIONS if op.operation_id == "getClock")
    response = control_request(validating(mock.app), clock,
                               {"Authorization": "Bearer adm-123456789"},
                               host="mock.internal:8080", REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 200


def _this_machines_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        address: str = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_forwarded_headers_are_recorded_never_trusted(mock: KontextMock) -> None:
    # The server passes X-Forwarded-For and its kin to the app as any other header (no
    # proxy is trusted): the journal shows what the client sent, and no header makes a
    # peer look local to the control plane's guard.
    claims = {"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1",
              "X-Forwarded-Host": "localhost", "X-Real-Ip": "127.0.0.1"}
    server = start(mock.app, "0.0.0.0", 0)  # the mock itself is configured for loopback
    try:
        local = f"http://127.0.0.1:{server.port}"
        outside = {"X-Forwarded-For": "192.168.1.20", "Forwarded": "for=192.168.1.20"}
        assert requests.get(local + "/_mock/clock", headers=outside, timeout=5).status_code == 200
        address = _this_machines_address()
        if address is not None:  # a peer that is not local, claiming to be
            refused = requests.get(f"http://{address}:{server.port}/_mock/clock", timeout=5,
                                   headers={**claims, "Host": f"127.0.0.1:{server.port}"})
            assert refused.status_code == 403
            assert refused.json()["error"] == "admin_token_required"
        assert requests.get(local + LIST, headers={**AUTH, **claims}, timeout=5).ok
    finally:
        server.stop()
    recorded = mock.journal.entries()[-1]["headers"]
    assert {k: recorded[k.lower()] for k in claims} == claims
