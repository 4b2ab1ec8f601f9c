"""CORS: off unless origins are given, then exactly those origins, on the public API only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock, MockConfig
from kontext_mock.cli import build_parser, config_from_args
from kontext_mock.config import OriginError, check_origin

from .conftest import AUTH, DEV_APP, NOW, ValidatingClient

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
ALLOWED = "http://localhost:3000"
PREFLIGHT = {"Access-Control-Request-Method": "DELETE",
             "Access-Control-Request-Headers": "authorization, content-type"}


def preflight(client: FlaskClient, path: str, origin: str) -> object:
    """An OPTIONS preflight (not an operation of the spec, so not validated against it)."""
    return FlaskClient(client.application).options(path, headers={"Origin": origin, **PREFLIGHT})


def cors_headers(response: object) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()  # type: ignore[attr-defined]
            if k.lower().startswith("access-control-")}


@pytest.fixture
def cors_client() -> FlaskClient:
    mock = KontextMock(seed=7, now=NOW, frozen=True,
                       cors_origins=(ALLOWED, "https://app.example.test:8443"))
    mock.app.test_client_class = ValidatingClient
    return mock.app.test_client()


def test_cors_is_off_by_default(client: FlaskClient) -> None:
    for origin in (ALLOWED, "https://evil.example", "null"):
        assert cors_headers(client.get(LIST, headers={**AUTH, "Origin": origin})) == {}
        assert cors_headers(preflight(client, LIST, origin)) == {}


def test_an_allowed_origin_gets_exactly_its_own_origin_back(cors_client: FlaskClient) -> None:
    response = cors_client.get(LIST, headers={**AUTH, "Origin": ALLOWED})
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in headers["access-control-expose-headers"].lower()
    # bearer tokens, not cookies: credentials are never allowed
    assert "access-control-allow-credentials" not in headers


def test_a_preflight_from_an_allowed_origin_allows_the_bearer_header(cors_client: FlaskClient) -> None:
    headers = cors_headers(preflight(cors_client, LIST, ALLOWED))
    assert headers["access-control-allow-origin"] == ALLOWED
    assert "DELETE" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"].lower()
    assert int(headers["access-control-max-age"]) > 0


def test_errors_carry_cors_headers_too(cors_client: FlaskClient) -> None:
    # a browser client must be able to read why it was refused
    response = cors_client.get(LIST, headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert cors_headers(response)["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost:3000.evil.example", "http://localhost:30001",
     "https://localhost:3000", "http://localhost", "http://LOCALHOST:3000.evil", "null",
     "http://app.example.test:8443", "https://app.example.test", "https://xapp.example.test:8443"],
)
def test_any_other_origin_gets_no_cors_headers(cors_client: FlaskClient, origin: str) -> None:
    assert cors_headers(cors_client.get(LIST, headers={**AUTH, "Origin": origin})) == {}
    assert cors_headers(preflight(cors_client, LIST, origin)) == {}


def test_the_second_configured_origin_is_allowed(cors_client: FlaskClient) -> None:
    origin = "https://app.example.test:8443"
    response = cors_client.get(LIST, headers={**AUTH, "Origin": origin})
    assert cors_headers(response)["access-control-allow-origin"] == origin


def test_the_token_endpoint_is_open_to_allowed_origins(cors_client: FlaskClient) -> None:
    response = cors_client.post("/oauth2/token", headers={"Origin": ALLOWED}, data={
        "grant_type": "client_credentials", "client_id": "dev-client", "client_secret": "dev-secret"})
    assert response.status_code == 200
    assert cors_headers(response)["access-control-allow-origin"] == ALLOWED


def test_the_control_plane_never_answers_cors(cors_client: FlaskClient) -> None:
    for path in ("/_mock/clock", "/_mock/state", "/_mock/reset"):
        for method in ("GET", "POST"):
            response = cors_client.open(path, method=method, headers={"Origin": ALLOWED})
            assert cors_headers(response) == {}, (method, path)
        assert cors_headers(preflight(cors_client, path, ALLOWED)) == {}


@pytest.mark.parametrize(
    "bad", ["*", "http://*.example.com", "localhost:3000", "http://localhost:3000/app",
            "ftp://x.example", "http://x.example?q", "null", "", "http://exa mple.com",
            "http://^example$.com"],
)
def test_only_exact_origins_are_accepted(bad: str) -> None:
    with pytest.raises(OriginError):
        check_origin(bad)


def test_origins_are_normalized_without_a_trailing_slash() -> None:
    assert check_origin("http://localhost:3000/") == "http://localhost:3000"
    assert check_origin("http://[::1]:8080") == "http://[::1]:8080"


def test_the_cli_option_is_repeatable() -> None:
    args = build_parser().parse_args(
        ["serve", "--cors-origin", ALLOWED, "--cors-origin", "https://b.example"])
    assert config_from_args(args).cors_origins == (ALLOWED, "https://b.example")
    assert config_from_args(build_parser().parse_args(["serve"])).cors_origins == ()


def test_the_environment_can_give_origins() -> None:
    config = MockConfig.from_env({"KONTEXT_MOCK_CORS_ORIGINS": f"{ALLOWED} https://b.example"})
    assert config.cors_origins == (ALLOWED, "https://b.example")


def test_a_bad_origin_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "kontext_mock.cli", "serve", "--cors-origin", "*"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert "not an origin" in proc.stderr and "Traceback" not in proc.stderr
