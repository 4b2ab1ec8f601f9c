"""The request budget: a plan shares it among the layers, a run never sends more than it,
and every rule is still exercised; counted, not timed (no test here waits for a rate)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from kontext_mock import KontextMock
from kontext_mock.contracts import Options, Report, Target, run_contract
from kontext_mock.contracts.budget import DEFAULT_BUDGET, PHASES, Plan, default_budget
from kontext_mock.http.serve import RunningServer, start

pytestmark = pytest.mark.slow  # whole kit runs under request budgets

SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}


class Counted:
    """The requests that reach the app: public API ones, and control-plane ones."""

    def __init__(self, app: Any, control_plane: bool = True) -> None:
        self.app = app
        self.control_plane = control_plane
        self.public = 0

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/_mock"):
            if not self.control_plane:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
        else:
            self.public += 1
        return self.app(environ, start_response)  # type: ignore[no-any-return]


@pytest.fixture
def counted() -> Iterator[tuple[Counted, RunningServer]]:
    counter = Counted(KontextMock(seed=7).app)
    server = start(counter, "127.0.0.1", 0)
    yield counter, server
    server.stop()


def run(counted: tuple[Counted, RunningServer], **options: Any) -> tuple[Counted, Report]:
    """The kit against the counted mock; the counter and the report."""
    counter, server = counted
    return counter, run_contract(Target(server.url, token="dev-token"), Options(**options))


def unexercised(report: Report) -> list[str]:
    """Rules that got no verdict, beyond the stateful ones a read-only run leaves out."""
    return [r.name for r in report.results if r.status == "skipped"
            and not (r.rule.layer == "stateful" and not report.destructive)]


@pytest.mark.parametrize(("total", "destructive", "lifecycle"),
                         [(240, False, False), (240, True, False), (200, True, True)])
def test_a_plan_shares_the_whole_budget(total: int, destructive: bool, lifecycle: bool) -> None:
    plan = Plan.make(total, ("schema", "semantic", "stateful"), destructive, lifecycle)
    assert sum(plan.shares.values()) == total and list(plan.shares) == list(PHASES)
    assert (plan.shares["stateful"] > 0) == destructive
    assert plan.shares["semantic"] >= 40 and plan.shares["schema"] >= 60
    assert plan.render().startswith("preflight 12, semantic ")


@pytest.mark.parametrize("total", [0, 5, 40, 70])
def test_a_budget_below_the_plan_s_least_is_shared_without_going_negative(total: int) -> None:
    plan = Plan.make(total, ("schema", "semantic", "stateful"), True, True)
    assert sum(plan.shares.values()) == total and min(plan.shares.values()) >= 0
    assert plan.shares["preflight"] == min(12, total)  # the preflight is served first


def test_the_default_budget_is_two_windows_of_the_rate() -> None:
    assert default_budget(None) == DEFAULT_BUDGET == 240
    assert default_budget("120/min") == 240 and default_budget("100/min") == 200
    assert default_budget("2/s") == 240 and default_budget("10/min") >= 170  # never starved


def test_a_read_only_run_within_the_default_budget_exercises_every_rule(
    counted: tuple[Counted, RunningServer],
) -> None:
    counter, report = run(counted, seed=4, destructive=False, budget=DEFAULT_BUDGET)
    assert report.ok, report.render()
    # (the kit counts schemathesis' own probes whether or not they reach the target)
    assert report.budget == DEFAULT_BUDGET and counter.public <= report.requests <= DEFAULT_BUDGET
    assert unexercised(report) == []
    assert sum(report.usage.values()) == report.requests
    assert set(report.usage) <= set(PHASES) and report.usage["schema"] > 60
    assert report.result("schema-missing-required-header").checks > 0  # coverage phase ran
    assert "requests by layer of a budget of 240: preflight " in report.render()


def test_a_destructive_run_with_its_state_machine_never_sends_more_than_the_budget(
    counted: tuple[Counted, RunningServer],
) -> None:
    counter, report = run(counted, seed=2, destructive=True, budget=200)
    assert report.ok, report.render()
    assert counter.public <= report.requests <= 200
    assert unexercised(report) == [] and report.result("lifecycle-model").status == "passed"
    assert report.usage["stateful"] <= report.plan["stateful"]


def test_a_budget_too_small_for_the_plan_stops_sending_and_says_what_was_not_checked(
    counted: tuple[Counted, RunningServer],
) -> None:
    counter, report = run(counted, seed=4, destructive=False, budget=40)
    assert counter.public == report.requests == 40
    left = [r for r in report.results if "budget was spent" in r.detail]
    assert left, report.render()


def test_budgets_apply_to_a_rate_limited_or_foreign_target_and_not_to_a_plain_mock() -> None:
    mock = KontextMock(seed=7)
    hidden = Counted(mock.app, control_plane=False)
    servers = {"mock": start(mock.app, "127.0.0.1", 0), "other": start(hidden, "127.0.0.1", 0)}
    quick = {"layers": ("semantic",), "max_examples": 2, "seed": 1}
    try:
        plain = run_contract(Target(servers["mock"].url, token="dev-token"), Options(**quick))
        mock.rate_limit(600)  # the mock's own limit, on: it would answer 429
        limited = run_contract(Target(servers["mock"].url, token="dev-token"), Options(**quick))
        mock.rate_limit(None)
        foreign = run_contract(Target(servers["other"].url, token="dev-token",
                                      application_id=mock.config.dev_application_id),
                               Options(**quick))
        none = run_contract(Target(servers["other"].url, token="dev-token",
                                   application_id=mock.config.dev_application_id),
                            Options(budget=0, **quick))
    finally:
        for server in servers.values():
            server.stop()
    assert plain.budget is None and plain.plan == {}
    assert limited.budget == 1200  # two windows of the mock's 600 a minute
    assert foreign.budget == DEFAULT_BUDGET and foreign.assumptions_mode == "report"
    assert none.budget is None
