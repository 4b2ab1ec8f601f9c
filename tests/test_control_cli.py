"""The ``kontext-mock`` commands: serve with a scenario and an admin token, the commands
that drive a running mock (clock, reset, seed, revoke, events, scenario, faults, journal,
state, rate-limit, token), their help, and what a control command imports."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
import requests

from kontext_mock import KontextMock, MockConfig
from kontext_mock.cli import banner, build_parser, main
from kontext_mock.config import DEFAULT_STATUS_MIX
from kontext_mock.contracts.cli import main as contract_main

from .conftest import AUTH, DEV_APP, LiveMock

pytestmark = pytest.mark.slow  # kontext-mock commands in subprocesses

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there
ROOT = Path(__file__).resolve().parent.parent


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


def test_a_time_before_the_mocks_now_is_given_as_the_docs_write_it_without_a_double_dash(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    # argparse takes "-3m" for an option: the CLI reads it as the time it is
    assert run(capsys, "clock", "set", "-3m", "--url", live.url) == (
        0, "2026-01-01T11:57:00.000Z (frozen)\n", "")
    assert run(capsys, "clock", "--url", live.url, "set", "-PT10M")[1] == (
        "2026-01-01T11:47:00.000Z (frozen)\n")
    assert run(capsys, "clock", "set", "now", "--url", live.url)[1] == (
        "2026-01-01T11:47:00.000Z (frozen)\n")
    assert run(capsys, "clock", "set", "+1h30m", "--url", live.url)[1] == (
        "2026-01-01T13:17:00.000Z (frozen)\n")


def test_a_negative_advance_is_refused_as_negative_with_the_clocks_usage(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["clock", "advance", "-5m", "--url", live.url])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("usage: kontext-mock clock ")
    assert ("kontext-mock clock: error: clock advance -5m: duration must not be negative:"
            " '-5m' (the clock moves only forward: clock set -5m sets it back)") in err
    assert live.mock.clock_state()["now"] == "2026-01-01T12:00:00.000Z"


#: every command (and action of its own) -> a command line that parses
COMMANDS = {
    "serve": (), "clock": (), "reset": (), "seed": (), "revoke": ("x",), "events": (),
    "scenario": ("list",), "faults list": (), "faults add": (), "faults clear": (),
    "journal show": (), "journal clear": (), "state export": (), "state import": ("f.json",),
    "rate-limit show": (), "rate-limit set": ("1",), "rate-limit off": (), "token": (),
    "record": ("--out", "x.yaml"),
}


def test_the_list_of_commands_is_the_parsers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.search(r"\{([a-z,-]+)\}", capsys.readouterr().out)
    assert listed is not None
    assert set(listed.group(1).split(",")) == {c.split()[0] for c in COMMANDS}


def test_a_parser_built_for_one_command_still_names_them_all() -> None:
    # main builds only the options of the command it runs
    listing = re.compile(r"\{([a-z,-]+)\}")
    whole = listing.findall(build_parser().format_usage())
    assert whole and listing.findall(build_parser("serve").format_usage()) == whole
    assert listing.findall(build_parser("clock").format_usage()) == whole


@pytest.mark.parametrize("command", COMMANDS)
def test_a_usage_error_prints_the_commands_own_usage(
    capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), *COMMANDS[command], "--bogus", "--url", CLOSED])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith(f"usage: kontext-mock {command} ")
    assert "unrecognized arguments: --bogus" in err


@pytest.mark.parametrize(("argv", "complaint"), [
    (("advance", "soon"), "clock advance soon: not a duration: 'soon' (use seconds like 90,"
                          " ISO 8601 like PT10M, or 1h30m)"),
    (("advance", "--", "-5m"), "clock advance -5m: duration must not be negative: '-5m'"),
    (("advance", "-5m"), "clock advance -5m: duration must not be negative: '-5m'"),
    (("set", "-soon"), "clock set -soon: not a duration: '-soon'"),
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
    assert err.startswith("usage: kontext-mock clock ")
    assert f"kontext-mock clock: error: {complaint}" in err
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
    assert f"kontext-mock {argv[0]}: error: {complaint}" in capsys.readouterr().err
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


def test_seed_without_a_mix_seeds_the_documented_default_not_the_last_one(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    assert run(capsys, "seed", "--mix", "active=1", "--sessions", "4", *url)[0] == 0
    assert live.mock.export_state()["settings"]["statusMix"] == {"active": 1.0}

    code, out, _ = run(capsys, "seed", *url)

    settings = live.mock.export_state()["settings"]
    assert (code, out.split(";")[0]) == (0, "2 organizations, 3 applications, 60 sessions")
    assert settings["statusMix"] == DEFAULT_STATUS_MIX
    assert (settings["seed"], settings["sessions"]) == (MockConfig().seed, MockConfig().sessions)
    statuses = {s["derivedStatus"] for s in live.mock.list_sessions(DEV_APP, status="all")}
    assert statuses == {"active", "idle", "expired", "disconnected"}


def test_the_default_status_mix_is_written_where_seeding_is_documented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mix = ",".join(f"{state}={weight:g}" for state, weight in DEFAULT_STATUS_MIX.items())
    with pytest.raises(SystemExit):
        main(["seed", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {mix})" in help_text
    assert "the defaults below for those not given" in help_text
    for option, default in (("--seed N", 1), ("--organizations N", 1), ("--applications N", 2),
                            ("--sessions N", 20)):
        assert re.search(rf"{option} [^-]*\(default {default}\)", help_text), option
    for doc in ("README.md", "docs/control-plane.md"):
        assert mix in (ROOT / doc).read_text(), doc


def test_a_bad_scenario_file_is_reported_with_its_path_line_and_field(
    live: LiveMock, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("organizations:\n  - dev: true\n    applications:\n      - dev: true\n"
                   "        sessions:\n          - lastActiveAt: -1m\n            createdAt: now\n")
    code, _, err = run(capsys, "scenario", "load", str(bad), "--url", live.url)
    assert code == 1
    assert err.startswith(f"kontext-mock: bad scenario: {bad}:6:"
                          " organizations[0].applications[0].sessions[0].lastActiveAt: times out"
                          " of order")
    assert "<inline>" not in err


def test_fault_commands_add_list_and_clear_rules(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    code, out, _ = run(capsys, "faults", "add", "--method", "GET", "--path",
                       "/api/v1/applications/*/sessions", "--status", "500", "--times", "1", *url)
    assert (code, out) == (0, "fault-1   GET /api/v1/applications/*/sessions  status 500,"
                              " 1 more  (0 hits)\n")
    assert run(capsys, "faults", "add", "--latency", "0.01,0.02", "--probability", "0.5",
               *url)[1].startswith("fault-2   * /api/v1/*  latency 0.01 to 0.02 s, probability 0.5")
    listed = live.http.get(f"{live.url}/_mock/faults").json()["items"]
    assert [(f["id"], f["status"], f["latency"]) for f in listed] == [
        ("fault-1", 500, None), ("fault-2", None, [0.01, 0.02])]
    assert live.http.get(f"{live.url}/api/v1/applications/{DEV_APP}/sessions",
                         headers=AUTH).status_code == 500
    # the first rule, spent, is gone
    assert run(capsys, "faults", "list", *url)[1] == (
        "fault-2   * /api/v1/*  latency 0.01 to 0.02 s, probability 0.5  (0 hits)\n")
    assert run(capsys, "faults", "add", "--drop", "--method", "POST", *url)[1] == (
        "fault-3   POST /api/v1/*  drop  (0 hits)\n")

    assert run(capsys, "faults", "clear", "fault-2", *url)[1] == "removed 1 fault rule\n"
    assert [f["id"] for f in live.http.get(f"{live.url}/_mock/faults").json()["items"]] == [
        "fault-3"]
    assert run(capsys, "faults", "clear", *url)[1] == "removed 1 fault rule\n"
    assert run(capsys, "faults", "list", *url)[1] == "no fault rules\n"
    assert live.http.get(f"{live.url}/_mock/faults").json()["items"] == []
    code, _, err = run(capsys, "faults", "clear", "fault-9", *url)
    assert code == 1 and "fault-9" in err


def test_fault_add_needs_an_effect_and_a_readable_latency(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, complaint in ((("--path", "/api/v1/*"), "give one of --status, --latency or --drop"),
                            (("--latency", "soon"), "--latency soon: expected seconds (0.2) or a"
                                                    " range (0.1,0.3)")):
        with pytest.raises(SystemExit) as exited:
            main(["faults", "add", *argv, "--url", live.url])
        assert exited.value.code == 2
        assert f"kontext-mock faults add: error: {complaint}" in capsys.readouterr().err
    assert live.http.get(f"{live.url}/_mock/faults").json()["items"] == []


def test_journal_commands_show_with_filters_and_clear(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    live.http.get(f"{live.url}/api/v1/applications/{DEV_APP}/sessions?limit=2", headers=AUTH)
    live.http.delete(f"{live.url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    lines = run(capsys, "journal", "show", *url)[1].splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2026-01-01T12:00:00.000Z  GET    /api/v1/applications/"
                               f"{DEV_APP}/sessions?limit=2  200  ")
    assert f"DELETE /api/v1/applications/{DEV_APP}/sessions  200" in lines[1]

    only = run(capsys, "journal", "show", "--method", "DELETE", "--path", "/api/v1/*", *url)[1]
    assert len(only.splitlines()) == 1 and "DELETE" in only
    code, out, _ = run(capsys, "journal", "show", "--limit", "1", "--json", *url)
    entry = json.loads(out)
    assert (code, entry["method"], entry["headers"]["authorization"]) == (
        0, "DELETE", "Bearer [redacted]")

    assert run(capsys, "journal", "clear", *url)[1] == "removed 2 entries\n"
    assert live.http.get(f"{live.url}/_mock/journal").json()["items"] == []


def test_state_commands_export_to_a_file_and_import_it_back(
    live: LiveMock, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    url = ("--url", live.url)
    saved = tmp_path / "state.json"
    code, out, _ = run(capsys, "state", "export", str(saved), *url)
    assert (code, out) == (0, f"wrote {saved}: 2 organizations, 3 applications, 60 sessions;"
                              " clock 2026-01-01T12:00:00.000Z (frozen)\n")
    assert json.loads(saved.read_text()) == live.mock.export_state()
    run(capsys, "seed", "--sessions", "1", "--organizations", "0", *url)
    live.mock.advance("1h")

    code, out, _ = run(capsys, "state", "import", str(saved), *url)

    assert (code, out) == (0, "2 organizations, 3 applications, 60 sessions;"
                              " clock 2026-01-01T12:00:00.000Z (frozen)\n")
    assert live.mock.export_state() == json.loads(saved.read_text())
    code, out, _ = run(capsys, "state", "export", *url)  # standard output
    assert code == 0 and json.loads(out) == json.loads(saved.read_text())


def test_state_import_refuses_what_is_not_an_exported_state(
    live: LiveMock, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    before = live.mock.export_state()
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(SystemExit) as exited:
        main(["state", "import", str(tmp_path / "text.json"), "--url", live.url])
    assert exited.value.code == 2
    assert f"{tmp_path / 'text.json'} is not JSON" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    code, _, err = run(capsys, "state", "import", str(tmp_path / "other.json"), "--url", live.url)
    assert code == 1 and err.startswith("kontext-mock: ")
    code, _, err = run(capsys, "state", "import", str(tmp_path / "none.json"), "--url", live.url)
    assert (code, err) == (2, f"kontext-mock: {tmp_path / 'none.json'}: No such file or directory\n")
    assert live.mock.export_state() == before


def test_rate_limit_commands_show_set_and_turn_it_off(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    url = ("--url", live.url)
    assert run(capsys, "rate-limit", "show", *url)[1] == "off: no rate limit\n"
    assert run(capsys, "rate-limit", "set", "2", *url)[1] == "2 requests a minute per credential\n"
    answers = [live.http.get(f"{live.url}/api/v1/applications/{DEV_APP}/sessions",
                             headers=AUTH).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert run(capsys, "rate-limit", "show", *url)[1] == "2 requests a minute per credential\n"
    assert run(capsys, "rate-limit", "off", *url)[1] == "off: no rate limit\n"
    assert live.http.get(f"{live.url}/_mock/rate-limit").json() == {"perMinute": None}
    code, _, err = run(capsys, "rate-limit", "set", "0", *url)
    assert code == 1 and "perMinute" in err


def test_token_command_prints_a_token_the_api_takes(
    live: LiveMock, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "token", "--url", live.url)
    token = out.strip()
    assert code == 0 and token and token != "dev-token"
    answer = live.http.get(f"{live.url}/api/v1/applications/{DEV_APP}/sessions",
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200

    code, out, err = run(capsys, "token", "--client-secret", "wrong", "--url", live.url)
    assert (code, out) == (1, "")
    assert err == (f"kontext-mock: could not get a token from {live.url}/oauth2/token with"
                   " client id 'dev-client': 401 invalid_client\n")
    code, _, err = run(capsys, "token", "--url", CLOSED)
    assert code == 2 and "connection refused" in err


@pytest.mark.parametrize(("entry", "prog"), [(main, "kontext-mock"), (contract_main, "kontext-contract")])
def test_both_commands_print_the_installed_version(
    capsys: pytest.CaptureFixture[str], entry: Callable[[list[str]], int], prog: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        entry(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"{prog} {metadata.version('kontext-mock')}\n"


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


def test_serve_help_describes_it_and_gives_examples(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "serve")
    assert "Serve the mock over HTTP: the sessions API" in text
    examples = text.split("examples:\n")[1]
    assert "kontext-mock serve --scenario mixed" in examples
    assert "kontext-mock serve --state-file" in examples


@pytest.mark.parametrize(("command", "choices"), [
    ("clock", ("show", "advance DURATION", "set INSTANT", "freeze", "unfreeze")),
    ("scenario", ("list", "load NAME", "load FILE.yaml")),
])
def test_each_choice_of_a_command_is_explained(
    capsys: pytest.CaptureFixture[str], command: str, choices: tuple[str, ...],
) -> None:
    actions = help_of(capsys, command).split("actions:\n")[1].split("\n\n")[0]
    explained = [line.split("  ")[1] for line in actions.splitlines()
                 if line.startswith("  ") and not line.startswith("   ")]
    assert tuple(explained) == choices


def test_revoke_and_token_help_say_what_they_take(capsys: pytest.CaptureFixture[str]) -> None:
    revoke = " ".join(help_of(capsys, "revoke").split())
    assert "APPLICATION_ID the application's id" in revoke
    assert "Disconnect every connected session of an application" in revoke
    token = " ".join(help_of(capsys, "token").split())
    assert "--client-id CLIENT_ID the OAuth client (default: the dev client, dev-client" in token


def test_every_option_of_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        lines = help_of(capsys, *command.split()).split("options:\n")[1].split("\n\n")[0]
        rows = lines.splitlines()
        # an option's help follows it on its line, or on the next, indented
        bare = [row.strip() for row, after in zip(rows, [*rows[1:], ""], strict=True)
                if row.startswith("  -") and not re.search(r"\S {2,}\S", row.strip())
                and not after.startswith(" " * 20)]
        assert bare == [], command


def serve_options() -> set[str]:
    usage = build_parser().parse_args(["serve"]).command_parser.format_usage()
    return set(re.findall(r"\[(--[a-z-]+)", usage))


def test_the_readme_serve_table_lists_exactly_serves_options() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### `kontext-mock serve` options")[1].split("\n\n")[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(--[a-z-]+)", row.split(" | ")[0])}
    assert "--state-interval" in serve_options()
    assert documented == serve_options()


def test_a_control_command_loads_neither_the_mock_nor_its_libraries(live: LiveMock) -> None:
    # what `kontext-mock clock show` imports, in a fresh interpreter against a running mock
    script = (
        "import sys\n"
        "from kontext_mock.cli import main\n"
        f"assert main(['clock', 'show', '--url', {live.url!r}]) == 0\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    loaded = set(done.stdout.splitlines()[-1].split())
    assert done.stdout.startswith("2026-01-01T12:00:00.000Z (frozen)")
    heavy = {"flask", "werkzeug", "faker", "jsonschema", "schemathesis", "hypothesis", "yaml",
             "requests", "httptools", "kontext_mock.mock", "kontext_mock.http",
             "kontext_mock.core.engine", "kontext_mock.statefile", "importlib.metadata"}
    assert heavy & loaded == set()


def test_a_seeded_start_loads_neither_the_scenarios_nor_a_control_client() -> None:
    # serve's path: the CLI module, a seeded mock, its app and its server
    script = (
        "import sys\n"
        "import kontext_mock.cli\n"
        "from kontext_mock.mock import KontextMock\n"
        "import kontext_mock.http.serve\n"
        "KontextMock().app\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    loaded = set(done.stdout.split())
    assert {"kontext_mock.http.app", "flask"} <= loaded  # it did build the app
    assert {"kontext_mock.core.scenarios", "kontext_mock.statefile", "urllib.request"} & loaded == set()
