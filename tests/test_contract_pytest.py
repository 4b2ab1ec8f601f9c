"""The kit inside a test suite: ``pytest --pyargs contracts``, and the control plane's guard."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.contracts import Options, Target, run_contract
from kontext_mock.http.serve import start

pytestmark = pytest.mark.slow  # the kit's rules as pytest sessions in subprocesses

DEV_APP = MockConfig().dev_application_id


def test_pytest_pyargs_contracts_reports_one_test_per_rule(tmp_path: Path) -> None:
    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    junit = tmp_path / "pytest-contract.xml"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--pyargs", "kontext_mock.contracts", "-q",
             "-p", "no:cacheprovider", "-p", "no:xdist", "--kontext-base-url", server.url,
             "--kontext-token", "dev-token", "--kontext-application-id", DEV_APP,
             "--kontext-contract-max-examples", "3", "--kontext-contract-seed", "11",
             "--kontext-contract-layers", "semantic,stateful",
             f"--junitxml={junit}"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
        )
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    root = ET.parse(junit).getroot()  # noqa: S314 - pytest's own report
    names = {case.get("name") for case in root.iter("testcase")}
    assert {"test_rule[limit-respected]", "test_rule[revoke-idempotent]",
            "test_rule[x-request-id]"} <= names
    assert root.find(".//failure") is None
    skipped = {c.get("name") for c in root.iter("testcase") if c.find("skipped") is not None}
    assert "test_rule[schema-not-a-server-error]" in skipped  # the layer was not selected


def test_without_a_base_url_the_pytest_suite_skips(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "kontext_mock.contracts", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "skipped" in proc.stdout and "failed" not in proc.stdout


def test_a_guarded_control_plane_is_used_with_the_admin_token() -> None:
    mock = KontextMock(seed=7, admin_token="kc-admin-secret-token")
    server = start(mock.app, "127.0.0.1", 0)
    try:
        without = run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                               Options(max_examples=3, seed=1, layers=("stateful",)))
        with_token = run_contract(
            Target(server.url, token="dev-token", application_id=DEV_APP,
                   mock_admin_token="kc-admin-secret-token"),
            Options(max_examples=3, seed=1, layers=("stateful",)))
    finally:
        server.stop()
    assert not without.control_plane and not without.destructive
    assert with_token.control_plane and with_token.destructive
    assert with_token.ok, with_token.render()
    assert with_token.result("lifecycle-model").status == "passed"
    assert "kc-admin-secret-token" not in with_token.render()
