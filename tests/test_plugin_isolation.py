"""Isolation: whatever a test does to its mock, the next test sees the pristine state.

Each check runs a generated test module through pytest (``pytester``): tests that change
the mock in every way a test can (revoke, move the clock, add sessions, change the seed,
go over HTTP) interleaved with tests that compare what they see with a mock freshly
built from the same configuration. Both orders, in one process and with xdist.
"""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

NOW = "2026-01-01T12:00:00Z"

HEADER = '''
import json, os
import pytest
import requests
from kontext_mock import KontextMock


def fingerprint(mock):
    """Everything a test could observe: the whole exported state (records, clock,
    settings, lifecycles, faults, rate limit), the journal and the event history."""
    return (
        mock.export_state(),
        mock.config,
        mock.clock.frozen,
        mock.journal.entries(),
        len(mock.events.since()),
        mock.events.subscriber_count,
    )


@pytest.fixture(scope="session")
def fresh(kontext_config):
    return fingerprint(KontextMock(kontext_config))


@pytest.fixture(scope="session")
def first_made(kontext_config):
    """What a fresh mock makes first: every test's first made records are these."""
    mock = KontextMock(kontext_config)
    organization = mock.add_organization()
    return [mock.add_session(state="idle", hostname="leak-check") for _ in range(5)], organization


@pytest.fixture(autouse=True)
def record_server(request, kontext_server):
    yield
    log = os.environ.get("KONTEXT_SERVER_LOG")
    if log and kontext_server.running:
        with open(log, "a") as out:
            out.write(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                                  "pid": os.getpid(), "url": kontext_server.url}) + "\\n")
'''

# name -> body of a test that changes the mock and checks that it did
MUTATORS = {
    "revokes_everything": '''
def test_{n}_revokes_everything(kontext_mock):
    kontext_mock.add_organization()  # draws from the faker, which the next test reseeds
    for app in kontext_mock.application_ids():
        kontext_mock.revoke_all(app)
    assert kontext_mock.list_sessions() == []
''',
    "moves_the_clock": '''
def test_{n}_moves_the_clock(kontext_mock, kontext_clock):
    kontext_clock.advance("3h")
    kontext_clock.unfreeze()
    assert kontext_mock.list_sessions() == []
''',
    "adds_sessions": '''
def test_{n}_adds_sessions(kontext_mock, kontext_session_factory, first_made):
    # what is made does not depend on what earlier tests made
    assert kontext_mock.add_organization() == first_made[1]
    made = kontext_session_factory.many(5, "idle", hostname="leak-check")
    assert made == first_made[0]
    assert {s["id"] for s in made} <= {s["id"] for s in kontext_mock.list_sessions()}
''',
    "changes_the_control_plane": '''
def test_{n}_changes_the_control_plane(kontext_mock):
    kontext_mock.add_fault("GET", "/api/v1/*", status=503)
    kontext_mock.rate_limit(1)
    kontext_mock.update_session(kontext_mock.session_id, hostname="changed",
                                lifecycle={"until": "+1m", "then": "disconnect"})
    answer = kontext_mock.requests_session().get(kontext_mock.sessions_url(),
                                                 headers=kontext_mock.headers)
    assert answer.status_code in (429, 503)
    assert kontext_mock.journal.entries()
''',
    "loads_a_scenario": '''
def test_{n}_loads_a_scenario(kontext_mock, kontext_clock):
    kontext_mock.load_scenario("two-orgs")
    kontext_clock.advance("1m")
    assert kontext_mock.application_ids() != []
''',
    "uses_a_scenario_marker": '''
@pytest.mark.kontext(scenario="mixed", rate_limit=True)
def test_{n}_uses_a_scenario_marker(kontext_mock, fresh):
    assert fingerprint(kontext_mock) != fresh
    kontext_mock.revoke_all()
''',
    "changes_seed_by_marker": '''
@pytest.mark.kontext(seed=99, idle_after="1m", now="2030-06-01T00:00:00Z")
def test_{n}_changes_seed_by_marker(kontext_mock, fresh):
    assert fingerprint(kontext_mock) != fresh
''',
    "subscribes_to_events": '''
def test_{n}_subscribes_to_events(kontext_mock):
    subscription = kontext_mock.events.subscribe()  # and never closed
    kontext_mock.revoke_all()
    assert subscription.get(timeout=1) is not None
''',
    "revokes_over_http": '''
def test_{n}_revokes_over_http(kontext_mock):
    session = kontext_mock.requests_session()
    answer = session.delete(kontext_mock.sessions_url(), headers=kontext_mock.headers)
    assert answer.status_code == 200 and answer.json()["disconnectedCount"] > 0
    session.post(kontext_mock.url + "/oauth2/token", data={"grant_type": "client_credentials"},
                 auth=(kontext_mock.client_id, kontext_mock.client_secret)).raise_for_status()
''',
}

PRISTINE = '''
def test_{n}_sees_the_pristine_state(kontext_mock, fresh):
    assert fingerprint(kontext_mock) == fresh
    answer = kontext_mock.requests_session().get(
        kontext_mock.sessions_url(), params={"status": "all", "limit": 200},
        headers=kontext_mock.headers)
    assert answer.json()["items"] == kontext_mock.list_sessions(status="all", limit=200)
'''


def module(order: str) -> str:
    """A test module: each mutator with a pristine check after it, or before it."""
    parts = [HEADER]
    for n, name in enumerate(MUTATORS):
        pair = [MUTATORS[name], PRISTINE]
        if order == "pristine_first":
            pair.reverse()
        parts.extend(body.replace("{n}", f"{n}{'ab'[i]}") for i, body in enumerate(pair))
    return "\n".join(parts)


@pytest.mark.parametrize("order", ["mutation_first", "pristine_first"])
def test_a_test_never_sees_what_the_previous_one_did(pytester: pytest.Pytester,
                                                     order: str) -> None:
    pytester.makepyfile(test_isolation=module(order))

    result = pytester.runpytest("-p", "no:cacheprovider", f"--kontext-now={NOW}")

    result.assert_outcomes(passed=2 * len(MUTATORS))


@pytest.mark.parametrize("transport", ["http", "inprocess"])
def test_isolation_holds_for_both_transports(pytester: pytest.Pytester, transport: str) -> None:
    pytester.makepyfile(test_isolation=module("mutation_first"))

    result = pytester.runpytest("-p", "no:cacheprovider", f"--kontext-now={NOW}",
                                f"--kontext-transport={transport}")

    result.assert_outcomes(passed=2 * len(MUTATORS))


@pytest.mark.slow
def test_each_xdist_worker_has_its_own_isolated_server(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_mutation_first=module("mutation_first"),
                        test_pristine_first=module("pristine_first"))
    log = pytester.path / "servers.jsonl"
    monkeypatch.setenv("KONTEXT_SERVER_LOG", str(log))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2",
                                           f"--kontext-now={NOW}")

    result.assert_outcomes(passed=4 * len(MUTATORS))
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    servers = {(s["worker"], s["pid"], s["url"]) for s in seen}
    # two workers, each with one server for all its tests, none shared
    assert len({s[0] for s in servers}) == 2
    assert len(servers) == 2
    assert len({s[2] for s in servers}) == 2
