"""Strict mode (``--strict``, ``MockConfig.strict``): the mock checks each of its own
public API responses against ``openapi.yaml`` and answers 500 when one does not match."""

from __future__ import annotations

import orjson
import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.core.records import Session

from .conftest import AUTH, DEV_APP, DEV_SESSION, NOW

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
GET = f"{LIST}/{DEV_SESSION}"


@pytest.fixture
def strict_mock() -> KontextMock:
    return KontextMock(seed=7, now=NOW, frozen=True, strict=True)


@pytest.fixture
def strict(strict_mock: KontextMock) -> FlaskClient:
    return strict_mock.app.test_client()


def test_documented_answers_pass_unchanged(strict: FlaskClient) -> None:
    for path, status in ((GET, 200), (LIST + "?limit=3", 200), (LIST + "?limit=0", 400),
                         (f"{LIST}/00000000-0000-4000-8000-000000000000", 404)):
        answer = strict.get(path, headers=AUTH)
        assert answer.status_code == status, (path, answer.get_json())
    assert strict.get(GET).status_code == 401


def test_a_response_the_spec_does_not_describe_answers_500(
        strict_mock: KontextMock, strict: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # (read through the Python API: an answer sent over HTTP would be kept for the same
    # request, and the serialization patched below would not run again)
    good = strict_mock.get_session(DEV_APP, DEV_SESSION)
    broken = {**good, "derivedStatus": "sleeping"}  # not in the enum
    monkeypatch.setattr(Session, "to_json", lambda self, derived: orjson.dumps(broken))
    answer = strict.get(GET, headers={**AUTH, "X-Request-Id": "strict-1"})
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["error"] == "internal_error"
    assert "strict mode" in body["message"] and "derivedStatus" in body["message"]
    assert answer.headers["x-request-id"] == "strict-1"


def test_without_strict_mode_the_same_response_goes_out(
        mock: KontextMock, monkeypatch: pytest.MonkeyPatch) -> None:
    good = mock.get_session(DEV_APP, DEV_SESSION)
    broken = {**good, "derivedStatus": "sleeping"}
    monkeypatch.setattr(Session, "to_json", lambda self, derived: orjson.dumps(broken))
    answer = mock.app.test_client().get(GET, headers=AUTH)
    assert answer.status_code == 200 and answer.get_json()["session"]["derivedStatus"] == "sleeping"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_injected_fault_is_answered_as_injected(strict_mock: KontextMock,
                                                   strict: FlaskClient, status: int) -> None:
    strict_mock.add_fault(status=status, path=LIST)
    answer = strict.get(LIST, headers=AUTH)
    assert answer.status_code == status
    assert answer.get_json()["message"].startswith("injected by the mock's fault rule")
