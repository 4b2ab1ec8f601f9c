"""The clock through the control plane and in Python: read, set, advance, freeze; moving
it changes every answer as the derived-status rules say, and tells listeners."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from kontext_mock import ClockError, DurationError, KontextMock

from .conftest import AUTH, DEV_APP, NOW

T0 = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
IDLE_AFTER = timedelta(minutes=5)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_status(record: dict[str, Any], now: datetime) -> str:
    """derivedStatus from a session's stored facts, written here apart from the mock's."""
    if record["status"] == "disconnected":
        return "disconnected"
    expires = record["tokenExpiresAt"]
    if expires is not None and at(expires) <= now:
        return "expired"
    last = record["lastActiveAt"]
    if last is None or now - at(last) >= IDLE_AFTER:
        return "idle"
    return "active"


FILTERS = {
    "active": {"active", "idle"},
    "inactive": {"expired", "disconnected"},
    "all": {"active", "idle", "expired", "disconnected"},
}


def expected_lists(state: dict[str, Any], now: datetime) -> dict[str, list[tuple[str, str]]]:
    """What each status filter of the dev application lists at ``now``, in list order."""
    records = [r for r in state["sessions"] if r["applicationId"] == DEV_APP]
    records.sort(key=lambda r: r["id"])
    records.sort(key=lambda r: at(r["createdAt"]), reverse=True)
    derived = [(r["id"], expected_status(r, now)) for r in records]
    return {name: [(i, d) for i, d in derived if d in wanted] for name, wanted in FILTERS.items()}


def listed(client: FlaskClient, status: str) -> list[tuple[str, str]]:
    answer = client.get(f"/api/v1/applications/{DEV_APP}/sessions?status={status}&limit=200",
                        headers=AUTH)
    assert answer.status_code == 200
    return [(s["id"], s["derivedStatus"]) for s in answer.json["items"]]


# -- reading and moving ------------------------------------------------------------------------


def test_the_clock_reads_advances_sets_freezes_and_unfreezes_over_http(client: FlaskClient) -> None:
    assert client.get("/_mock/clock").json == {"now": "2026-01-01T12:00:00.000Z", "frozen": True}
    assert client.post("/_mock/clock/advance", json={"by": "PT10M"}).json["now"] == (
        "2026-01-01T12:10:00.000Z")
    assert client.post("/_mock/clock/advance", json={"by": 90}).json["now"] == (
        "2026-01-01T12:11:30.000Z")
    assert client.post("/_mock/clock/advance", json={"by": "1h30m"}).json["now"] == (
        "2026-01-01T13:41:30.000Z")
    answer = client.post("/_mock/clock/set", json={"to": "2025-06-01T08:00:00+02:00"})
    assert answer.json == {"now": "2025-06-01T06:00:00.000Z", "frozen": True}
    assert client.post("/_mock/clock/unfreeze").json["frozen"] is False
    assert client.get("/_mock/clock").json["frozen"] is False
    frozen = client.post("/_mock/clock/freeze").json
    assert frozen["frozen"] is True
    assert at(frozen["now"]) >= at("2025-06-01T06:00:00Z")
    answer = client.post("/_mock/clock/set", json={"to": NOW, "frozen": False})
    assert answer.json["frozen"] is False


def test_the_clock_moves_the_same_way_in_python(mock: KontextMock) -> None:
    assert mock.now() == T0
    assert mock.advance("PT10M") == T0 + timedelta(minutes=10)
    assert mock.advance(30) == T0 + timedelta(minutes=10, seconds=30)
    assert mock.advance(timedelta(hours=1)) == T0 + timedelta(hours=1, minutes=10, seconds=30)
    assert mock.set_time("2026-01-01T12:00:00Z") == T0
    mock.unfreeze()
    assert not mock.clock.frozen
    mock.freeze()
    assert mock.clock_state() == {"now": mock.clock_state()["now"], "frozen": True}


# -- the rules, checked from the outside ------------------------------------------------------


def test_advancing_ten_minutes_on_mixed_changes_the_lists_as_the_rules_say(
    client: FlaskClient,
) -> None:
    assert client.post("/_mock/scenarios/load", json={"name": "mixed"}).status_code == 200
    state = client.get("/_mock/state").json
    before = at(state["clock"]["now"])
    expected_before = expected_lists(state, before)
    for name in FILTERS:
        assert listed(client, name) == expected_before[name]

    after = at(client.post("/_mock/clock/advance", json={"by": "PT10M"}).json["now"])
    assert after == before + timedelta(minutes=10)
    expected_after = expected_lists(state, after)
    for name in FILTERS:
        assert listed(client, name) == expected_after[name], name

    # Moving the clock moved sessions between the partitions, not just their labels.
    changed = {i for (i, d) in expected_after["all"]} - {
        i for (i, d) in expected_after["all"] if (i, d) in expected_before["all"]}
    assert len(changed) >= 3
    assert expected_after["active"] != expected_before["active"]
    assert len(expected_after["inactive"]) > len(expected_before["inactive"])


def test_advancing_ten_minutes_on_mixed_in_python_agrees(mock: KontextMock) -> None:
    mock.load_scenario("mixed")
    state = mock.export_state()
    mock.advance("PT10M")
    expected = expected_lists(state, T0 + timedelta(minutes=10))
    for name in FILTERS:
        got = [(s["id"], s["derivedStatus"])
               for s in mock.list_sessions(DEV_APP, status=name, limit=200)]
        assert got == expected[name], name


# -- events caused by moving the clock --------------------------------------------------------


def test_moving_the_clock_publishes_idle_and_expired_at_the_instant_they_happen(
    client: FlaskClient,
) -> None:
    made = client.post("/_mock/sessions", json={
        "lastActiveAt": "-1m", "tokenExpiresAt": "+20m"}).json["session"]
    client.post("/_mock/clock/advance", json={"by": "30m"})
    history = client.get("/_mock/events/history?types=session.idle,session.expired").json
    mine = [(e["type"], e["time"]) for e in history["items"]
            if e["data"]["sessionId"] == made["id"]]
    assert mine == [("session.idle", "2026-01-01T12:04:00.000Z"),
                    ("session.expired", "2026-01-01T12:20:00.000Z")]


def test_events_of_a_clock_move_come_in_time_order_across_sessions(mock: KontextMock) -> None:
    late = mock.add_session(lastActiveAt="-10s", tokenExpiresAt="+3m")
    early = mock.add_session(lastActiveAt="-4m")
    mock.advance("10m")
    moved = [(e.type, e.data["sessionId"]) for e in mock.events.since(0)
             if e.type in ("session.idle", "session.expired")
             and e.data["sessionId"] in (late["id"], early["id"])]
    assert moved == [("session.idle", early["id"]), ("session.expired", late["id"])]
    times = [e.time for e in mock.events.since(0) if e.type != "session.created"]
    assert times == sorted(times)


def test_setting_the_clock_back_undoes_nothing_and_publishes_nothing(mock: KontextMock) -> None:
    made = mock.add_session(lastActiveAt="-1m")
    mock.advance("10m")
    count = len(mock.events.history)
    mock.set_time(T0 - timedelta(hours=1))
    assert len(mock.events.history) == count
    assert mock.get_session(DEV_APP, made["id"])["lastActiveAt"] == made["lastActiveAt"]


# -- bad input ---------------------------------------------------------------------------------


def test_the_clock_is_set_relative_to_its_now_as_bodies_allow(client: FlaskClient) -> None:
    assert client.post("/_mock/clock/set", json={"to": "+1h30m"}).json["now"] == (
        "2026-01-01T13:30:00.000Z")
    assert client.post("/_mock/clock/set", json={"to": "-PT10M"}).json["now"] == (
        "2026-01-01T13:20:00.000Z")
    assert client.post("/_mock/clock/set", json={"to": "now"}).json["now"] == (
        "2026-01-01T13:20:00.000Z")


@pytest.mark.parametrize(("by", "message"), [
    ("-5m", "by: duration must not be negative: '-5m'"),
    (-300, "by: duration must not be negative: -300"),
    ("soon", "by: not a duration: 'soon' (use seconds like 90, ISO 8601 like PT10M, or 1h30m)"),
    ("PT", "by: not a duration: 'PT'"),
    ("P", "by: not a duration: 'P'"),
    ("1h30", "by: not a duration: '1h30'"),
    (10**12, "by: duration out of range: 1000000000000"),
])
def test_a_duration_that_does_not_parse_is_a_422_naming_by_and_changes_nothing(
    client: FlaskClient, by: object, message: str,
) -> None:
    before = client.get("/_mock/state").json
    answer = client.post("/_mock/clock/advance", json={"by": by})
    assert (answer.status_code, answer.json["error"]) == (422, "unprocessable")
    assert answer.json["message"].startswith(message)
    assert client.get("/_mock/state").json == before


@pytest.mark.parametrize("body", [{}, {"by": "5m", "extra": 1}, {"by": True}, {"by": "9" * 65}])
def test_a_body_off_its_schema_is_a_400_and_changes_nothing(
    client: FlaskClient, body: dict[str, Any],
) -> None:
    before = client.get("/_mock/state").json
    answer = client.post("/_mock/clock/advance", json=body)
    assert (answer.status_code, answer.json["error"]) == (400, "validation_error")
    assert client.get("/_mock/state").json == before


@pytest.mark.parametrize(("to", "message"), [
    ("not a time", "to: not an ISO 8601 instant: 'not a time'"),
    ("2026-13-01T00:00:00Z", "to: not an ISO 8601 instant"),
    ("0001-01-01T00:00:00+01:00", "to: instant out of range"),
    ("9999-12-31T23:59:59Z", "to: 9999-12-31T23:59:59.000Z is out of range (1971 to 9000)"),
    ("+10000000d", "to: duration out of range"),
    ("soon", "to: not an ISO 8601 instant: 'soon'"),
])
def test_an_instant_that_does_not_parse_is_a_422_naming_to_and_changes_nothing(
    client: FlaskClient, to: str, message: str,
) -> None:
    before = client.get("/_mock/clock").json
    answer = client.post("/_mock/clock/set", json={"to": to, "frozen": False})
    assert (answer.status_code, answer.json["error"]) == (422, "unprocessable")
    assert answer.json["message"].startswith(message)
    assert client.get("/_mock/clock").json == before


def test_bad_durations_and_instants_raise_in_python(mock: KontextMock) -> None:
    with pytest.raises(DurationError, match="negative"):
        mock.advance("-5m")
    with pytest.raises(DurationError, match="not a duration"):
        mock.advance("soon")
    with pytest.raises(ClockError, match="out of range"):
        mock.set_time("0001-01-01T00:00:00Z")
    assert mock.now() == T0
