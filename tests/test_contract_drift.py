"""The kit against a second implementation (tests/second_implementation.py): the documented
rules hold there, three assumptions do not, and it sends a field the spec does not know.

Reported (the default against anything that is not a kontext-mock): exit 0, each
difference named as contradicted with the request and the answer that show it, the
field listed as undocumented. Enforced: exit 1, each difference a failure naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kontext_mock import MockConfig
from kontext_mock.contracts import Options, Report, Target, run_contract
from kontext_mock.contracts.assumptions import read_assumptions
from kontext_mock.contracts.cli import main
from kontext_mock.http.serve import RunningServer, start
from kontext_mock.http.spec import load_spec

from .second_implementation import DIFFERENCES, REGION, OtherSessionsApi

pytestmark = pytest.mark.slow  # whole kit runs against a second implementation

DEV_APP = MockConfig().dev_application_id


def foreign(api: OtherSessionsApi) -> tuple[str, ...]:
    with api.store.lock:
        return tuple(s.id for s in api.store.sessions.values() if s.application_id != DEV_APP)[:2]


def check(served: tuple[OtherSessionsApi, RunningServer], **options: object) -> Report:
    api, server = served
    return run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                        Options(seed=3, max_examples=5, destructive=True,
                                foreign_session_ids=foreign(api), **options))  # type: ignore[arg-type]


def test_reported_the_differences_are_drift_with_evidence_and_the_run_passes(
    second_implementation: tuple[OtherSessionsApi, RunningServer],
) -> None:
    report = check(second_implementation)
    assert report.assumptions_mode == "report"  # no control plane: not a kontext-mock
    assert report.ok and report.exit_code == 0, report.render()
    assert set(DIFFERENCES) <= set(report.contradicted()), report.render()
    for assumption, rule in DIFFERENCES.items():
        verdict = report.verdict(assumption)
        shown = [e for e in verdict.evidence if e.request]
        assert shown and shown[0].rule == rule
        assert shown[0].request.startswith("curl ") and shown[0].response.startswith("200")
        assert report.result(rule).status == "drift"
    # the documented rules around each difference hold
    for rule in ("revoke-count", "revoke-idempotent", "filter-all", "limit-respected",
                 "derived-status-expired", "get-matches-list"):
        assert report.result(rule).status == "passed", report.result(rule)
    fields = {item["name"]: item for item in report.undocumented if item["kind"] == "field"}
    assert set(fields) == {"$.items[*].region", "$.session.region"}
    assert fields["$.items[*].region"]["example"] == json.dumps(REGION)
    assert fields["$.items[*].region"]["count"] > 10
    text = report.render()
    drift = text[text.index("Drift ("):]
    for assumption in DIFFERENCES:
        assert f"  {assumption}: assumes " in drift
    assert "Failures:" not in text and "$.items[*].region" in text


def test_enforced_each_difference_fails_the_rule_that_sees_it(
    second_implementation: tuple[OtherSessionsApi, RunningServer],
) -> None:
    report = check(second_implementation, assumptions="enforce")
    assert report.exit_code == 1
    assert set(report.failed_rules()) == set(DIFFERENCES.values()), report.render()
    for assumption, rule in DIFFERENCES.items():
        assert report.result(rule).violations[0].assumption == assumption
    failures = report.render()[report.render().index("Failures:"):]
    for assumption in DIFFERENCES:
        assert f"(contradicts the assumption {assumption})" in failures


def test_the_drift_report_is_written_as_json(
    second_implementation: tuple[OtherSessionsApi, RunningServer], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, server = second_implementation
    path = tmp_path / "out" / "drift.json"
    args = ["--base-url", server.url, "--token", "dev-token", "--application-id", DEV_APP,
            "--seed", "3", "--max-examples", "3", "-q", "--drift-report", str(path)]
    for sid in foreign(api):
        args += ["--foreign-session-id", sid]
    assert main(args) == 0  # read-only, reported: the list order and idle threshold drift
    out = capsys.readouterr().out
    assert "drift report: " in out
    document = json.loads(path.read_text())
    assert set(document) == {"target", "when", "mode", "assumptions", "undocumented"}
    assert document["target"] == server.url and document["mode"] == "report"
    assert document["when"].endswith("Z")
    status = {a["id"]: a["status"] for a in document["assumptions"]}
    assert status["list-order-newest-first"] == status["idle-threshold"] == "contradicted"
    assert status["revoke-all-disconnects-connected"] == "unobserved"  # read-only: no revoke
    assert status["session-token-lifetime"] == "unobserved"
    assert status["filter-inactive-means-ended"] == "confirmed"
    assert set(status.values()) == {"confirmed", "contradicted", "unobserved"}
    for entry in document["assumptions"]:
        assert entry["evidence"], entry["id"]
        if entry["status"] == "contradicted":
            assert entry["evidence"][0]["request"].startswith("curl ")
            assert "dev-token" not in json.dumps(entry)
    [region] = [u for u in document["undocumented"] if u["name"] == "$.items[*].region"]
    assert region["kind"] == "field" and region["count"] > 0
    # the printed section and the JSON are one list: the same entries, the same counts
    section = out[out.index("Undocumented ("):].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[1] for line in section] == [u["name"] for u in document["undocumented"]]
    assert all(f"({u['count']} times" in line
               for u, line in zip(document["undocumented"], section, strict=True))


def test_the_mock_against_itself_confirms_what_it_can_and_sends_nothing_undocumented(
    tmp_path: Path,
) -> None:
    from kontext_mock import KontextMock

    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    try:
        # (with --mcp: the gateway's assumptions are seen only by an MCP client)
        report = run_contract(Target(server.url, token="dev-token"),
                              Options(seed=5, max_examples=3, mcp=True))
    finally:
        server.stop()
    assert report.assumptions_mode == "enforce" and report.ok, report.render()
    assert report.contradicted() == [] and report.undocumented == []
    unobserved = [v.id for v in report.assumptions if v.status == "unobserved"]
    # exactly those the contract says nothing can observe from outside, each told why
    declared = read_assumptions(load_spec().document)
    assert unobserved == [aid for aid, a in declared.items() if a.unobservable]
    assert "applications-default-page" in unobserved and "session-token-lifetime" in unobserved
    text = report.render()  # "N unobserved" names them, and says why
    assert f"0 contradicted, {len(unobserved)} unobserved:\n" in text
    assert ("  unobserved  applications-default-page: unobservable: telling needs more than "
            "100 applications") in text
    assert "  unobserved  session-token-lifetime: unobservable: " in text


def test_only_the_rules_that_ran_speak_for_an_assumption(
    second_implementation: tuple[OtherSessionsApi, RunningServer],
) -> None:
    report = check(second_implementation, layers=("semantic",),
                   skip=frozenset({"list-order", "derived-status-idle"}))
    assert report.result("list-order").status == "skipped"
    assert report.verdict("list-order-newest-first").status == "unobserved"
    assert report.verdict("idle-threshold").status == "unobserved"
    assert "skipped (--skip)" in report.verdict("idle-threshold").evidence[-1].message
    assert ("  unobserved  idle-threshold: derived-status-idle: not checked: skipped (--skip)"
            in report.render())
    assert report.verdict("error-body-shape").status == "confirmed"  # semantic rules saw it
    held_by = {e.rule for e in report.verdict("error-body-shape").evidence}
    assert "schema-assumptions" not in held_by  # its layer was not selected
