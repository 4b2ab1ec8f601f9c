"""Scenarios: the shipped ones load by HTTP and Python, the large one fast, and a bad one
is refused with its file, line and field, leaving the mock as it was."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from flask.testing import FlaskClient

from kontext_mock import ApiError, KontextMock, MockConfig
from kontext_mock.core.scenarios import ScenarioError
from kontext_mock.fixtures import KontextServer

from .conftest import AUTH, DEV_APP, NOW

SHIPPED = ["all-expired", "empty", "large", "mixed", "revoke-in-progress", "two-orgs"]
GLOBEX_APP = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"


def test_the_shipped_scenarios_are_listed_with_descriptions(client: FlaskClient) -> None:
    items = client.get("/_mock/scenarios").json["items"]
    assert [i["name"] for i in items] == SHIPPED
    assert all(i["description"] for i in items)


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "large"])
def test_each_shipped_scenario_loads_over_http_and_the_dev_token_still_works(
    client: FlaskClient, name: str,
) -> None:
    answer = client.post("/_mock/scenarios/load", json={"name": name})
    assert answer.status_code == 200
    assert answer.json["scenario"] == name
    listed = client.get(f"/api/v1/applications/{DEV_APP}/sessions?status=all&limit=200",
                        headers=AUTH)
    assert listed.status_code == 200
    assert len(listed.json["items"]) == (0 if name == "empty" else len(listed.json["items"]))


def test_the_mixed_scenario_has_every_state(mock: KontextMock) -> None:
    mock.load_scenario("mixed")
    states = {s["derivedStatus"] for s in mock.list_sessions(DEV_APP, status="all", limit=200)}
    assert states == {"active", "idle", "expired", "disconnected"}


def test_the_all_expired_scenario_lists_nothing_connected_yet_revoke_disconnects_all(
    mock: KontextMock,
) -> None:
    mock.load_scenario("all-expired")
    assert mock.list_sessions(DEV_APP) == []
    assert {s["derivedStatus"] for s in mock.list_sessions(DEV_APP, status="all")} == {"expired"}
    assert mock.revoke_all(DEV_APP) == 25


def test_the_two_organizations_scenario_keeps_them_apart(client: FlaskClient) -> None:
    client.post("/_mock/scenarios/load", json={"name": "two-orgs"})
    globex = {"Authorization": "Bearer globex-token"}
    mine = client.get(f"/api/v1/applications/{GLOBEX_APP}/sessions?status=all", headers=globex)
    assert mine.status_code == 200 and len(mine.json["items"]) == 12
    assert client.get(f"/api/v1/applications/{GLOBEX_APP}/sessions", headers=AUTH).status_code == 404
    assert client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=globex).status_code == 404
    token = client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "globex-client",
        "client_secret": "globex-secret"})
    assert token.status_code == 200


def test_the_large_scenario_loads_10000_sessions(client: FlaskClient) -> None:
    # Load time is measured, not asserted (the machine is shared): the figure is printed
    # (pytest -s) and quoted in the notes; bench/ owns timing.
    started = time.perf_counter()
    answer = client.post("/_mock/scenarios/load", json={"name": "large"})
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    assert answer.json["sessions"] == 10_000
    print(f"large over HTTP: {elapsed:.2f} s")
    page = client.get(f"/api/v1/applications/{DEV_APP}/sessions?status=all&limit=200", headers=AUTH)
    assert len(page.json["items"]) == 200


def test_the_large_scenario_loads_in_python(mock: KontextMock) -> None:
    started = time.perf_counter()
    mock.load_scenario("large")
    elapsed = time.perf_counter() - started
    print(f"large in Python: {elapsed:.2f} s")
    assert len(mock.store.application_sessions(DEV_APP)) == 10_000


def test_a_scenario_gives_the_same_bytes_every_time() -> None:
    def load() -> bytes:
        mock = KontextMock(seed=99, now=NOW, frozen=True)
        mock.load_scenario("mixed")
        return orjson.dumps(mock.export_state())

    assert load() == load()


def test_a_scenario_can_set_and_freeze_the_clock(mock: KontextMock, tmp_path: Path) -> None:
    path = tmp_path / "clocked.yaml"
    path.write_text("clock:\n  now: 2030-05-01T09:00:00Z\n  frozen: true\n")
    mock.unfreeze()
    mock.load_scenario(path)
    assert mock.clock_state() == {"now": "2030-05-01T09:00:00.000Z", "frozen": True}


def test_a_configured_scenario_folder_is_searched_by_name(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "description: mine\norganizations:\n  - dev: true\n    applications:\n"
        "      - dev: true\n        sessions:\n          - {state: idle, hostname: h1}\n")
    mock = KontextMock(seed=1, now=NOW, frozen=True, scenario_dirs=(str(tmp_path),))
    assert ("mine", "mine") in mock.scenarios()
    mock.load_scenario("mine")
    (only,) = mock.list_sessions(DEV_APP, status="all")
    assert (only["hostname"], only["derivedStatus"]) == ("h1", "idle")


# -- bad scenarios -----------------------------------------------------------------------------


def test_an_unknown_scenario_is_a_404_over_http_and_an_error_in_python(
    client: FlaskClient, mock: KontextMock,
) -> None:
    before = client.get("/_mock/state").json
    answer = client.post("/_mock/scenarios/load", json={"name": "nope"})
    assert answer.status_code == 404
    assert "unknown scenario 'nope'" in answer.json["message"]
    assert "mixed" in answer.json["message"]
    with pytest.raises(ApiError, match="unknown scenario"):
        mock.load_scenario("nope")
    assert client.get("/_mock/state").json == before


@pytest.mark.parametrize("name", ["../../etc/passwd", "mixed.yaml", "/etc/hosts", "a/b", ""])
def test_a_path_is_never_a_scenario_name_over_http(client: FlaskClient, name: str) -> None:
    answer = client.post("/_mock/scenarios/load", json={"name": name})
    assert answer.status_code == 400


@pytest.mark.parametrize("name", ["../etc/passwd", "../fixtures/scenarios/mixed.yaml", "a/../b"])
def test_a_name_with_dots_is_refused_in_python(mock: KontextMock, name: str) -> None:
    with pytest.raises(ApiError) as raised:
        mock.load_scenario(name)
    assert raised.value.status in (400, 404)


BAD = {
    "malformed YAML": (
        "description: broken\norganizations:\n  - dev: true\n    applications: [\n",
        5, None, "malformed YAML",
    ),
    "times out of order": (
        "organizations:\n"
        "  - dev: true\n"
        "    applications:\n"
        "      - dev: true\n"
        "        sessions:\n"
        "          - state: active\n"
        "          - state: active\n"
        "            connectedAt: -1m\n"
        "            lastActiveAt: -10m\n",
        9, "organizations[0].applications[0].sessions[1].lastActiveAt", "out of order",
    ),
    "an unknown field": (
        "organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
        "        sessions:\n          - state: active\n            lastActive: -3m\n",
        7, "organizations[0].applications[0].sessions[0].lastActive", "unknown field",
    ),
    "an unknown state": (
        "organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
        "        sessions:\n          - state: sleepy\n",
        6, "organizations[0].applications[0].sessions[0].state", "sleepy",
    ),
    "a negative duration": (
        "organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
        "        sessions:\n          - lifecycle: {until: +10m, heartbeatEvery: -5s}\n",
        6, "organizations[0].applications[0].sessions[0].lifecycle.heartbeatEvery", "negative",
    ),
    "an unparseable time": (
        "organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
        "        sessions:\n          - state: idle\n            lastActiveAt: yesterday\n",
        7, "organizations[0].applications[0].sessions[0].lastActiveAt", "not an ISO 8601",
    ),
    "an unknown scope": (
        "organizations:\n  - name: Acme\n    clients:\n      - clientId: c\n"
        "        clientSecret: s\n        scopes: [root]\n",
        6, "organizations[0].clients[0].scopes", "unknown scope",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_scenario_file_names_the_file_line_and_field_and_changes_nothing(
    mock: KontextMock, tmp_path: Path, case: str,
) -> None:
    text, line, field, words = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    before = orjson.dumps(mock.export_state())
    with pytest.raises(ScenarioError) as raised:
        mock.load_scenario(path)
    error = raised.value
    assert (error.status, error.code) == (422, "invalid_scenario")
    assert error.extra["file"] == str(path)
    assert error.extra["line"] == line
    assert error.extra["field"] == field
    assert words in error.message
    assert error.message.startswith(f"{path}:{line}:")
    assert orjson.dumps(mock.export_state()) == before


def test_a_bad_inline_scenario_over_http_is_a_422_with_its_line(client: FlaskClient) -> None:
    before = client.get("/_mock/state").json
    text, line, field, _ = BAD["times out of order"]
    answer = client.post("/_mock/scenarios/load", json={"yaml": text})
    assert answer.status_code == 422
    assert answer.json["error"] == "invalid_scenario"
    assert (answer.json["line"], answer.json["field"]) == (line, field)
    assert client.get("/_mock/state").json == before


def test_a_good_inline_scenario_over_http_loads(client: FlaskClient) -> None:
    text = ("organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
            "        sessions:\n          - {state: disconnected, disconnectReason: revoked}\n")
    answer = client.post("/_mock/scenarios/load", json={"yaml": text})
    assert (answer.status_code, answer.json["sessions"]) == (200, 1)


def test_a_scenario_s_idle_threshold_applies_and_a_bad_one_is_named() -> None:
    mock = KontextMock(now=NOW, frozen=True)
    mock.load_scenario_text(
        "settings:\n  idleAfter: 2m\norganizations:\n  - dev: true\n    applications:\n"
        "      - dev: true\n        sessions:\n          - {lastActiveAt: -3m}\n")
    assert mock.idle_after == timedelta(minutes=2)
    assert [s["derivedStatus"] for s in mock.list_sessions(DEV_APP)] == ["idle"]
    with pytest.raises(ScenarioError) as caught:
        mock.load_scenario_text("description: x\nsettings:\n  idleAfter: soon\n")
    assert caught.value.extra["field"] == "settings.idleAfter" and caught.value.extra["line"] == 3
    assert mock.idle_after == timedelta(minutes=2)  # refused whole: nothing changed


def test_a_test_s_own_idle_threshold_wins_over_its_scenario_s(tmp_path: Path) -> None:
    scenario = tmp_path / "recorded.yaml"
    scenario.write_text("settings:\n  idleAfter: 2m\n")
    server = KontextServer(MockConfig(frozen=True), {"scenario": str(scenario)})
    assert server.checkout().mock.idle_after == timedelta(minutes=2)
    assert server.checkout({"idle_after": "10m"}).mock.idle_after == timedelta(minutes=10)
