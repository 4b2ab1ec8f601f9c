"""Kept answers (``http/kept.py``): a read asked again is answered without its handler
while the state it was made from holds, and never once something it depends on changed
(a record, the clock's instant, the configuration, the token, the Flask app's hooks)."""

from __future__ import annotations

import dataclasses
import http.client
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.core.durations import parse_instant
from kontext_mock.http import kept
from kontext_mock.http.app import pipeline_of

from .broken_variants import IdleBackwards
from .conftest import AUTH, DEV_APP, DEV_SESSION, NOW
from .serving import serve

GET = f"/api/v1/applications/{DEV_APP}/sessions/{DEV_SESSION}"


class CountingMock(KontextMock):
    """Counts the reads of a session that reach the engine (the handler's)."""

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        self.reads = 0

    def find_session(self, application_id: str, session_id: str,
                     organization_id: str | None = None) -> Any:
        self.reads += 1
        return super().find_session(application_id, session_id, organization_id)


@pytest.fixture
def counted() -> CountingMock:
    return CountingMock(seed=7, now=NOW, frozen=True)


@pytest.fixture
def client(counted: CountingMock) -> FlaskClient:
    return counted.app.test_client()


def session_of(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.get_json()
    found: dict[str, Any] = answer.get_json()["session"]
    return found


def read_twice(counted: CountingMock, client: FlaskClient,
               headers: dict[str, str] = AUTH) -> dict[str, Any]:
    """The session read twice, the second time from what was kept (the handler ran once)."""
    reads = counted.reads
    first = session_of(client.get(GET, headers=headers))
    assert session_of(client.get(GET, headers=headers)) == first
    assert counted.reads == reads + 1
    return first


def test_the_same_read_is_answered_again_without_its_handler(
        counted: CountingMock, client: FlaskClient) -> None:
    first = client.get(GET, headers=AUTH)
    again = [client.get(GET, headers=AUTH) for _ in range(3)]
    assert counted.reads == 1
    assert all(a.data == first.data for a in again)
    # each answer still passes the steps after the handler: its own id, the journal
    ids = {a.headers["x-request-id"] for a in [first, *again]}
    assert len(ids) == 4
    assert len(counted.journal) == 4


def test_a_change_to_the_session_is_seen_by_the_next_read(
        counted: CountingMock, client: FlaskClient) -> None:
    assert read_twice(counted, client)["status"] == "active"
    counted.disconnect(DEV_APP, DEV_SESSION, "admin")
    after = session_of(client.get(GET, headers=AUTH))
    assert after["status"] == "disconnected" and after["disconnectedAt"] is not None
    assert counted.reads == 2


def test_a_restored_state_is_seen_by_the_next_read(
        counted: CountingMock, client: FlaskClient) -> None:
    snapshot = counted.snapshot()
    counted.disconnect(DEV_APP, DEV_SESSION, "admin")
    assert read_twice(counted, client)["status"] == "disconnected"
    counted.restore(snapshot)
    assert session_of(client.get(GET, headers=AUTH))["status"] == "active"


def test_the_clock_moving_is_seen_by_the_next_read(
        counted: CountingMock, client: FlaskClient) -> None:
    assert read_twice(counted, client)["derivedStatus"] == "active"
    counted.advance("30d")  # past the session's token expiry, and any idle threshold
    assert session_of(client.get(GET, headers=AUTH))["derivedStatus"] == "expired"


def test_an_answer_holds_as_the_clock_moves_until_its_derived_status_would_change(
        counted: CountingMock, client: FlaskClient) -> None:
    session = read_twice(counted, client)
    assert session["derivedStatus"] == "active"
    idle_at = parse_instant(session["lastActiveAt"]) + counted.idle_after
    assert idle_at < parse_instant(session["tokenExpiresAt"])
    counted.set_time(idle_at - timedelta(milliseconds=1))  # (the last active instant)
    assert session_of(client.get(GET, headers=AUTH)) == session
    assert counted.reads == 1
    counted.set_time(idle_at)
    assert session_of(client.get(GET, headers=AUTH))["derivedStatus"] == "idle"
    counted.set_time(idle_at - timedelta(milliseconds=1))  # (and back: active again)
    assert session_of(client.get(GET, headers=AUTH))["derivedStatus"] == "active"


def test_a_running_clock_keeps_the_answer_across_instants() -> None:
    running = CountingMock(seed=7, now=NOW, frozen=False)
    reader = running.app.test_client()
    first = session_of(reader.get(GET, headers=AUTH))
    instant = running.now()
    while running.now() == instant:  # (the clock tells time to the millisecond)
        pass
    assert session_of(reader.get(GET, headers=AUTH)) == first
    assert running.reads == 1


def test_a_new_configuration_is_seen_by_the_next_read(
        counted: CountingMock, client: FlaskClient) -> None:
    assert read_twice(counted, client)["derivedStatus"] == "active"
    counted.config = dataclasses.replace(counted.config, idle_after=timedelta(microseconds=1))
    assert session_of(client.get(GET, headers=AUTH))["derivedStatus"] == "idle"


def test_a_token_gone_is_refused_not_answered_from_what_was_kept(
        counted: CountingMock, client: FlaskClient) -> None:
    token = counted.issue_token("dev-client", "dev-secret")["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    read_twice(counted, client, bearer)
    del counted.store.tokens[token]  # (forgotten without any record changing)
    refused = client.get(GET, headers=bearer)
    assert refused.status_code == 401


def test_a_credential_that_names_another_token_since_is_answered_for_it(
        counted: CountingMock, client: FlaskClient) -> None:
    elsewhere = counted.add_organization(name="Elsewhere")
    counted.add_client(client_id="here", client_secret="s", token="shared-token")
    shared = {"Authorization": "Bearer shared-token"}
    read_twice(counted, client, shared)
    # the same bearer string, now another organization's token (no record changed)
    del counted.store.tokens["shared-token"]
    counted.add_client(client_id="there", client_secret="s", organization_id=elsewhere.id,
                       token="shared-token")
    assert client.get(GET, headers=shared).status_code == 404


def test_another_credential_is_answered_for_itself(
        counted: CountingMock, client: FlaskClient) -> None:
    session_of(client.get(GET, headers=AUTH))
    elsewhere = counted.add_organization(name="Elsewhere")
    counted.add_client(client_id="elsewhere", client_secret="s", organization_id=elsewhere.id,
                       token="elsewhere-token")
    foreign = client.get(GET, headers={"Authorization": "Bearer elsewhere-token"})
    assert foreign.status_code == 404
    narrow = counted.add_client(client_id="narrow", client_secret="s",
                                scopes=("management:logs:read",), token="narrow-token")
    assert narrow.client_id == "narrow"
    assert client.get(GET, headers={"Authorization": "Bearer narrow-token"}).status_code == 403


def test_a_fault_rule_added_since_applies(counted: CountingMock, client: FlaskClient) -> None:
    read_twice(counted, client)
    counted.add_fault("GET", GET, status=503)
    assert client.get(GET, headers=AUTH).status_code == 503


def test_a_router_switched_off_leaves_reads_to_flask(
        counted: CountingMock, client: FlaskClient) -> None:
    read_twice(counted, client)
    pipeline_of(counted.app).router.enabled = False  # type: ignore[union-attr]
    session_of(client.get(GET, headers=AUTH))
    assert counted.reads == 2


def test_a_hook_added_to_the_app_sees_every_read(
        counted: CountingMock, client: FlaskClient) -> None:
    read_twice(counted, client)
    seen: list[str] = []
    counted.app.before_request(lambda: seen.append("read") and None)
    session_of(client.get(GET, headers=AUTH))
    assert seen == ["read"]


def test_only_reads_are_kept(counted: CountingMock, client: FlaskClient) -> None:
    router = pipeline_of(counted.app).router  # type: ignore[union-attr]
    client.get(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    client.head(GET, headers=AUTH)
    client.get(GET)  # (no credential: a 401, never kept)
    assert len(router.kept) == 0
    assert client.delete(f"/api/v1/applications/{DEV_APP}/sessions",
                         headers=AUTH).status_code == 200
    assert len(router.kept) == 0
    session_of(client.get(GET, headers=AUTH))
    assert len(router.kept) == 1


def test_what_is_kept_is_bounded(counted: CountingMock, client: FlaskClient,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    router = pipeline_of(counted.app).router  # type: ignore[union-attr]
    for n in range(kept.KEPT_ANSWERS + 10):
        session_of(client.get(f"{GET}?n={n}", headers=AUTH))
        assert len(router.kept) == n % kept.KEPT_ANSWERS + 1  # (all forgotten past the cap)
    router.kept.clear()
    size = len(client.get(GET, headers=AUTH).data)
    router.kept.clear()
    monkeypatch.setattr(kept, "KEPT_BYTES", 3 * size)
    for n in range(10):
        session_of(client.get(f"{GET}?n={n}", headers=AUTH))
        assert len(router.kept) == n % 3 + 1


def test_a_served_mock_keeps_reads_and_sees_changes(counted: CountingMock) -> None:
    server = serve(counted)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        bodies = []
        for _ in range(5):
            connection.request("GET", GET, headers=AUTH)
            answer = connection.getresponse()
            assert answer.status == 200
            bodies.append(answer.read())
        assert counted.reads == 1 and len(set(bodies)) == 1
        counted.disconnect(DEV_APP, DEV_SESSION, "admin")
        connection.request("GET", GET, headers=AUTH)
        assert b'"status":"disconnected"' in connection.getresponse().read()
        connection.close()
    finally:
        server.stop()


def test_an_answer_is_kept_for_the_token_named_before_its_handler_ran() -> None:
    class Swapping(CountingMock):
        """Gives the bearer string to another organization while the first read runs."""

        elsewhere = ""

        def find_session(self, application_id: str, session_id: str,
                         organization_id: str | None = None) -> Any:
            found = super().find_session(application_id, session_id, organization_id)
            if self.reads == 1:
                del self.store.tokens["swapped-token"]
                self.add_client(client_id="there", client_secret="s",
                                organization_id=self.elsewhere, token="swapped-token")
            return found

    swapping = Swapping(seed=7, now=NOW, frozen=True)
    swapping.elsewhere = swapping.add_organization(name="Elsewhere").id
    swapping.add_client(client_id="here", client_secret="s", token="swapped-token")
    reader = swapping.app.test_client()
    bearer = {"Authorization": "Bearer swapped-token"}
    session_of(reader.get(GET, headers=bearer))  # (made for the dev organization's token)
    assert reader.get(GET, headers=bearer).status_code == 404


def test_a_field_changed_outside_the_store_is_seen_by_the_next_read(
        counted: CountingMock, client: FlaskClient) -> None:
    # (a change that drops the session's JSON, as Session.changed() asks, without the
    # store's generation moving)
    read_twice(counted, client)
    session, _ = counted.find_session(DEV_APP, DEV_SESSION)
    session.hostname = "elsewhere.example"
    session.changed()
    assert session_of(client.get(GET, headers=AUTH))["hostname"] == "elsewhere.example"


def test_an_engine_that_derives_otherwise_is_read_as_its_handler_answers() -> None:
    # A kept answer is only ever one the handler would give: with an engine whose derived
    # status differs from the rule's (a broken variant of the contract kit's tests), every
    # read equals a read made with nothing kept.
    variant = IdleBackwards(seed=7, now=NOW, frozen=True)
    reader = variant.app.test_client()
    router = pipeline_of(variant.app).router  # type: ignore[union-attr]
    first = session_of(reader.get(GET, headers=AUTH))
    idle_at = parse_instant(first["lastActiveAt"]) + variant.idle_after
    for instant in (idle_at - timedelta(milliseconds=1), idle_at, idle_at + timedelta(hours=1)):
        variant.set_time(instant)
        served = session_of(reader.get(GET, headers=AUTH))
        router.kept.clear()
        assert served == session_of(reader.get(GET, headers=AUTH)), instant


def test_an_idle_threshold_past_the_last_instant_is_read() -> None:
    far = CountingMock(seed=7, now="8999-01-01T00:00:00Z", frozen=True,
                       idle_after=timedelta(days=365 * 1500))
    reader = far.app.test_client()
    assert session_of(reader.get(GET, headers=AUTH))["derivedStatus"] in ("active", "idle")
