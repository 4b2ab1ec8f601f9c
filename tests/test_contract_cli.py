"""``kontext-contract`` on the command line: exit codes, messages, JUnit, usage errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.contracts.cli import main
from kontext_mock.http.serve import RunningServer, start

from .broken_variants import LimitIgnored, malformed_token_accepted, no_auth_at_all

pytestmark = pytest.mark.slow  # whole kit runs from the command line

DEV_APP = MockConfig().dev_application_id


def kontext_contract(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script, as a CI job runs it."""
    return subprocess.run(
        [sys.executable, "-m", "kontext_mock.contracts", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def served_mock() -> Iterator[RunningServer]:
    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    yield server
    server.stop()


class _NotFound(BaseHTTPRequestHandler):
    """A web server that is not the sessions API: 404 text/html for everything."""

    def _answer(self) -> None:
        body = b"<html><body><h1>404 Not Found</h1></body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_the_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_target_that_is_down_is_exit_2_with_a_message_not_a_traceback() -> None:
    proc = kontext_contract("--base-url", f"http://127.0.0.1:{closed_port()}",
                            "--token", "dev-token")
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach http://127.0.0.1:" in proc.stderr
    assert "connection refused" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_target_that_is_not_this_api_is_exit_2_with_a_message(not_the_api: str) -> None:
    proc = kontext_contract("--base-url", not_the_api, "--token", "dev-token",
                            "--application-id", DEV_APP)
    assert proc.returncode == 2, proc.stderr
    assert "does not answer like the Kontext sessions API" in proc.stderr
    assert "404" in proc.stderr and "text/html" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_every_rule_holding_is_exit_0_with_one_line_per_rule(
    served_mock: RunningServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junit = tmp_path / "reports" / "contract.xml"
    code = main(["--base-url", served_mock.url, "--token", "dev-token", "--application-id",
                 DEV_APP, "--max-examples", "5", "--seed", "1", "--junit", str(junit)])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "PASS  limit-respected" in out and "PASS  x-request-id" in out
    assert "semantic properties" in err  # progress while it runs
    assert " 0 failed" in out
    suites = ET.parse(junit).getroot()  # noqa: S314 - our own report
    assert suites.get("failures") == "0"
    names = {case.get("name") for case in suites.iter("testcase")}
    assert {"limit-respected", "revoke-idempotent", "schema-not-a-server-error"} <= names


def test_a_broken_rule_is_exit_1_naming_the_rule_with_a_curl_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = start(LimitIgnored(seed=7).app, "127.0.0.1", 0)
    junit = tmp_path / "contract.xml"
    try:
        code = main(["--base-url", server.url, "--token", "dev-token", "--application-id",
                     DEV_APP, "--max-examples", "5", "--seed", "1", "--junit", str(junit),
                     "--layer", "semantic", "-q"])
    finally:
        server.stop()
    out, _ = capsys.readouterr()
    assert code == 1
    assert "FAIL  limit-respected" in out
    failures = out[out.index("Failures:"):]
    assert "limit-respected" in failures
    assert "request:  curl" in failures and "Authorization: Bearer [REDACTED]" in failures
    assert "dev-token" not in out
    assert "response: 200" in failures
    root = ET.parse(junit).getroot()  # noqa: S314 - our own report
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    # (ignoring limit also breaks its default: 201 sessions listed without one)
    assert [c.get("name") for c in failed] == ["limit-respected", "limit-default"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "t"], "--base-url is required"),
        (["--base-url", "http://127.0.0.1:9"], "give --token, or --client-id and --client-secret"),
        (["--base-url", "ftp://example.com", "--token", "t"], "must be an http(s) URL"),
        (["--base-url", "http://127.0.0.1:9", "--token", "t", "--rate-limit", "fast"],
         "bad rate"),
        (["--base-url", "http://127.0.0.1:9", "--token", "t", "--skip", "no-such-rule"],
         "unknown rule"),
    ],
)
def test_usage_errors_are_exit_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("KONTEXT_BASE_URL", "KONTEXT_TOKEN", "KONTEXT_CLIENT_ID",
                 "KONTEXT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_wrong_client_credentials_are_exit_2(served_mock: RunningServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--base-url", served_mock.url, "--client-id", "dev-client",
                 "--client-secret", "not-the-secret", "--application-id", DEV_APP, "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "could not get a token" in err and "invalid_client" in err
    assert "not-the-secret" not in err


def test_an_unknown_application_is_exit_2(served_mock: RunningServer,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--base-url", served_mock.url, "--token", "dev-token", "--application-id",
                 "7d1e2f3a-0000-4000-8000-000000000000", "-q", "--read-only"])
    assert code == 2
    assert "was not found for this token" in capsys.readouterr().err


def test_list_rules_names_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    for name in ("limit-respected", "filter-inactive", "revoke-idempotent", "x-request-id",
                 "schema-response-schema-conformance", "lifecycle-model"):
        assert name in out


@pytest.mark.parametrize("break_auth", [no_auth_at_all, malformed_token_accepted])
def test_a_target_that_answers_without_valid_credentials_fails_auth_required_exit_1(
    break_auth: object, capsys: pytest.CaptureFixture[str],
) -> None:
    server = start(break_auth(KontextMock(seed=7).app), "127.0.0.1", 0)  # type: ignore[operator]
    try:
        code = main(["--base-url", server.url, "--token", "dev-token", "--read-only",
                     "--layer", "semantic", "--max-examples", "3", "--seed", "1", "-q"])
    finally:
        server.stop()
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "FAIL  auth-required" in out and "not 401" in out
    assert "does not answer like" not in err


def test_a_read_only_run_against_a_mock_finds_the_application_itself(
    served_mock: RunningServer, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--base-url", served_mock.url, "--token", "dev-token", "--read-only",
                 "--layer", "semantic", "--max-examples", "3", "--seed", "1", "-q"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"the kit read application {DEV_APP}" in out  # the dev application: the most sessions
    assert "PASS  limit-respected" in out


@pytest.mark.parametrize("suffix", ["/api/v1", "/api/v1/"])
def test_a_base_url_ending_in_api_v1_is_checked_at_its_origin_with_a_note(
    served_mock: RunningServer, suffix: str, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--base-url", served_mock.url + suffix, "--token", "dev-token", "--read-only",
                 "--layer", "semantic", "--max-examples", "2", "--seed", "1"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    note = f"ends in /api/v1, which the kit adds to every path itself: it used {served_mock.url}"
    assert note in out and note in err  # in the report, and as soon as the run starts
    assert "give --application-id" not in out + err
