"""The ``kontext-mock`` commands: serve with a scenario and an admin token, and the
commands that drive a running mock (clock, reset, seed, revoke, events, scenario)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.cli import banner, main

from .conftest import AUTH, DEV_APP, LiveMock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_clock_commands_show_and_move_the_running_mocks_clock(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    assert run(capsys, "clock", *url) == (0, "2026-01-01T12:00:00.000Z (frozen)\n", "")
    assert run(capsys, "clock", "advance", "PT10M", *url)[1] == (
        "2026-01-01T12:10:00.000Z (frozen)\n")
    assert run(capsys, "clock", "advance", "90", *url)[1].startswith("2026-01-01T12:11:30.000Z")
    assert run(capsys, "clock", "set", "2026-02-01T00:00:00Z", *url)[1].startswith(
        "2026-02-01T00:00:00.000Z")
    assert run(capsys, "clock", "unfreeze", *url)[1].endswith("(running)\n")
    assert run(capsys, "clock", "freeze", *url)[1].endswith("(frozen)\n")


def test_the_clock_is_set_relative_to_the_mocks_now(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "clock", "set", "+1h30m", "--url", live.url)[1] == (
        "2026-01-01T13:30:00.000Z (frozen)\n")


@pytest.mark.parametrize(("argv", "complaint"), [
    (("advance", "soon"), "clock advance soon: not a duration: 'soon' (use seconds like 90,"
                          " ISO 8601 like PT10M, or 1h30m)"),
    (("advance", "--", "-5m"), "clock advance -5m: duration must not be negative: '-5m'"),
    (("set", "soon"), "clock set soon: not an ISO 8601 instant: 'soon'"),
    (("set", "+soon"), "clock set +soon: not a duration: '+soon'"),
])
def test_a_bad_clock_value_is_a_usage_error_naming_it_and_changes_nothing(
    live: LiveMock, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], complaint: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["clock", "--url", live.url, *argv])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"kontext-mock: error: {complaint}" in err
    assert live.mock.clock_state()["now"] == "2026-01-01T12:00:00.000Z"


@pytest.mark.parametrize(("argv", "complaint"), [
    (("seed", "--sessions", "-1"), "--sessions: sessions=-1: expected a count of 0 or more"),
    (("seed", "--seed", "seven"), "--seed: seed='seven': expected a whole number"),
    (("seed", "--mix", "active=lots"), "--mix: status_mix='active=lots': active: expected a"
                                       " weight of 0 or more"),
    (("reset", "--seed", "1.5"), "--seed: seed=1.5: expected a whole number"),
])
def test_a_bad_seeding_option_is_a_usage_error_in_the_configurations_words(
    live: LiveMock, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], complaint: str,
) -> None:
    before = live.mock.export_state()
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--url", live.url])
    assert exited.value.code == 2
    assert f"kontext-mock: error: {complaint}" in capsys.readouterr().err
    assert live.mock.export_state() == before


def test_reset_seed_revoke_and_scenario_commands(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    code, out, _ = run(capsys, "seed", "--seed", "3", "--organizations", "0", "--sessions", "6",
                       "--mix", "active=1", *url)
    assert (code, out.split(";")[0]) == (0, "1 organization, 1 application, 6 sessions")
    assert run(capsys, "revoke", DEV_APP, *url)[1] == "disconnected 6 sessions\n"
    assert run(capsys, "revoke", DEV_APP, *url)[1] == "disconnected 0 sessions\n"
    assert run(capsys, "reset", "--empty", *url)[1].startswith("1 organization, 1 application,"
                                                              " 0 sessions")
    code, out, _ = run(capsys, "scenario", "list", *url)
    assert code == 0 and "two-orgs" in out and "large" in out
    assert run(capsys, "scenario", "load", "mixed", *url)[1].startswith("loaded mixed: 48 sessions")
    code, _, err = run(capsys, "scenario", "load", "nope", *url)
    assert code == 1 and "unknown scenario 'nope'" in err


def test_reset_keeps_the_clock_and_the_counts_last_seeded_as_its_help_says(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    help_text = subprocess.run(
        [sys.executable, "-m", "kontext_mock.cli", "reset", "--help"],
        capture_output=True, text=True, check=True).stdout
    assert "The clock is not moved" in " ".join(help_text.split())
    run(capsys, "clock", "advance", "1h", *url)
    run(capsys, "seed", "--organizations", "0", "--sessions", "3", *url)

    code, out, _ = run(capsys, "reset", *url)

    assert (code, out) == (0, "1 organization, 1 application, 3 sessions;"
                              " clock 2026-01-01T13:00:00.000Z (frozen)\n")


def test_scenario_load_sends_a_files_text_the_control_plane_never_reads_paths(
    live: LiveMock, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text("organizations:\n  - dev: true\n    applications:\n"
                                 "      - dev: true\n        sessions:\n          - state: idle\n"
                                 "            repeat: 3\n")
    code, out, _ = run(capsys, "scenario", "load", "./mine.yaml", "--url", live.url)
    assert (code, out.split(",")[0]) == (0, "loaded ./mine.yaml: 3 sessions")
    statuses = {s["derivedStatus"] for s in live.mock.list_sessions(DEV_APP, status="all")}
    assert statuses == {"idle"}

    code, _, err = run(capsys, "scenario", "load", "./missing.yaml", "--url", live.url)
    assert (code, err) == (2, "kontext-mock: cannot read the scenario file ./missing.yaml:"
                              " No such file or directory\n")


def test_events_command_prints_the_events(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    live.http.delete(f"{live.url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    code, out, _ = run(capsys, "events", "--since", "0", "--count", "2",
                       "--types", "session.disconnected", "--url", live.url)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert all("session.disconnected" in line and line.endswith("(revoked)") for line in lines)
    code, out, _ = run(capsys, "events", "--since", "0", "--count", "1", "--json",
                       "--url", live.url)
    assert out.startswith('{"id":1,"type":"session.disconnected"')


def test_a_mock_that_is_not_there_is_a_clear_cli_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "clock", "--url", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach the mock at http://127.0.0.1:9" in err


def test_serve_refuses_a_bad_scenario_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
                   "        sessions:\n          - lastActiveAt: -1m\n            createdAt: now\n")
    code, _, err = run(capsys, "serve", "--port", "0", "--scenario", str(bad))
    assert code == 2
    assert f"{bad}:6: organizations[0].applications[0].sessions[0].lastActiveAt:" in err
    assert "is before createdAt" in err
    code, _, err = run(capsys, "serve", "--port", "0", "--scenario", "nope")
    assert code == 2 and "unknown scenario 'nope'" in err


def test_a_port_in_use_is_a_clear_error_that_suggests_a_free_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert code == 2
    assert err.startswith(f"kontext-mock: cannot serve on 127.0.0.1:{port}: ")
    assert err.endswith(f"(another program is using port {port}: pick another with --port,"
                        " or --port 0 for a free one)\n")


def test_a_generated_admin_token_is_printed_before_the_rest_of_the_banner() -> None:
    printed = banner(KontextMock(seed=3), "0.0.0.0", 8080, admin_token="t0ken")
    lines = printed.splitlines()
    assert lines[1] == "  admin token:   t0ken"
    assert printed.index("t0ken") < printed.index("token:       dev-token") < printed.index("Ctrl-C")
    assert "admin token" not in banner(KontextMock(seed=3), "127.0.0.1", 8080)


def test_serve_refuses_an_empty_admin_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["serve", "--host", "0.0.0.0", "--port", "0", "--admin-token", ""])
    assert raised.value.code == 2
    assert "--admin-token is empty" in capsys.readouterr().err


def test_serve_off_loopback_generates_prints_and_requires_an_admin_token() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kontext_mock.cli", "serve", "--host", "0.0.0.0", "--port", "0",
         "--scenario", "two-orgs", "--frozen"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = ""
        assert proc.stdout is not None
        while "admin token:" not in banner:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            banner += line
        port = re.search(r"bound to 0\.0\.0\.0:(\d+)", banner)
        token = re.search(r"admin token:\s+(\S+)", banner)
        assert port and token
        base = f"http://127.0.0.1:{port.group(1)}"
        assert requests.get(f"{base}/_mock/clock", timeout=5).status_code == 401
        assert requests.get(f"{base}/_mock/clock", headers=AUTH, timeout=5).status_code == 401
        opened = requests.get(f"{base}/_mock/scenarios", timeout=5,
                              headers={"Authorization": f"Bearer {token.group(1)}"})
        assert opened.status_code == 200
        assert requests.get(f"{base}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH,
                            timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
