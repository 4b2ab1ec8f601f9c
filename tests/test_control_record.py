"""``kontext-mock record``: a real account (here: the second implementation, or the mock)
read into a scenario file that loads back with the same sessions and statuses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from kontext_mock import KontextMock, MockConfig
from kontext_mock.cli import main
from kontext_mock.fixtures import KontextServer
from kontext_mock.http.serve import RunningServer, start

from .second_implementation import REGION, OtherSessionsApi
from .serving import serve_process

pytestmark = pytest.mark.slow  # recordings of served mocks

DEV_APP = MockConfig().dev_application_id
NOW = "2026-01-01T12:00:00Z"


def record(url: str, out: Path, *args: str) -> int:
    return main(["record", "--base-url", url, "--out", str(out), *args])


def statuses(mock: KontextMock, app: str = DEV_APP) -> dict[str, str]:
    return {s["id"]: s["derivedStatus"] for s in mock.list_sessions(app, status="all", limit=200)}


def test_a_recording_loads_with_the_same_sessions_and_the_same_status_each(
    second_implementation: tuple[OtherSessionsApi, RunningServer], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, server = second_implementation
    out = tmp_path / "recorded.yaml"
    assert record(server.url, out, "--token", "dev-token", "--no-anonymize") == 0
    said = capsys.readouterr().out
    assert "fields the scenario does not keep: region" in said  # reported, not fatal
    replay = KontextMock()
    replay.load_scenario(out)
    assert statuses(replay) == statuses(api)
    # its statuses need its own idle threshold (the second implementation's is 2 minutes)
    assert "idleAfter" in yaml.safe_load(out.read_text())["settings"]
    assert replay.idle_after < MockConfig().idle_after


def test_anonymized_the_people_and_machines_change_and_the_statuses_do_not(
    second_implementation: tuple[OtherSessionsApi, RunningServer], tmp_path: Path,
) -> None:
    api, server = second_implementation
    out = tmp_path / "anonymized.yaml"
    assert record(server.url, out, "--token", "dev-token") == 0
    replay = KontextMock()
    replay.load_scenario(out)
    recorded = api.list_sessions(DEV_APP, status="all", limit=200)
    loaded = replay.list_sessions(DEV_APP, status="all", limit=200)  # dev credentials read it
    assert sorted(s["derivedStatus"] for s in loaded) == sorted(
        s["derivedStatus"] for s in recorded)
    assert not {s["id"] for s in loaded} & {s["id"] for s in recorded}
    real_hosts = {s["hostname"] for s in recorded} - {None}
    assert real_hosts and not real_hosts & {s["hostname"] for s in loaded}
    # user agents are drawn from the fake data's (few, common) ones: remapped, not all unique
    assert {s["userAgent"] for s in loaded} != {s["userAgent"] for s in recorded}
    assert sorted(str(s["clientInfo"]) for s in loaded) == sorted(
        str(s["clientInfo"]) for s in recorded)  # kept
    text = out.read_text()
    assert REGION not in text and "region" in text  # named in the header, its values not kept


def test_one_host_is_one_made_up_host(tmp_path: Path) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, sessions=0)
    for _ in range(3):
        mock.add_session(DEV_APP, "active", hostname="shared-box.corp.example")
    server = start(mock.app, "127.0.0.1", 0)
    try:
        assert record(server.url, tmp_path / "r.yaml", "--token", "dev-token") == 0
    finally:
        server.stop()
    data = yaml.safe_load((tmp_path / "r.yaml").read_text())
    sessions = data["organizations"][0]["applications"][0]["sessions"]
    hosts = {s["hostname"] for s in sessions}
    assert len(sessions) == 3 and len(hosts) == 1 and "shared-box" not in hosts.pop()
    assert {s["name"].split("@")[1] for s in sessions} == {sessions[0]["hostname"]}


def test_times_are_relative_so_the_statuses_hold_whenever_it_loads(tmp_path: Path) -> None:
    source = KontextMock(seed=7, now=NOW, frozen=True)
    server = start(source.app, "127.0.0.1", 0)
    try:
        assert record(server.url, tmp_path / "r.yaml", "--token", "dev-token",
                      "--no-anonymize") == 0
    finally:
        server.stop()
    for later in ("2026-03-01T08:00:00Z", "2027-06-30T23:59:59Z"):
        replay = KontextMock(now=later, frozen=True)
        replay.load_scenario(tmp_path / "r.yaml")
        assert statuses(replay) == statuses(source)
        assert "settings" not in yaml.safe_load((tmp_path / "r.yaml").read_text())  # 5m fits


def test_every_application_the_credential_sees_is_recorded_with_its_id(tmp_path: Path) -> None:
    source = KontextMock(seed=7, now=NOW, frozen=True)
    other_app = source.add_application(name="Support bot").id
    source.add_session(other_app, "idle")
    hidden = source.add_application(source.add_organization(name="Globex").id).id
    server = start(source.app, "127.0.0.1", 0)
    try:
        assert record(server.url, tmp_path / "r.yaml", "--client-id", "dev-client",
                      "--client-secret", "dev-secret") == 0
    finally:
        server.stop()
    text = (tmp_path / "r.yaml").read_text()
    assert "dev-secret" not in text and "dev-client" not in text and "access_token" not in text
    apps = yaml.safe_load(text)["organizations"][0]["applications"]
    assert [a.get("id") for a in apps if not a.get("dev")] == [other_app]
    assert hidden not in text
    # the plugin loads it by path, and the dev credentials read the recorded application
    server_ = KontextServer(MockConfig(now=None), {"scenario": str(tmp_path / "r.yaml")})
    handle = server_.checkout()
    assert [s["derivedStatus"] for s in handle.list_sessions(application_id=other_app,
                                                              status="all")] == ["idle"]


def rate_limited_once_every(app: Any, every: int, hits: list[int]) -> Any:
    count = [0]

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        count[0] += 1
        if count[0] % every == 0:
            hits.append(count[0])
            start_response("429 Too Many Requests", [("Content-Type", "application/json"),
                                                     ("Retry-After", "1"), ("x-request-id", "r")])
            return [b'{"error":"rate_limited","message":"slow down"}']
        return app(environ, start_response)

    return wrapped


def test_a_recording_waits_out_429_and_retry_after(tmp_path: Path) -> None:
    hits: list[int] = []
    source = KontextMock(seed=7, now=NOW, frozen=True)
    server = start(rate_limited_once_every(source.app, 2, hits), "127.0.0.1", 0)
    try:
        assert record(server.url, tmp_path / "r.yaml", "--token", "dev-token") == 0
    finally:
        server.stop()
    assert hits  # it was told to wait, and waited
    replay = KontextMock(now=NOW, frozen=True)
    replay.load_scenario(tmp_path / "r.yaml")
    assert sorted(statuses(replay).values()) == sorted(statuses(source).values())


@pytest.mark.parametrize(("args", "message"), [
    (["--application-id", "7d1e2f3a-0000-4000-8000-000000000000"],
     "sessions of application 7d1e2f3a-0000-4000-8000-000000000000: not found"),
    ([], "the credentials were refused"),
])
def test_what_cannot_be_read_is_exit_2_with_a_message(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    token = "not-a-token" if not args else "dev-token"
    try:
        code = record(server.url, tmp_path / "r.yaml", "--token", token, *args)
    finally:
        server.stop()
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.yaml").exists()


def test_serve_loads_a_recording_by_path_and_the_control_plane_still_refuses_paths(
    second_implementation: tuple[OtherSessionsApi, RunningServer], tmp_path: Path,
) -> None:
    api, source = second_implementation
    out = tmp_path / "team.yaml"
    assert record(source.url, out, "--token", "dev-token", "--no-anonymize") == 0
    with serve_process("--scenario", str(out)) as (base, _, _):
        listed = requests.get(f"{base}/api/v1/applications/{DEV_APP}/sessions",
                              params={"status": "all", "limit": 200},
                              headers={"Authorization": "Bearer dev-token"}, timeout=5).json()
        assert {s["id"]: s["derivedStatus"] for s in listed["items"]} == statuses(api)
        refused = requests.post(f"{base}/_mock/scenarios/load", json={"name": str(out)}, timeout=5)
        assert refused.status_code == 400


@pytest.mark.parametrize("suffix", ["/api/v1", "/api/v1/"])
def test_a_base_url_ending_in_api_v1_is_read_at_its_origin_with_a_note(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    source = KontextMock(seed=7, now=NOW, frozen=True)
    server = start(source.app, "127.0.0.1", 0)
    try:
        code = record(server.url + suffix, tmp_path / "r.yaml", "--token", "dev-token")
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"ends in /api/v1, which the kit adds to every path itself: it used {server.url}" in err
    header = (tmp_path / "r.yaml").read_text().splitlines()[0]
    assert header.startswith(f"# kontext-mock record from {server.url}:")
