"""Lifecycles: a session's scripted future plays as the clock moves, deterministically,
and the agent endpoints act on the same state."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock

from .conftest import AUTH, DEV_APP, DEV_SESSION, NOW

T0 = datetime.fromisoformat(NOW.replace("Z", "+00:00"))


def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def sample_every_minute(client: FlaskClient, session_id: str, minutes: int) -> list[dict[str, Any]]:
    """The session as the public API shows it at each virtual minute 0..minutes."""
    seen = []
    for minute in range(minutes + 1):
        if minute:
            assert client.post("/_mock/clock/advance", json={"by": "PT1M"}).status_code == 200
        answer = client.get(f"/api/v1/applications/{DEV_APP}/sessions/{session_id}", headers=AUTH)
        assert answer.status_code == 200
        seen.append(answer.json["session"])
    return seen


def test_a_seeded_session_heartbeats_for_twenty_minutes_then_disconnects(
    client: FlaskClient,
) -> None:
    # A seeded, connected session whose token outlives the half hour sampled.
    listed = client.get(f"/api/v1/applications/{DEV_APP}/sessions?limit=200", headers=AUTH)
    chosen = next(s["id"] for s in listed.json["items"] if s["derivedStatus"] == "active"
                  and s["tokenExpiresAt"] > iso(T0 + timedelta(minutes=30)))
    answer = client.patch(f"/_mock/sessions/{chosen}", json={
        "lifecycle": {"heartbeatEvery": "60s", "until": "+20m", "then": "disconnect"}})
    assert answer.status_code == 200
    assert answer.json["lifecycle"] == {
        "heartbeatEvery": 60.0, "nextHeartbeatAt": iso(T0 + timedelta(minutes=1)),
        "until": iso(T0 + timedelta(minutes=20)), "then": "disconnect", "reason": "agent"}
    seeded_last = answer.json["session"]["lastActiveAt"]

    seen = sample_every_minute(client, chosen, 25)

    assert seen[0]["derivedStatus"] == "active"
    assert seen[0]["lastActiveAt"] == seeded_last
    for minute in range(1, 20):
        assert seen[minute]["derivedStatus"] == "active", minute
        assert seen[minute]["status"] == "active"
        assert seen[minute]["lastActiveAt"] == iso(T0 + timedelta(minutes=minute))
        assert seen[minute]["disconnectedAt"] is None
    for minute in range(20, 26):
        assert seen[minute]["derivedStatus"] == "disconnected", minute
        assert seen[minute]["lastActiveAt"] == iso(T0 + timedelta(minutes=20))
        assert seen[minute]["disconnectedAt"] == iso(T0 + timedelta(minutes=20))

    events = client.get("/_mock/events/history").json["items"]
    mine = [e for e in events if e["data"]["sessionId"] == chosen]
    assert [e["type"] for e in mine] == ["session.heartbeat"] * 20 + ["session.disconnected"]
    assert mine[-1]["data"]["reason"] == "agent"
    assert client.get(f"/_mock/sessions/{chosen}").json["lifecycle"] is None


def test_a_lifecycle_plays_the_same_in_python_whatever_the_steps_of_the_clock(
    mock: KontextMock,
) -> None:
    made = mock.add_session(lifecycle={"until": "+20m", "then": "disconnect",
                                       "reason": "timeout"})
    mock.advance("7m")
    assert mock.get_session(DEV_APP, made["id"])["lastActiveAt"] == iso(T0 + timedelta(minutes=7))
    mock.advance("2h")  # one big step plays the same steps as many small ones
    after = mock.get_session(DEV_APP, made["id"])
    assert after["derivedStatus"] == "disconnected"
    assert after["disconnectedAt"] == iso(T0 + timedelta(minutes=20))
    assert mock.session_detail(made["id"])["disconnectReason"] == "timeout"


def test_a_lifecycle_can_end_in_a_token_expiry_or_in_silence(mock: KontextMock) -> None:
    expiring = mock.add_session(lifecycle={"heartbeatEvery": "30s", "until": "+10m",
                                           "then": "expire"})
    quiet = mock.add_session(lifecycle={"until": "+10m", "then": "idle"})
    mock.advance("30m")
    assert mock.get_session(DEV_APP, expiring["id"])["derivedStatus"] == "expired"
    assert mock.get_session(DEV_APP, expiring["id"])["tokenExpiresAt"] == iso(
        T0 + timedelta(minutes=10))
    assert mock.get_session(DEV_APP, quiet["id"])["derivedStatus"] == "idle"
    events = {(e.type, e.data["sessionId"]): e.time for e in mock.events.since(0)}
    assert events[("session.expired", expiring["id"])] == T0 + timedelta(minutes=10)
    assert events[("session.idle", quiet["id"])] == T0 + timedelta(minutes=15)


def test_a_revoke_ends_the_script_and_heartbeats_stop(client: FlaskClient) -> None:
    made = client.post("/_mock/sessions", json={
        "lifecycle": {"until": "+1h", "then": "idle"}}).json["session"]
    client.post("/_mock/clock/advance", json={"by": "5m"})
    assert client.delete(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH).status_code == 200
    client.post("/_mock/clock/advance", json={"by": "30m"})
    after = client.get(f"/_mock/sessions/{made['id']}").json
    assert after["session"]["lastActiveAt"] == iso(T0 + timedelta(minutes=5))
    assert after["disconnectReason"] == "revoked"
    assert after["lifecycle"] is None


def test_agent_heartbeats_and_disconnects_act_on_the_same_state(client: FlaskClient) -> None:
    opened = client.post("/api/v1/agent-sessions", headers=AUTH, json={
        "tokenIdentifier": "tok_1", "authenticatedUserId": "user_1", "clientSessionId": "c-1",
        "hostname": "alice-mbp.local", "clientInfo": {"name": "claude-code", "version": "2.1.4"}})
    assert opened.status_code == 201
    session_id = opened.json["sessionId"]
    scripted = client.patch(f"/_mock/sessions/{session_id}",
                            json={"lifecycle": {"until": "+30m", "then": "idle"}})
    assert scripted.json["lifecycle"]["until"] == iso(T0 + timedelta(minutes=30))

    client.post("/_mock/clock/advance", json={"by": "90s"})
    beat = client.post(f"/api/v1/agent-sessions/{session_id}/heartbeat", headers=AUTH)
    assert beat.status_code == 200
    assert beat.json["lastActiveAt"] == iso(T0 + timedelta(seconds=90))

    gone = client.post(f"/api/v1/agent-sessions/{session_id}/disconnect", headers=AUTH)
    assert gone.json["status"] == "disconnected"
    client.post("/_mock/clock/advance", json={"by": "10m"})
    detail = client.get(f"/_mock/sessions/{session_id}").json
    assert detail["session"]["lastActiveAt"] == iso(T0 + timedelta(seconds=90))
    assert detail["lifecycle"] is None
    kinds = [e["type"] for e in client.get("/_mock/events/history").json["items"]
             if e["data"]["sessionId"] == session_id]
    # the script's heartbeat at 60 s, the agent's own at 90 s, then the agent's disconnect
    assert kinds == ["session.created", "session.heartbeat", "session.heartbeat",
                     "session.disconnected"]


def test_the_same_seed_and_clock_moves_give_the_same_events_and_state() -> None:
    def run() -> tuple[bytes, bytes]:
        mock = KontextMock(seed=3, now=NOW, frozen=True)
        mock.load_scenario("revoke-in-progress")
        mock.add_session(lifecycle={"heartbeatEvery": "45s", "until": "+17m", "then": "expire"})
        for step in ("20s", "1m", "5m", "30m"):
            mock.advance(step)
        events = [e.to_dict() for e in mock.events.since(0)]
        return orjson.dumps(events), orjson.dumps(mock.export_state())

    assert run() == run()


def test_the_revoke_in_progress_scenario_reaches_its_stragglers(mock: KontextMock) -> None:
    mock.load_scenario("revoke-in-progress")
    connected = mock.list_sessions(DEV_APP, status="active")
    assert len(connected) == 6
    mock.advance("2m")
    revoked = [e for e in mock.events.since(0)
               if e.type == "session.disconnected" and e.data["reason"] == "revoked"]
    assert len(revoked) == 4
    assert len(mock.list_sessions(DEV_APP, status="active")) == 2
    assert mock.revoke_all(DEV_APP) == 2


@pytest.mark.parametrize(("lifecycle", "field"), [
    ({"until": "-1m"}, "until"),
    ({"until": "+10m", "heartbeatEvery": "0.5s"}, "heartbeatEvery"),
    ({"until": "+1000d", "heartbeatEvery": "1s"}, "until"),
])
def test_an_impossible_lifecycle_is_a_422_and_changes_nothing(
    client: FlaskClient, lifecycle: dict[str, Any], field: str,
) -> None:
    before = client.get("/_mock/state").json
    answer = client.patch(f"/_mock/sessions/{DEV_SESSION}", json={"lifecycle": lifecycle})
    assert answer.status_code == 422
    assert answer.json["details"][0]["field"] == f"lifecycle.{field}"
    assert client.get("/_mock/state").json == before


def test_an_unknown_lifecycle_field_is_a_400(client: FlaskClient) -> None:
    answer = client.patch(f"/_mock/sessions/{DEV_SESSION}",
                          json={"lifecycle": {"until": "+1m", "after": "disconnect"}})
    assert answer.status_code == 400
    assert answer.json["error"] == "validation_error"


def test_with_a_running_clock_scripts_play_as_real_time_passes(mock: KontextMock) -> None:
    made = mock.add_session(lifecycle={"heartbeatEvery": "1s", "until": "+1.2s",
                                       "then": "disconnect"})
    mock.unfreeze()
    client = mock.app.test_client()
    url = f"/api/v1/applications/{DEV_APP}/sessions/{made['id']}"
    deadline = time.monotonic() + 30
    # no clock move: public requests themselves play what is due as real time passes
    while client.get(url, headers=AUTH).json["session"]["derivedStatus"] != "disconnected":
        assert time.monotonic() < deadline, "the scripted disconnect never played"
        time.sleep(0.05)
    kinds = [e.type for e in mock.events.since(0) if e.data["sessionId"] == made["id"]]
    assert kinds == ["session.created", "session.heartbeat", "session.disconnected"]
