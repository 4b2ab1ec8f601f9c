"""The behaviour model over HTTP: list filters, get, revoke-all, derived status and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from kontext_mock import KontextMock, derived_status, format_instant, parse_instant
from kontext_mock.core.records import (
    CONNECTED,
    DISCONNECTED,
    STATUS_FILTERS,
    Session,
    pick_sessions,
    session_list_json,
)

from .conftest import AUTH, DEV_APP, DEV_SESSION

LIST = f"/api/v1/applications/{DEV_APP}/sessions"


def listed(client: FlaskClient, query: str = "") -> list[dict]:
    response = client.get(f"{LIST}{query}", headers=AUTH)
    assert response.status_code == 200, response.json
    return response.json["items"]


def expected_status(session: dict, now: datetime, idle_after: timedelta) -> str:
    """derivedStatus recomputed from the session's own timestamps, independently of the mock."""
    expires = session["tokenExpiresAt"]
    last = session["lastActiveAt"]
    return derived_status(
        session["status"],
        parse_instant(expires) if expires else None,
        parse_instant(last) if last else None,
        now,
        idle_after,
    )


def test_default_list_is_the_active_filter(client: FlaskClient) -> None:
    default = listed(client)
    assert default == listed(client, "?status=active")
    assert default and {s["derivedStatus"] for s in default} <= {"active", "idle"}


def test_filters_partition_the_sessions(client: FlaskClient) -> None:
    everything = listed(client, "?status=all")
    active = listed(client, "?status=active")
    inactive = listed(client, "?status=inactive")
    assert {s["derivedStatus"] for s in inactive} <= {"expired", "disconnected"}
    assert sorted(s["id"] for s in active + inactive) == sorted(s["id"] for s in everything)
    assert not {s["id"] for s in active} & {s["id"] for s in inactive}
    # the seeded mix has every derived status
    assert {s["derivedStatus"] for s in everything} == {"active", "idle", "expired", "disconnected"}


def test_include_inactive_means_all_unless_status_is_given(client: FlaskClient) -> None:
    assert listed(client, "?includeInactive=true") == listed(client, "?status=all")
    assert listed(client, "?includeInactive=true&status=active") == listed(client, "?status=active")
    assert listed(client, "?includeInactive=false") == listed(client, "?status=active")


def test_limit_is_respected_and_keeps_the_order(client: FlaskClient) -> None:
    everything = listed(client, "?status=all&limit=200")
    for limit in (1, 2, 7, len(everything), 200):
        assert listed(client, f"?status=all&limit={limit}") == everything[:limit]


def test_list_order_is_newest_first_then_id(client: FlaskClient) -> None:
    items = listed(client, "?status=all")
    keys = [(-parse_instant(s["createdAt"]).timestamp(), s["id"]) for s in items]
    assert keys == sorted(keys)


def test_every_listed_session_reads_back_identically(client: FlaskClient) -> None:
    for session in listed(client, "?status=all"):
        response = client.get(f"{LIST}/{session['id']}", headers=AUTH)
        assert response.status_code == 200
        assert response.json == {"session": session}


def test_sessions_are_coherent(client: FlaskClient, mock: KontextMock) -> None:
    now = mock.now()
    for s in listed(client, "?status=all"):
        created, connected, last = (parse_instant(s[k]) for k in ("createdAt", "connectedAt", "lastActiveAt"))
        assert created <= connected <= last <= now
        assert (s["disconnectedAt"] is not None) == (s["status"] == "disconnected")
        if s["disconnectedAt"]:
            assert last <= parse_instant(s["disconnectedAt"]) <= now
        assert s["agentId"] == DEV_APP
        assert s["derivedStatus"] == expected_status(s, now, mock.idle_after)
        if s["clientInfo"] is not None:
            assert s["clientInfo"]["name"]


def test_the_docs_example_session_is_there(client: FlaskClient) -> None:
    response = client.get(f"{LIST}/{DEV_SESSION}", headers=AUTH)
    assert response.status_code == 200
    assert response.json["session"]["derivedStatus"] == "active"


def test_moving_the_clock_changes_every_answer_consistently(
    client: FlaskClient, mock: KontextMock
) -> None:
    before = {s["id"]: s for s in listed(client, "?status=all")}
    for step in ("PT4M", "PT2M", "PT30M", "PT2H"):
        mock.advance(step)
        now = mock.now()
        after = listed(client, "?status=all")
        assert {s["id"] for s in after} == set(before)
        for s in after:
            assert s["derivedStatus"] == expected_status(s, now, mock.idle_after)
        for name, statuses in STATUS_FILTERS.items():
            ids = {s["id"] for s in listed(client, f"?status={name}")}
            assert ids == {s["id"] for s in after if s["derivedStatus"] in statuses}


def test_active_sessions_go_idle_after_the_threshold_then_expire(
    client: FlaskClient, mock: KontextMock
) -> None:
    session = client.get(f"{LIST}/{DEV_SESSION}", headers=AUTH).json["session"]
    last = parse_instant(session["lastActiveAt"])
    expires = parse_instant(session["tokenExpiresAt"])
    mock.set_time(last + mock.idle_after - timedelta(milliseconds=1))
    assert client.get(f"{LIST}/{DEV_SESSION}", headers=AUTH).json["session"]["derivedStatus"] == "active"
    mock.set_time(last + mock.idle_after)
    assert client.get(f"{LIST}/{DEV_SESSION}", headers=AUTH).json["session"]["derivedStatus"] == "idle"
    assert DEV_SESSION in {s["id"] for s in listed(client, "?status=active")}
    mock.set_time(expires)
    assert client.get(f"{LIST}/{DEV_SESSION}", headers=AUTH).json["session"]["derivedStatus"] == "expired"
    assert DEV_SESSION not in {s["id"] for s in listed(client, "?status=active")}
    assert DEV_SESSION in {s["id"] for s in listed(client, "?status=inactive")}


def test_idle_threshold_is_configurable() -> None:
    mock = KontextMock(seed=7, now="2026-01-01T12:00:00Z", frozen=True, idle_after="30s")
    session = mock.get_session(DEV_APP, DEV_SESSION)
    mock.set_time(parse_instant(session["lastActiveAt"]) + timedelta(seconds=30))
    assert mock.get_session(DEV_APP, DEV_SESSION)["derivedStatus"] == "idle"


def test_revoke_all_disconnects_exactly_the_connected_sessions(
    client: FlaskClient, mock: KontextMock
) -> None:
    before = listed(client, "?status=all")
    connected = {s["id"] for s in before if s["status"] == "active"}
    assert any(s["derivedStatus"] == "expired" for s in before if s["id"] in connected)
    response = client.delete(LIST, headers=AUTH)
    assert response.status_code == 200
    assert response.json == {"success": True, "disconnectedCount": len(connected)}
    after = {s["id"]: s for s in listed(client, "?status=all")}
    now = mock.now()
    for s in before:
        got = after[s["id"]]
        assert got["status"] == "disconnected" and got["derivedStatus"] == "disconnected"
        if s["id"] in connected:
            assert parse_instant(got["disconnectedAt"]) == now
        else:
            assert got == s  # already disconnected: untouched
    assert listed(client) == []
    second = client.delete(LIST, headers=AUTH)
    assert second.json == {"success": True, "disconnectedCount": 0}


def test_revoke_all_touches_only_its_application(client: FlaskClient, mock: KontextMock) -> None:
    foreign = [a for a in mock.application_ids() if a != DEV_APP]
    snapshot = {a: mock.list_sessions(a, status="all") for a in foreign}
    assert foreign and all(snapshot.values())
    client.delete(LIST, headers=AUTH)
    assert {a: mock.list_sessions(a, status="all") for a in foreign} == snapshot


def test_revoked_agent_learns_it_on_its_next_heartbeat(client: FlaskClient, mock: KontextMock) -> None:
    opened = client.post(
        "/api/v1/agent-sessions",
        json={"tokenIdentifier": "tok_1", "authenticatedUserId": "user_1",
              "clientSessionId": "c-1", "hostname": "ada-mbp",
              "clientInfo": {"name": "claude-code", "version": "2.0.14"}},
        headers=AUTH,
    )
    assert opened.status_code == 201
    sid = opened.json["sessionId"]
    beat = client.post(f"/api/v1/agent-sessions/{sid}/heartbeat", headers=AUTH)
    assert beat.status_code == 200 and beat.json["derivedStatus"] == "active"
    with mock.events.subscribed() as events:
        client.delete(LIST, headers=AUTH)
        revoked = [e for e in iter(lambda: events.get(0), None) if e.type == "session.disconnected"]
    assert sid in {e.data["sessionId"] for e in revoked}
    assert {e.data["reason"] for e in revoked} == {"revoked"}
    gone = client.post(f"/api/v1/agent-sessions/{sid}/heartbeat", headers=AUTH)
    assert gone.status_code == 409
    assert gone.json["error"] == "session_disconnected" and gone.json["reason"] == "revoked"


def test_agent_session_lifecycle(client: FlaskClient, mock: KontextMock) -> None:
    body = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
    sid = client.post("/api/v1/agent-sessions", json=body,
                      headers={**AUTH, "User-Agent": "kontext-cli/0.6.1 (linux; x64)"}).json["sessionId"]
    session = client.get(f"{LIST}/{sid}", headers=AUTH).json["session"]
    assert session["userAgent"] == "kontext-cli/0.6.1 (linux; x64)"
    assert session["createdAt"] == session["connectedAt"] == session["lastActiveAt"]
    mock.advance("45s")
    client.post(f"/api/v1/agent-sessions/{sid}/heartbeat", headers=AUTH)
    session = client.get(f"{LIST}/{sid}", headers=AUTH).json["session"]
    assert parse_instant(session["lastActiveAt"]) == mock.now()
    done = client.post(f"/api/v1/agent-sessions/{sid}/disconnect", headers=AUTH)
    assert done.status_code == 200 and done.json["status"] == "disconnected"
    again = client.post(f"/api/v1/agent-sessions/{sid}/disconnect", headers=AUTH)
    assert again.status_code == 200 and again.json["disconnectedAt"] == done.json["disconnectedAt"]
    gone = client.post(f"/api/v1/agent-sessions/{sid}/heartbeat", headers=AUTH)
    assert gone.status_code == 409 and gone.json["reason"] == "agent"


def test_heartbeat_after_token_expiry_says_expired(client: FlaskClient, mock: KontextMock) -> None:
    body = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
    sid = client.post("/api/v1/agent-sessions", json=body, headers=AUTH).json["sessionId"]
    mock.advance(mock.config.session_token_ttl)
    gone = client.post(f"/api/v1/agent-sessions/{sid}/heartbeat", headers=AUTH)
    assert gone.status_code == 409
    assert (gone.json["error"], gone.json["reason"]) == ("session_expired", "expired")


def test_applications_are_listed_a_page_at_a_time_for_the_token_s_organization(
    client: FlaskClient, mock: KontextMock,
) -> None:
    made = {mock.add_application(name=f"app {i}").id for i in range(3)}
    elsewhere = mock.add_application(mock.add_organization().id).id
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = client.get("/api/v1/applications", query_string=query, headers=AUTH)
        assert answer.status_code == 200
        seen += [a["id"] for a in answer.json["items"]]
        pages += 1
        cursor = answer.json.get("nextCursor")
        if cursor is None:
            break
    assert pages == 2 and len(seen) == len(set(seen)) == 4
    assert set(seen) == made | {DEV_APP} and elsewhere not in seen


def test_open_session_from_python_makes_up_what_the_agent_would_send(mock: KontextMock) -> None:
    first, second = mock.open_session(), mock.open_session(hostname="alice-mbp")
    for opened in (first, second):
        assert opened.application_id == DEV_APP and opened.status == "active"
        assert opened.token_identifier and opened.authenticated_user_id
        assert opened.client_session_id
    assert first.client_session_id != second.client_session_id
    assert second.name == "mcp-client@alice-mbp"
    given = mock.open_session(DEV_APP, token_identifier="tok_1", authenticated_user_id="u1",
                              client_session_id="c1")
    record = next(s for s in mock.export_state()["sessions"] if s["id"] == given.id)
    assert (record["tokenIdentifier"], record["authenticatedUserId"],
            record["clientSessionId"]) == ("tok_1", "u1", "c1")


def test_the_store_keeps_list_order_whichever_way_sessions_arrive(mock: KontextMock) -> None:
    # (kept oldest first inside, so that a new session is appended: read newest first)
    for _ in range(3):
        mock.open_session(DEV_APP)
    some = [s.id for s in mock.store.application_sessions(DEV_APP)]
    mock.update_session(some[0], createdAt=format_instant(mock.now() - timedelta(days=400)))
    created = mock.store.sessions[some[1]].created_at
    mock.update_session(some[1], createdAt=format_instant(created - timedelta(days=2)))
    view = mock.store.application_sessions(DEV_APP)
    ordered = sorted(view, key=lambda s: s.sort_key)
    assert list(view) == ordered
    assert len(view) == len(ordered) and view[0] is ordered[0] and view[-1] is ordered[-1]
    assert view[1:3] == ordered[1:3]
    assert view[-1].id == some[0]
    with pytest.raises(IndexError):
        view[len(ordered)]


def test_a_list_is_made_once_until_something_it_shows_changes(
    client: FlaskClient, mock: KontextMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []

    def counted(*args: Any) -> Any:
        made.append(args)
        return pick_sessions(*args)

    monkeypatch.setattr("kontext_mock.core.sessions.pick_sessions", counted)
    first = listed(client, "?status=all")
    assert listed(client, "?status=all") == first and len(made) == 1
    scanned = mock.store.sessions_scanned
    listed(client, "?status=all")
    assert mock.store.sessions_scanned > scanned  # (a list read again still counts its scan)
    # a heartbeat changes a session: listed anew, with its new lastActiveAt
    mock.advance("PT1S")
    mock.heartbeat(DEV_APP, DEV_SESSION)
    again = {s["id"]: s for s in listed(client, "?status=all")}
    assert len(made) == 2
    assert again[DEV_SESSION]["lastActiveAt"] == format_instant(mock.now())
    # time alone: a session goes idle at its threshold, and the list says so
    last = parse_instant(again[DEV_SESSION]["lastActiveAt"])
    mock.set_time(last + mock.idle_after - timedelta(milliseconds=1))
    assert {s["id"]: s for s in listed(client, "?status=all")}[DEV_SESSION]["derivedStatus"] == "active"
    mock.set_time(last + mock.idle_after)
    assert {s["id"]: s for s in listed(client, "?status=all")}[DEV_SESSION]["derivedStatus"] == "idle"
    # and back: the clock set before the list was made
    mock.set_time(last + mock.idle_after - timedelta(minutes=1))
    assert {s["id"]: s for s in listed(client, "?status=all")}[DEV_SESSION]["derivedStatus"] == "active"


def test_a_listed_page_changed_by_its_reader_changes_no_other_reader(mock: KontextMock) -> None:
    rows = mock.select_sessions(DEV_APP, "all", 100)
    body = session_list_json(rows)
    rows.reverse()
    assert session_list_json(rows) != body
    again = mock.select_sessions(DEV_APP, "all", 100)
    assert list(again) == list(reversed(rows))
    assert session_list_json(again) == body


_BASE = datetime(2026, 1, 1, tzinfo=UTC)
_OFFSETS = st.none() | st.integers(-100, 100).map(lambda s: _BASE + timedelta(microseconds=s))


@settings(max_examples=600, deadline=None)
@given(status=st.sampled_from([CONNECTED, DISCONNECTED]), expires=_OFFSETS,
       active=_OFFSETS, idle=st.integers(0, 60).map(lambda s: timedelta(microseconds=s)),
       at=st.integers(-200, 200).map(lambda s: _BASE + timedelta(microseconds=s)))
def test_a_derived_span_holds_exactly_the_instants_of_its_status(
        status: Any, expires: datetime | None, active: datetime | None, idle: timedelta,
        at: datetime) -> None:
    # Session.derived_span reads the derivedStatus rule the other way round (kept answers
    # hold over it): an instant is in a status's span exactly when the rule gives it there.
    session = Session(id="s", application_id="a", organization_id="o", name="n",
                      status=status, created_at=_BASE, connected_at=_BASE,
                      last_active_at=active, token_expires_at=expires)
    for derived in ("active", "idle", "expired", "disconnected"):
        since, until = session.derived_span(derived, idle)
        within = (since is None or since <= at) and (until is None or at < until)
        assert within == (session.derived_status(at, idle) == derived), (derived, since, until)


def test_a_derived_span_past_the_last_instant_is_for_ever() -> None:
    # an idle threshold beyond datetime's range: never idle, not an error
    session = Session(id="s", application_id="a", organization_id="o", name="n",
                      status=CONNECTED, created_at=_BASE, connected_at=_BASE,
                      last_active_at=datetime(8999, 1, 1, tzinfo=UTC), token_expires_at=None)
    huge = timedelta(days=365 * 1500)
    latest = datetime(9999, 12, 31, tzinfo=UTC)
    assert session.derived_status(latest, huge) == "active"
    assert session.derived_span("active", huge) == (None, None)
    since, until = session.derived_span("idle", huge)
    assert since is not None and until is not None and since > until  # (no instant)
