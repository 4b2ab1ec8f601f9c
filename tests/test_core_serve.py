"""``kontext-mock serve`` as a user runs it: a real process, a real port, the printed curl."""

from __future__ import annotations

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

FIXED = ["--seed", "11", "--now", "2026-03-01T09:00:00Z", "--frozen"]


def serving(*args: str) -> Any:
    """``kontext-mock serve`` on a free port, stopped with SIGTERM as a user's Ctrl-C."""
    return serve_process(*args)


def test_the_printed_curl_works() -> None:
    with serving() as (url, banner, _):
        curl = banner[banner.index("curl"):banner.index("Ctrl-C")].replace("\\\n", " ")
        argv = shlex.split(curl)
        headers = dict([argv[argv.index("-H") + 1].split(": ", 1)])
        response = requests.get(argv[-1], headers=headers, timeout=5)
        assert response.status_code == 200
        assert response.json()["items"]
        assert "dev-token" in banner and "dev-client / dev-secret" in banner
        assert "serving on http://localhost:" in banner
        assert url.startswith("http://127.0.0.1:")


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
