"""No secret (client secret, access token, the admin token) appears in the server's logs,
in an error body, or in the request journal, wherever a client put it."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kontext_mock.core.records import OAuthClient

from .conftest import DEV_APP, LiveMock

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
SECRET = "s3cr3t-Cl1ent-V4lue"
WRONG_SECRET = "wr0ng-S3cret-Gu3ss"
WRONG_TOKEN = "f4ke-T0ken-Val1dLooking"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything any logger says, at every level."""
    with caplog.at_level(logging.DEBUG):
        for name in SERVER_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)
        yield caplog


SERVER_LOGGERS = ("kontext_mock", "werkzeug", "flask")


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """What the server side logged (the test's own HTTP client logs its URLs: not ours)."""
    out = []
    for record in caplog.records:
        if not record.name.startswith(SERVER_LOGGERS):
            continue
        out.append(record.getMessage())
        if record.exc_info:
            out.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(out)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def exercise(live: LiveMock) -> tuple[list[str], list[bytes]]:
    """Send secrets every way a client might, right and wrong; the tokens issued and every
    error body answered."""
    http, url = live.http, live.url
    live.mock.add_client(OAuthClient("ci-client", SECRET, live.mock.config.dev_organization_id,
                                     frozenset({"management:all"})))
    form = {"grant_type": "client_credentials", "client_id": "ci-client"}
    answers = [
        http.post(f"{url}/oauth2/token", data={**form, "client_secret": SECRET}),
        http.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials"},
                  headers={"Authorization": basic("ci-client", SECRET)}),
        http.post(f"{url}/oauth2/token", data={**form, "client_secret": WRONG_SECRET}),
        http.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials"},
                  headers={"Authorization": basic("ci-client", WRONG_SECRET)}),
        http.post(f"{url}/oauth2/token", data={**form, "client_id": "nobody",
                                               "client_secret": SECRET}),
        # secret in the wrong places: both ways at once, a JSON body, the query string
        http.post(f"{url}/oauth2/token", data={**form, "client_secret": SECRET},
                  headers={"Authorization": basic("ci-client", SECRET)}),
        http.post(f"{url}/oauth2/token", json={**form, "client_secret": SECRET}),
        http.post(f"{url}/oauth2/token?client_secret={SECRET}", data=form),
        http.post(f"{url}/oauth2/token", data=f"grant_type=client_credentials&client_secret={SECRET}",
                  headers={"Content-Type": "text/plain"}),
        http.post(f"{url}/oauth2/token", data={**form, "client_secret": SECRET,
                                               "scope": "management:nothing"}),
    ]
    tokens = [a.json()["access_token"] for a in answers if a.status_code == 200]
    assert len(tokens) == 2
    for token in (*tokens, WRONG_TOKEN):
        answers += [
            http.get(f"{url}{LIST}", headers={"Authorization": f"Bearer {token}"}),
            http.get(f"{url}{LIST}?access_token={token}"),
            http.get(f"{url}{LIST}", headers={"Authorization": f"Token {token}"}),
            http.delete(f"{url}{LIST}/x", headers={"Authorization": f"Bearer {token}"}),
            http.post(f"{url}/api/v1/agent-sessions", headers={"Authorization": f"Bearer {token}"},
                      data=f'{{"accessToken": "{token}", "broken json'),
        ]
    errors = [a.content for a in answers if a.status_code >= 400]
    assert len(errors) >= 15
    return tokens, errors


def test_no_secret_in_the_logs_or_error_bodies(live: LiveMock,
                                               logs: pytest.LogCaptureFixture) -> None:
    tokens, errors = exercise(live)
    secrets = [SECRET, WRONG_SECRET, WRONG_TOKEN, *tokens]
    logged = everything_logged(logs)
    for secret in secrets:
        assert secret not in logged
        for body in errors:
            assert secret.encode() not in body, body


def test_no_secret_in_the_journal(live: LiveMock) -> None:
    journal = getattr(live.mock, "journal", None)
    if journal is None:
        pytest.skip("this mock keeps no request journal")
    tokens, _ = exercise(live)
    entries: list[dict[str, Any]] = journal.entries()
    assert len(entries) >= 25
    dumped = orjson.dumps(entries).decode()
    for secret in (SECRET, WRONG_SECRET, WRONG_TOKEN, *tokens):
        assert secret not in dumped, next(
            (e for e in entries if secret in orjson.dumps(e).decode()), None)
    # what is kept says what was sent: the scheme of the credentials, not their value
    assert any(e["headers"].get("authorization", "").startswith("Basic ") for e in entries)
    assert any(e["headers"].get("authorization", "").startswith("Bearer ") for e in entries)


def test_no_secret_in_an_unexpected_errors_log(live: LiveMock, logs: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A crash inside the token endpoint, with the secret in the request: the log says
    # which route failed and why, not what the request carried.
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("storage failed")

    monkeypatch.setattr(live.mock, "issue_token", boom)
    response = live.http.post(f"{live.url}/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "dev-client", "client_secret": SECRET})
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    logged = everything_logged(logs)
    assert "storage failed" in logged
    assert SECRET not in logged and SECRET not in response.text

