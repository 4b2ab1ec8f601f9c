"""The contract kit proves its power: every deliberately broken mock fails, with the rule
that its bug breaks named; the unbroken mock passes every rule of every layer.

Each variant (tests/broken_variants.py) is served over HTTP on a thread and checked by
the kit's semantic and stateful layers (where every one of these bugs lives; the schema
layer, which the unbroken mock also passes, would only add minutes), with few examples
per property: the kit's explicit edge cases, not luck, must find each bug.
"""

from __future__ import annotations

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.contracts import Options, Report, Target, run_contract

from .broken_variants import VARIANTS, Variant, WsgiApp
from .serving import Switch, switched_server

pytestmark = pytest.mark.slow  # a whole kit run per broken variant

DEV_APP = MockConfig().dev_application_id
SEED = 20261128


def has_control_plane(mock: KontextMock) -> bool:
    """True when the mock serves ``/_mock`` (the kit then finds foreign ids itself and runs
    the lifecycle state machine)."""
    return mock.app.test_client().get("/_mock/clock").status_code == 200


def foreign_ids(mock: KontextMock) -> tuple[str, ...]:
    """A few sessions of other applications, when the kit cannot find them itself."""
    if has_control_plane(mock):
        return ()
    with mock.store.lock:
        return tuple(s.id for s in mock.store.sessions.values() if s.application_id != DEV_APP)[:3]


#: one server for the module: the app it serves is swapped per test
served = pytest.fixture(scope="module")(switched_server)


def check(served: tuple[Switch, str], mock: KontextMock, app: WsgiApp,
          **options: object) -> Report:
    """The kit, destructive, against ``app``."""
    switch, url = served
    switch.app = app
    return run_contract(
        Target(url, token="dev-token", application_id=DEV_APP),
        Options(seed=SEED, max_examples=5, destructive=True,
                foreign_session_ids=foreign_ids(mock), **options),  # type: ignore[arg-type]
    )


@pytest.fixture
def unbroken() -> KontextMock:
    return KontextMock(seed=7)


def test_the_unbroken_mock_passes_every_rule(served: tuple[Switch, str],
                                             unbroken: KontextMock) -> None:
    report = check(served, unbroken, unbroken.app)
    assert report.ok, report.render()
    ran = {r.name for r in report.results if r.status == "passed"}
    expected = {"limit-respected", "limit-default", "filter-default", "filter-inactive",
                "revoke-count",
                "revoke-persists", "revoke-idempotent", "foreign-session-404", "x-request-id",
                "schema-response-schema-conformance", "derived-status-expired"}
    if has_control_plane(unbroken):
        expected.add("lifecycle-model")
        assert not [r.name for r in report.results if r.status == "skipped"], report.render()
    assert expected <= ran, f"not checked: {expected - ran}\n{report.render()}"


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_the_kit_kills_the_broken_variant(served: tuple[Switch, str], variant: Variant) -> None:
    mock, app = variant.build(seed=7)
    if variant.needs_control_plane and not has_control_plane(mock):
        pytest.skip("the mock has no control plane yet")
    report = check(served, mock, app, layers=("semantic", "stateful"))
    assert variant.rule in report.failed_rules(), (
        f"{variant.name} ({variant.description}) was not caught by {variant.rule}:\n"
        + report.render())
    assert report.assumptions_mode == "enforce" and report.exit_code == 1
    failure = report.result(variant.rule)
    assert failure.violations and failure.violations[0].request, failure
    assert "dev-token" not in report.render(), "the token must be redacted"


def test_the_variants_are_at_least_the_fifteen_of_the_issue() -> None:
    expected = {
        "limit-ignored", "limit-off-by-one", "default-filter-everything", "inactive-leaks-idle",
        "revoke-does-not-persist", "revoke-counts-disconnected", "revoke-not-idempotent",
        "expiry-ignored", "idle-backwards", "foreign-session-readable", "delete-without-auth",
        "500-on-bad-id", "wrong-envelope", "disconnected-at-missing", "no-request-id",
        "no-auth-at-all", "malformed-token-accepted",
    }
    assert expected <= {v.name for v in VARIANTS}
    # and those only enough sessions tell apart: a smaller cap, another default
    assert {"limit-capped-150", "limit-default-50", "default-filter-everything",
            "include-inactive-ignored"} <= {v.name for v in VARIANTS}
    assert len(VARIANTS) == 23
