"""The plugin's fixtures: registration, cost when unused, overriding, and what they offer."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

FIXTURES = ["kontext_mock", "kontext_clock", "kontext_session_factory", "kontext_config",
            "kontext_server"]


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_it=source)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_every_fixture_is_listed_with_a_one_line_docstring(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")

    out = result.stdout.lines
    for name in FIXTURES:
        line = next(i for i, text in enumerate(out) if text.startswith(name + " "))
        assert "fixtures/plugin.py" in out[line]
        assert out[line + 1].startswith("    ") and len(out[line + 1].strip()) > 20
        assert not out[line + 2].strip(), f"{name}: the docstring is longer than one line"


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    result = run(pytester, "def test_it(kontext_mock):\n    pass\n", "-p", "no:kontext")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'kontext_mock' not found*"])


def test_a_run_that_uses_no_kontext_fixture_builds_nothing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           pytester.makepyfile(test_it="""
import sys

def test_nothing_loaded():
    assert "kontext_mock.fixtures.plugin" in sys.modules  # the plugin is there ...
    assert "kontext_mock.mock" not in sys.modules  # ... but the mock was never imported
    assert "kontext_mock.fixtures.server" not in sys.modules
    assert "flask" not in sys.modules
"""))

    result.assert_outcomes(passed=1)


def test_the_server_starts_once_and_only_when_its_url_is_used(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import pytest

urls = set()


def test_no_url_no_socket(kontext_mock, kontext_server):
    kontext_mock.revoke_all()
    assert not kontext_server.running


@pytest.mark.parametrize("n", range(3))
def test_one_server(kontext_mock, kontext_server, n):
    urls.add(kontext_mock.url)
    assert kontext_server.running and len(urls) == 1
""")

    result.assert_outcomes(passed=4)


def test_kontext_config_can_be_overridden_for_a_whole_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest


@pytest.fixture(scope="session")
def kontext_config(kontext_config):
    return kontext_config.with_changes(seed=42, sessions=3)
""")

    result = run(pytester, """
def test_seed(kontext_mock):
    assert kontext_mock.config.seed == 42
    assert len(kontext_mock.list_sessions(status="all")) == 3
""")

    result.assert_outcomes(passed=1)


def test_kontext_server_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest
from kontext_mock.fixtures import KontextServer
from kontext_mock import MockConfig


@pytest.fixture(scope="session")
def kontext_server():
    server = KontextServer(MockConfig(seed=9, frozen=True), {"transport": "inprocess"})
    yield server
    server.stop()
""")

    result = run(pytester, """
def test_own_server(kontext_mock, kontext_server):
    assert kontext_mock.config.seed == 9
    assert kontext_mock.requests_session().get(
        kontext_mock.sessions_url(), headers=kontext_mock.headers).status_code == 200
    assert not kontext_server.running
""")

    result.assert_outcomes(passed=1)


def test_the_handle_offers_connection_details_and_the_control_api(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import requests


def test_handle(kontext_mock):
    listed = requests.get(kontext_mock.sessions_url(), headers=kontext_mock.headers).json()
    assert listed["items"] == kontext_mock.list_sessions()
    one = requests.get(f"{kontext_mock.sessions_url()}/{kontext_mock.session_id}",
                       headers={"Authorization": f"Bearer {kontext_mock.token}"}).json()
    assert one["session"] == kontext_mock.get_session(kontext_mock.session_id)
    assert one["session"] == kontext_mock.get_session(kontext_mock.application_id,
                                                      kontext_mock.session_id)
    token = requests.post(kontext_mock.url + "/oauth2/token",
                          data={"grant_type": "client_credentials"},
                          auth=(kontext_mock.client_id, kontext_mock.client_secret))
    assert token.status_code == 200
    # the rest of the core's API, through the handle
    assert kontext_mock.application_ids()[0] == kontext_mock.application_id
    assert kontext_mock.events is kontext_mock.mock.events
    assert kontext_mock.revoke_all() > 0
    assert kontext_mock.revoke_all() == 0
""")

    result.assert_outcomes(passed=1)


def test_the_clock_moves_every_answer(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import datetime as dt


def test_clock(kontext_mock, kontext_clock):
    start = kontext_clock.now()
    assert kontext_clock.frozen and kontext_clock() == start
    assert kontext_clock.advance("10m") == start + dt.timedelta(minutes=10)
    assert kontext_clock.advance(30) == start + dt.timedelta(minutes=10, seconds=30)
    assert kontext_clock.set("2020-01-01T00:00:00Z").year == 2020
    assert kontext_mock.now().year == 2020
    kontext_clock.set(start)
    kontext_clock.advance("PT2H")
    assert kontext_mock.list_sessions() == []  # every token has expired
""")

    result.assert_outcomes(passed=1)


def test_the_session_factory_makes_sessions_in_each_state(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import pytest


@pytest.mark.parametrize("state", ["active", "idle", "expired", "disconnected"])
def test_state(kontext_mock, kontext_session_factory, state):
    made = kontext_session_factory(state, hostname="made-here")
    assert made["derivedStatus"] == state
    assert made["hostname"] == "made-here"
    assert kontext_mock.get_session(made["id"]) == made


def test_many_and_mix(kontext_session_factory):
    assert len(kontext_session_factory.many(3, "idle")) == 3
    made = kontext_session_factory.mix(active=2, expired=1)
    assert [s["derivedStatus"] for s in made] == ["active", "active", "expired"]


def test_unknown_state(kontext_session_factory):
    with pytest.raises(ValueError, match="unknown session state 'sleepy'"):
        kontext_session_factory("sleepy")
""")

    result.assert_outcomes(passed=6)


def test_inprocess_transport_opens_no_socket(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import socket
import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
""")

    result = run(pytester, """
import asyncio


def test_requests(kontext_mock, kontext_server):
    answer = kontext_mock.requests_session().get(kontext_mock.sessions_url(),
                                                 headers=kontext_mock.headers)
    assert answer.status_code == 200 and answer.json()["items"]
    assert not kontext_server.running


def test_httpx(kontext_mock):
    client = kontext_mock.httpx_client(headers=kontext_mock.headers)
    assert client.delete(kontext_mock.sessions_url()).json()["disconnectedCount"] > 0


def test_async_httpx(kontext_mock):
    async def main():
        async with kontext_mock.async_httpx_client(headers=kontext_mock.headers) as client:
            return (await client.get(kontext_mock.sessions_url())).json()
    assert asyncio.run(main())["items"] == kontext_mock.list_sessions()
""", "--kontext-transport=inprocess")

    result.assert_outcomes(passed=3)


def test_an_http_mock_can_still_hand_out_inprocess_clients(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
def test_both(kontext_mock, kontext_server):
    http = kontext_mock.requests_session()
    local = kontext_mock.requests_session(transport="inprocess")
    url = kontext_mock.sessions_url()
    assert http.get(url, headers=kontext_mock.headers).json() == \\
        local.get(url, headers=kontext_mock.headers).json()
    assert kontext_mock.httpx_client(transport="inprocess").get(
        url, headers=kontext_mock.headers).status_code == 200


def test_a_session_of_my_own(kontext_mock, kontext_server):
    import requests
    mine = requests.Session()
    mine.headers.update(kontext_mock.headers)
    assert kontext_mock.requests_session(session=mine, transport="inprocess") is mine
    assert mine.get(kontext_mock.sessions_url()).status_code == 200
""")

    result.assert_outcomes(passed=2)
