"""The list's parameters at their bounds and defaults: the kit drives them against enough
sessions to tell each apart (made on a mock, through its control plane), fails the rule
named for the parameter when a target caps or defaults otherwise, and says which bounds
a read-only run could not tell apart, and why."""

from __future__ import annotations

from typing import Any

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.contracts import Options, Report, Target, run_contract
from kontext_mock.contracts.bounds import ListParameters
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.http.serve import start

from .broken_variants import LimitCapped, limit_default_50
from .serving import without_control_plane

pytestmark = pytest.mark.slow  # whole kit runs over 201-session applications

DEV_APP = MockConfig().dev_application_id
QUICK = {"layers": ("semantic",), "max_examples": 2, "seed": 3}




def check(app: Any, application_id: str | None = DEV_APP, **options: Any) -> Report:
    server = start(app, "127.0.0.1", 0)
    try:
        return run_contract(Target(server.url, token="dev-token", application_id=application_id),
                            Options(**{**QUICK, **options}))
    finally:
        server.stop()


def test_the_bounds_and_defaults_come_from_the_spec() -> None:
    params = ListParameters.of(ApiSpec.load())
    assert (params.limit_min, params.limit_max, params.limit_default) == (1, 200, 100)
    assert params.status_default == "active"
    assert params.include_inactive_default is False
    assert params.telling_population == 201


def test_a_read_only_run_says_which_bounds_it_could_not_exercise_and_why() -> None:
    report = check(without_control_plane(KontextMock(seed=7).app))
    assert report.ok and not report.destructive, report.render()
    notes = [n for n in report.notes if n.startswith("not exercised")]
    assert notes == [
        "not exercised (limit-respected): limit's maximum (200): the application lists 20 "
        "sessions at limit=200; only 200 or more tell a smaller cap apart (the kit creates "
        "sessions only on a kontext-mock)",
        "not exercised (limit-default): limit's default (100): the application lists 20 "
        "sessions; only more than 100 tell another default apart (the kit creates sessions "
        "only on a kontext-mock)",
    ]
    assert "not exercised: limit's maximum (200)" in report.result("limit-respected").detail
    assert "not exercised: limit's default (100)" in report.result("limit-default").detail
    assert "note: not exercised (limit-default)" in report.render()


def test_an_application_without_ended_sessions_cannot_tell_the_filters_apart() -> None:
    mock = KontextMock(seed=7)
    app = mock.add_application(name="only active").id
    for _ in range(3):
        mock.add_session(app, "active")
    report = check(mock.app, app, destructive=False)
    assert report.ok, report.render()
    [note] = [n for n in report.notes if "filter-include-inactive" in n]
    assert note.startswith("not exercised (filter-default, filter-include-inactive): status's "
                           "values and default, and includeInactive: the application holds no "
                           "expired or disconnected session")


def test_read_only_with_enough_sessions_another_default_fails_limit_default() -> None:
    mock = KontextMock(seed=7)
    app = mock.add_application(name="busy").id
    for _ in range(210):
        mock.add_session(app, "active")
    report = check(without_control_plane(limit_default_50(mock.app)), app)
    assert report.exit_code == 1 and report.failed_rules() == ["limit-default"], report.render()
    [violation] = report.result("limit-default").violations
    assert violation.assumption is None  # the default of 100 is documented: fails in any mode
    assert violation.message.startswith("no query parameters returned 50 sessions; at least 200 "
                                        "match (limit=200), so the default limit of 100 gives 100")
    assert not [n for n in report.notes if n.startswith("not exercised (limit")]


def test_against_a_mock_the_kit_makes_the_sessions_and_a_cap_is_drift_of_the_range() -> None:
    report = check(LimitCapped(seed=7).app, destructive=True, assumptions="report")
    created = [n for n in report.notes if "201 connected sessions" in n]
    assert created, report.notes
    result = report.result("limit-respected")
    assert result.status == "drift", report.render()  # reported: the range is an assumption
    assert "limit=200 returned 150 sessions" in result.violations[0].message
    assert "holds 201 connected sessions (the kit created them), so expected 200" in (
        result.violations[0].message)
    document = report.drift_document()
    [entry] = [a for a in document["assumptions"] if a["id"] == "list-limit-range"]
    assert entry["status"] == "contradicted"
    assert entry["evidence"][0]["rule"] == "limit-respected"
    assert entry["evidence"][0]["request"].startswith("curl ")
