"""The example client against the kontext-mock plugin's fixtures, and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from sessions_client import ApiError, NotFoundError, SessionsClient


def test_lists_the_active_sessions_the_mock_holds(client, kontext_mock):
    listed = client.list_sessions(kontext_mock.application_id)

    assert listed == kontext_mock.list_sessions()
    assert {s["derivedStatus"] for s in listed} <= {"active", "idle"}


def test_limit_caps_the_list(client, kontext_mock):
    assert len(client.list_sessions(kontext_mock.application_id, status="all", limit=3)) == 3


def test_gets_a_session_made_by_the_factory(client, kontext_mock, kontext_session_factory):
    made = kontext_session_factory("idle", hostname="alice-mbp")

    got = client.get_session(kontext_mock.application_id, made["id"])

    assert got["hostname"] == "alice-mbp"
    assert got["derivedStatus"] == "idle"


def test_an_unknown_session_is_not_found(client, kontext_mock):
    with pytest.raises(NotFoundError):
        client.get_session(kontext_mock.application_id, "00000000-0000-4000-8000-000000000000")


def test_revoke_all_disconnects_every_connected_session(client, kontext_mock):
    connected = len(client.list_sessions(kontext_mock.application_id))

    assert client.revoke_all(kontext_mock.application_id) >= connected > 0
    assert client.list_sessions(kontext_mock.application_id) == []
    assert client.revoke_all(kontext_mock.application_id) == 0


def test_each_test_starts_from_the_seeded_state(client, kontext_mock):
    # Whatever the revoke test above did, this test sees connected sessions again.
    assert client.list_sessions(kontext_mock.application_id)


def test_sessions_go_idle_as_the_clock_moves(client, kontext_mock, kontext_clock,
                                             kontext_session_factory):
    made = kontext_session_factory("active")

    kontext_clock.advance("10m")

    assert client.get_session(kontext_mock.application_id, made["id"])["derivedStatus"] == "idle"


@pytest.mark.kontext(idle_after="1h")
def test_the_marker_changes_the_idle_threshold(client, kontext_mock, kontext_clock,
                                               kontext_session_factory):
    made = kontext_session_factory("active")

    kontext_clock.advance("10m")

    assert client.get_session(kontext_mock.application_id, made["id"])["derivedStatus"] == "active"


def test_client_credentials_and_token_refresh(kontext_mock, kontext_clock):
    client = SessionsClient(
        kontext_mock.url,
        client_id=kontext_mock.client_id,
        client_secret=kontext_mock.client_secret,
        http=kontext_mock.requests_session(),
    )
    first_token = client.fetch_token()
    assert client.list_sessions(kontext_mock.application_id)

    kontext_clock.advance("2h")  # tokens expire on the mock's clock

    stale = SessionsClient(kontext_mock.url, token=first_token,
                           http=kontext_mock.requests_session())
    with pytest.raises(ApiError) as caught:
        stale.list_sessions(kontext_mock.application_id)
    assert caught.value.status == 401
    # the client saw the same 401, fetched a new token and carried on
    assert client.list_sessions(kontext_mock.application_id, status="all")


def test_a_wrong_token_is_refused(kontext_mock):
    client = SessionsClient(kontext_mock.url, token="not-a-token",  # noqa: S106
                            http=kontext_mock.requests_session())

    with pytest.raises(ApiError) as caught:
        client.list_sessions(kontext_mock.application_id)

    assert caught.value.status == 401


@pytest.mark.kontext(rate_limit=2)
def test_a_429_is_retried_after_the_wait_the_server_asks_for(client, kontext_mock,
                                                             kontext_clock):
    start = kontext_clock.now()

    for _ in range(5):  # more than the 2 a minute the mock allows
        assert client.list_sessions(kontext_mock.application_id)

    # The client waited as told (on the mock's clock, so the test took no real time).
    assert kontext_clock.now() - start >= dt.timedelta(minutes=1)
    answers = [e["status"] for e in kontext_mock.journal.entries(method="GET")]
    assert answers.count(429) >= 2 and answers.count(200) == 5


def test_a_429_from_a_fault_is_retried(client, kontext_mock):
    kontext_mock.add_fault("DELETE", "/api/v1/applications/*/sessions", status=429, times=2)

    assert client.revoke_all(kontext_mock.application_id) > 0

    answers = [e["status"] for e in kontext_mock.journal.entries(method="DELETE")]
    assert answers == [429, 429, 200]


def test_the_client_gives_up_after_its_retries(client, kontext_mock):
    kontext_mock.add_fault("GET", "/api/v1/*", status=429)

    with pytest.raises(ApiError) as caught:
        client.list_sessions(kontext_mock.application_id)

    assert caught.value.status == 429
    assert len(kontext_mock.journal.entries()) == client.max_retries + 1


@pytest.mark.kontext(scenario="mixed")
def test_a_scenario_shipped_with_the_plugin(client, kontext_mock):
    every = client.list_sessions(kontext_mock.application_id, status="all")

    assert {s["derivedStatus"] for s in every} == {"active", "idle", "expired", "disconnected"}
    inactive = client.list_sessions(kontext_mock.application_id, status="inactive")
    assert {s["derivedStatus"] for s in inactive} == {"expired", "disconnected"}
