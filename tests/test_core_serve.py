"""``kontext-mock serve`` as a user runs it: a real process, a real port, the printed curl."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from typing import Any

import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.cli import banner

from .serving import serve_process

pytestmark = pytest.mark.slow  # kontext-mock serve in subprocesses

FIXED = ["--seed", "11", "--now", "2026-03-01T09:00:00Z", "--frozen"]


def serving(*args: str) -> Any:
    """``kontext-mock serve`` on a free port, stopped with SIGTERM as a user's Ctrl-C."""
    return serve_process(*args)


def printed_curls(banner: str) -> list[list[str]]:
    """The banner's curls, each as its argv, in the order printed."""
    text = banner[banner.index("  try:"):banner.index("Ctrl-C")].replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line.strip().startswith("curl")]


def run_curl(argv: list[str]) -> requests.Response:
    """What curl would send for ``argv`` (the options the banner uses: -s -X -H -d)."""
    method, headers, data, url = "GET", {}, None, ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, value = next(args).split(": ", 1)
            headers[name] = value
        elif arg == "-d":
            data = next(args)
            method = "POST" if method == "GET" else method
        elif not arg.startswith("-"):
            url = arg
    return requests.request(method, url, headers=headers, data=data, timeout=5)


def test_every_application_in_the_banner_answers_its_printed_curl() -> None:
    with serving("--organizations", "2", "--applications", "2") as (url, banner, _):
        curls = printed_curls(banner)
        listed = re.findall(r"application: (\S+)", banner)
        assert len(listed) == 5 == len(curls)  # the dev application and 2 x 2 seeded
        for argv in curls:
            response = run_curl(argv)
            assert response.status_code == 200, (argv, response.text)
            assert response.json()["items"]
        assert {argv[-1].split("/")[-2] for argv in curls} == set(listed)
        assert "dev-token" in banner and "dev-client / dev-secret" in banner
        assert "dev-token-2" in banner and "dev-client-2 / dev-secret-2" in banner
        assert "serving on http://localhost:" in banner
        assert url.startswith("http://127.0.0.1:")


def test_an_organization_without_credentials_gets_a_curl_that_makes_one() -> None:
    mock = KontextMock(seed=4, organizations=0)
    org = mock.add_organization(name="Loose Ends")
    app = mock.add_application(org.id, name="Orphan")
    mock.add_session(app.id)
    printed = banner(mock, "127.0.0.1", 8080)
    assert f"application: {app.id}" in printed
    client = mock.app.test_client()
    answers = []
    for argv in printed_curls(printed):
        path = argv[-1].removeprefix("http://localhost:8080")
        headers = dict(argv[i + 1].split(": ", 1) for i, a in enumerate(argv) if a == "-H")
        if "-d" in argv:
            answers.append(client.post(path, headers=headers, data=argv[argv.index("-d") + 1]))
        else:
            answers.append(client.get(path, headers=headers))
    assert [a.status_code for a in answers] == [200, 201, 200]
    assert answers[-1].json["items"]  # the made token reads the orphan application


def test_the_banner_counts_the_applications_it_does_not_list() -> None:
    mock = KontextMock(seed=4, organizations=3, applications=4, sessions=1)
    printed = banner(mock, "127.0.0.1", 8080)
    assert len(re.findall(r"application: ", printed)) == len(printed_curls(printed)) == 8
    assert "... and 5 more applications: http://localhost:8080/_mock/applications" in printed


def test_sigterm_stops_it_cleanly() -> None:
    with serving() as (_, _banner, proc):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout is not None
        assert "stopped" in proc.stdout.read()


def test_it_binds_to_loopback_by_default() -> None:
    with serving() as (_, banner, _proc):
        assert "bound to 127.0.0.1:" in banner


def test_same_seed_now_and_frozen_give_byte_identical_lists() -> None:
    path = "/api/v1/applications/550e8400-e29b-41d4-a716-446655440000/sessions?status=all&limit=200"
    bodies = []
    for args in (FIXED, FIXED, ["--seed", "12", *FIXED[2:]]):
        with serving(*args) as (url, _, _proc):
            response = requests.get(url + path, headers={"Authorization": "Bearer dev-token"},
                                    timeout=5)
            bodies.append(response.content)
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_bad_options_are_a_usage_error_not_a_traceback() -> None:
    for args in (["--idle-after", "soon"], ["--now", "yesterday"]):
        proc = subprocess.run([sys.executable, "-m", "kontext_mock.cli", "serve", *args],
                              capture_output=True, text=True, timeout=20)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr and "error:" in proc.stderr


@pytest.mark.parametrize("var", ["KONTEXT_MOCK_DEV_TOKEN"])
def test_dev_credentials_can_be_overridden_by_env(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "my-team-token")
    with serving() as (url, banner, _):
        assert "my-team-token" in banner
        path = "/api/v1/applications/550e8400-e29b-41d4-a716-446655440000/sessions"
        ok = requests.get(url + path, headers={"Authorization": "Bearer my-team-token"}, timeout=5)
        old = requests.get(url + path, headers={"Authorization": "Bearer dev-token"}, timeout=5)
        assert (ok.status_code, old.status_code) == (200, 401)


def test_the_banner_tells_the_clock_as_the_api_writes_instants() -> None:
    printed = banner(KontextMock(now="2026-01-01T12:00:00Z", frozen=True), "127.0.0.1", 8080)
    assert "clock:         2026-01-01T12:00:00.000Z (frozen)" in printed
