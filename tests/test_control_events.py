"""Lifecycle events: a server-sent event stream a real HTTP client reads, the history, and
the same events from Python."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.clients.control import ControlClient
from kontext_mock.http.streams import StreamPlan, event_stream, open_stream

from .conftest import AUTH, DEV_APP, LiveMock

SESSIONS = f"/api/v1/applications/{DEV_APP}/sessions"


class EventStream:
    """A real HTTP client's view of ``/_mock/events``: opened, subscribed, read line by line."""

    def __init__(self, url: str, **params: Any) -> None:
        self.response = requests.get(f"{url}/_mock/events", params=params, stream=True,
                                     timeout=(5, 10), headers=params.pop("headers", None))
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.lines = self.response.iter_lines(decode_unicode=True)
        assert next(self.lines) == "retry: 1000"
        assert next(self.lines) == ": subscribed"  # from here on nothing is missed

    def events(self) -> Iterator[dict[str, Any]]:
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if "data" in fields:
                    event = orjson.loads(fields["data"])
                    assert event["type"] == fields["event"] and str(event["id"]) == fields["id"]
                    yield event
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.strip()

    def close(self) -> None:
        self.response.close()


def test_a_revoke_all_is_seen_on_the_stream_as_one_disconnect_per_revoked_session(
    live: LiveMock,
) -> None:
    connected = {s["id"] for s in live.mock.list_sessions(DEV_APP, status="all", limit=200)
                 if s["status"] == "active"}
    assert len(connected) >= 5
    stream = EventStream(live.url, types="session.disconnected", limit=len(connected),
                         timeout=10)
    try:
        revoked = live.http.delete(live.url + SESSIONS, headers=AUTH).json()
        assert revoked["disconnectedCount"] == len(connected)
        received = list(stream.events())  # the stream ends after `limit` events
    finally:
        stream.close()
    assert {e["data"]["sessionId"] for e in received} == connected
    assert {(e["type"], e["data"]["reason"]) for e in received} == {
        ("session.disconnected", "revoked")}
    assert {e["data"]["applicationId"] for e in received} == {DEV_APP}


def test_the_stream_carries_the_events_caused_by_moving_the_clock(live: LiveMock) -> None:
    made = live.mock.add_session(lastActiveAt="-1m", tokenExpiresAt="+10m")
    stream = EventStream(live.url, types="session.idle,session.expired", timeout=10)
    try:
        live.http.post(live.url + "/_mock/clock/advance", json={"by": "PT15M"})
        mine = []
        for event in stream.events():
            if event["data"]["sessionId"] == made["id"]:
                mine.append((event["type"], event["time"]))
            if len(mine) == 2:
                break
    finally:
        stream.close()
    assert mine == [("session.idle", "2026-01-01T12:04:00.000Z"),
                    ("session.expired", "2026-01-01T12:10:00.000Z")]


def test_a_client_resumes_after_the_last_event_it_saw(live: LiveMock) -> None:
    live.mock.add_session()
    live.mock.add_session()
    first, second = live.mock.events.since(0)
    stream = EventStream(live.url, headers={"Last-Event-ID": str(first.id)}, limit=1)
    try:
        (replayed,) = list(stream.events())
    finally:
        stream.close()
    assert replayed["id"] == second.id


def test_an_id_from_before_a_restart_replays_everything(live: LiveMock) -> None:
    # the mock restarted (its ids with it) while the client held id 500 of the earlier run
    live.mock.add_session()
    (made,) = live.mock.events.since(0)
    stream = EventStream(live.url, headers={"Last-Event-ID": "500"}, limit=1)
    try:
        (replayed,) = list(stream.events())
    finally:
        stream.close()
    assert replayed["id"] == made.id


def test_the_control_client_tails_events(live: LiveMock) -> None:
    live.mock.add_session()
    events = list(ControlClient(live.url).events(since=0, limit=1))
    assert [e["type"] for e in events] == ["session.created"]


def test_a_stream_ends_after_its_timeout(live: LiveMock) -> None:
    stream = EventStream(live.url, timeout=0.2)
    try:
        assert list(stream.events()) == []
    finally:
        stream.close()


def test_closing_every_subscription_ends_open_streams(mock: KontextMock) -> None:
    # what the pytest plugin does between tests: no stream outlives its test
    stream = event_stream(mock, StreamPlan(), open_stream(mock, StreamPlan()))
    assert next(stream).startswith(b"retry:")  # subscribed
    assert mock.events.subscriber_count == 1
    left = mock.events.subscribe()
    assert mock.events.close_all() == 2 and mock.events.subscriber_count == 0
    assert list(stream) == []  # ends: closing wakes the waiting reader
    mock.add_session()
    assert left.closed and left.get(timeout=0) is None


def test_the_history_is_json_and_filtered(client: FlaskClient, mock: KontextMock) -> None:
    made = mock.add_session()
    mock.revoke_all(DEV_APP)
    history = client.get("/_mock/events/history").json["items"]
    assert history[0]["type"] == "session.created"
    assert history[0]["data"]["sessionId"] == made["id"]
    revoked = client.get("/_mock/events/history?types=session.disconnected").json["items"]
    assert revoked and all(e["data"]["reason"] == "revoked" for e in revoked)
    after = client.get(f"/_mock/events/history?since={history[-1]['id']}").json["items"]
    assert after == []


def test_a_bad_event_filter_is_a_400(client: FlaskClient) -> None:
    assert client.get("/_mock/events?types=session.exploded").status_code == 400
    assert client.get("/_mock/events/history?since=-1").status_code == 400


def test_an_in_process_stream_with_a_limit_ends(client: FlaskClient, mock: KontextMock) -> None:
    mock.add_session()
    answer = client.get("/_mock/events?since=0&limit=1")
    assert answer.status_code == 200
    assert answer.mimetype == "text/event-stream"
    assert b"event: session.created" in answer.get_data()


def test_the_same_events_from_python(mock: KontextMock) -> None:
    with mock.events.subscribed(frozenset({"session.disconnected"})) as subscription:
        made = mock.add_session()
        mock.update_session(made["id"], status="disconnected", disconnectReason="agent")
        event = subscription.get(timeout=1)
    assert event is not None
    assert (event.type, event.data["sessionId"], event.data["reason"]) == (
        "session.disconnected", made["id"], "agent")


@pytest.mark.parametrize("kind", ["session.created", "session.heartbeat"])
def test_agent_side_activity_is_published(client: FlaskClient, kind: str) -> None:
    opened = client.post("/api/v1/agent-sessions", headers=AUTH, json={
        "tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}).json
    client.post(f"/api/v1/agent-sessions/{opened['sessionId']}/heartbeat", headers=AUTH)
    kinds = [e["type"] for e in client.get(f"/_mock/events/history?types={kind}").json["items"]]
    assert kinds == [kind]
