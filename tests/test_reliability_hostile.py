"""The mock tried as a hostile client would: it cannot be poisoned, hung or made to run
a request nobody waits for, and every way of making a session stops at the cap.

One test (or a few) per finding of the serving review: deep JSON, event streams,
ghost writes, slow and idle clients, the session cap, and the smaller ones. Tests wait
for conditions, never for wall-clock margins; the timings (how fast a new client is
answered beside 600 hostile connections, a stream's end after its client leaves) are
measured by the benchmark (``bench/hostile.py``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.core.fields import MAX_STORED_DEPTH
from kontext_mock.core.nesting import MAX_JSON_DEPTH
from kontext_mock.http.serve import RunningServer, start
from kontext_mock.statefile import StateFile, read_state_file

from .conftest import AUTH, DEV_APP, NOW, LiveMock
from .serving import HeldLock, serve_process, wait_until

AGENT = "/api/v1/agent-sessions"
LIST = f"/api/v1/applications/{DEV_APP}/sessions"
AGENT_BODY = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def raw_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def poison(depth: int) -> bytes:
    """An agent-session body whose clientInfo holds an array nested ``depth`` levels."""
    return orjson.dumps(AGENT_BODY)[:-1] + b',"clientInfo":{"name":"x","deep":' + raw_json(depth) + b"}}"


# -- 1. poison input -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 1000, 1024, 5000])
def test_a_body_nested_past_the_limit_is_400_on_every_route(live: LiveMock, depth: int) -> None:
    before = live.mock.export_state()
    body = poison(depth)
    for path in (AGENT, "/_mock/sessions", "/_mock/state", "/_mock/faults"):
        method = "PUT" if path == "/_mock/state" else "POST"
        response = live.http.request(method, f"{live.url}{path}", data=body, headers={
            **AUTH, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 400, (path, response.text[:200])
        assert f"deeper than {MAX_JSON_DEPTH} levels" in response.text
    assert live.mock.export_state() == before  # refused: nothing changed


def test_after_a_refused_poison_body_everything_still_answers(live: LiveMock) -> None:
    assert live.http.post(f"{live.url}{AGENT}", data=poison(300), headers={
        **AUTH, "Content-Type": "application/json"}, timeout=30).status_code == 400
    for status in ("active", "inactive", "all"):
        assert live.http.get(f"{live.url}{LIST}?status={status}", headers=AUTH,
                             timeout=30).status_code == 200
    assert live.http.get(f"{live.url}/_mock/state", timeout=30).status_code == 200
    journal = live.http.get(f"{live.url}/_mock/journal", timeout=30)
    assert journal.status_code == 200
    refused = [e for e in journal.json()["items"] if e["method"] == "POST"][-1]
    assert refused["status"] == 400 and isinstance(refused["body"], str)  # shown as text


def test_client_info_deeper_than_a_stored_value_may_be_is_refused_everywhere(
    live: LiveMock,
) -> None:
    # Under the body's limit, over what a stored value may nest: every document holding it
    # (a list, a state export, the state file) must stay JSON the mock reads back.
    deep = {"name": "x", "deep": nested(MAX_STORED_DEPTH + 1)}
    before = live.mock.export_state()
    agent = live.http.post(f"{live.url}{AGENT}", json={**AGENT_BODY, "clientInfo": deep},
                           headers=AUTH, timeout=30)
    assert agent.status_code == 400 and agent.json()["details"][0]["field"] == "clientInfo"
    control = live.http.post(f"{live.url}/_mock/sessions", json={"clientInfo": deep}, timeout=30)
    assert control.status_code == 422 and "clientInfo" in control.json()["message"]
    scenario = ("description: deep\norganizations:\n  - dev: true\n    applications:\n"
                "      - dev: true\n        sessions:\n          - clientInfo: "
                + orjson.dumps(deep).decode())
    loaded = live.http.post(f"{live.url}/_mock/scenarios/load", json={"yaml": scenario}, timeout=30)
    assert loaded.status_code in (400, 422) and "clientInfo" in loaded.text
    assert live.mock.export_state() == before
    with pytest.raises(Exception, match="clientInfo"):
        live.mock.add_session(clientInfo=deep)


def test_what_the_mock_accepts_it_saves_and_reads_back(tmp_path: Any) -> None:
    mock = KontextMock(seed=3, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock)
    state.open()
    state.start()
    try:
        limit = {"name": "x", "deep": nested(MAX_STORED_DEPTH - 1)}
        made = mock.open_session(DEV_APP, token_identifier="t", authenticated_user_id="u",
                                 client_session_id="c", client_info=limit)
        state.commit()
    finally:
        state.close()
    document, _ = read_state_file(tmp_path / "state.json")
    again = KontextMock()
    again.import_state(orjson.loads(orjson.dumps(document)))
    assert again.get_session(DEV_APP, made.id)["clientInfo"] == limit


# -- 2. event streams ------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[KontextMock, RunningServer]]:
    mock = KontextMock(seed=7, now=NOW, frozen=True, max_event_streams=55)
    server = start(mock.app, "127.0.0.1", 0)
    try:
        yield mock, server
    finally:
        server.stop()


def open_stream(url: str) -> socket.socket:
    """An event stream over a raw socket, read up to its opening comment."""
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30)
    sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    while b": subscribed" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    return sock


def test_fifty_open_streams_starve_nothing(served: tuple[KontextMock, RunningServer]) -> None:
    mock, server = served
    streams = [open_stream(server.url) for _ in range(50)]
    try:
        assert mock.events.streams_open == 50
        with requests.Session() as http:
            # every kind of request is answered while the streams are open
            token = http.post(f"{server.url}/oauth2/token", timeout=30, data={
                "grant_type": "client_credentials"}, auth=("dev-client", "dev-secret"))
            assert token.status_code == 200
            assert http.post(f"{server.url}/_mock/clock/advance", json={"by": "PT1M"},
                             timeout=30).status_code == 200
            assert http.get(f"{server.url}{LIST}", headers=AUTH, timeout=30).status_code == 200
            revoked = http.delete(f"{server.url}{LIST}", headers=AUTH, timeout=30)
            assert revoked.status_code == 200
        # ... and each stream carries what happened
        expected = revoked.json()["disconnectedCount"]
        for sock in streams[:3]:
            seen = b""
            while seen.count(b"event: session.disconnected") < expected:
                seen += sock.recv(65536)
    finally:
        for sock in streams:
            sock.close()


def test_streams_past_the_cap_are_503_with_retry_after(
    served: tuple[KontextMock, RunningServer],
) -> None:
    mock, server = served
    streams = [open_stream(server.url) for _ in range(55)]
    try:
        refused = requests.get(f"{server.url}/_mock/events", timeout=30, stream=True)
        assert refused.status_code == 503
        assert refused.json()["error"] == "too_many_streams"
        assert int(refused.headers["Retry-After"]) > 0 and "x-request-id" in refused.headers
        assert mock.events.streams_open == 55
        streams.pop().close()
        wait_until(lambda: mock.events.streams_open == 54, "a place freed")
        streams.append(open_stream(server.url))  # and taken again
    finally:
        for sock in streams:
            sock.close()


def test_a_stream_whose_client_leaves_is_freed_at_once(
    served: tuple[KontextMock, RunningServer],
) -> None:
    mock, server = served
    sock = open_stream(server.url)
    assert mock.events.subscriber_count == 1
    sock.close()
    # no keep-alive write is needed to notice: the server reads the connection's end
    wait_until(lambda: mock.events.subscriber_count == 0, "the stream's subscription closed")


# -- 3. ghost writes ---------------------------------------------------------------------------------


def test_a_request_whose_client_left_before_it_ran_is_never_run(mock: KontextMock) -> None:
    server = start(mock.app, "127.0.0.1", 0, threads=1)
    held = HeldLock(mock.store.lock)
    connected = {s["id"] for s in mock.list_sessions(DEV_APP)}
    assert connected
    try:
        mock.store.lock = held  # type: ignore[assignment]
        port = server.port
        busy = socket.create_connection(("127.0.0.1", port), timeout=30)
        advance = b'{"by": "PT1S"}'
        busy.sendall(b"POST /_mock/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(advance), advance))
        wait_until(lambda: held.waiting == 1, "the one worker waits for the store")
        ghost = socket.create_connection(("127.0.0.1", port), timeout=30)
        ghost.sendall(f"DELETE {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer dev-token\r\n\r\n".encode())
        wait_until(lambda: server.server.requests_read == 2, "the revoke-all is read")
        # the client gives up (resets the connection) before a worker took its request; a
        # client that only half-closes is answered (tests/test_server_protocol.py)
        ghost.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ghost.close()
        wait_until(lambda: server.server.abandoned == 1, "the server saw it leave")
        held.gate.set()
        busy.recv(4096)
        wait_until(lambda: any(e["method"] == "DELETE" for e in mock.journal.entries()),
                   "the revoke-all is journaled")
        mock.store.lock = held.inner
        entry = mock.journal.entries(method="DELETE")[-1]
        assert entry["outcome"] == "abandoned" and entry["status"] is None
        assert {s["id"] for s in mock.list_sessions(DEV_APP)} == connected  # nothing revoked
        busy.close()
    finally:
        held.gate.set()
        mock.store.lock = held.inner
        server.stop()


# -- 4. slow and idle clients ------------------------------------------------------------------------


@pytest.mark.slow
def test_hundreds_of_trickling_and_idle_connections_lock_nobody_out() -> None:
    with serve_process("--seed", "3", until="Ctrl-C") as (url, _, _proc):
        port = int(url.rsplit(":", 1)[1])
        hostile: list[socket.socket] = []
        try:
            for i in range(600):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                if i % 2:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # trickling
                else:  # idle keep-alive: one answered request, then silence
                    sock.sendall(f"GET {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Authorization: Bearer dev-token\r\n\r\n".encode())
                    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
                hostile.append(sock)
            for sock in hostile[1::2]:
                with contextlib.suppress(OSError):  # (past its head deadline: answered 408)
                    sock.sendall(b"x")  # still trickling
            # a newcomer is answered beside all of them
            assert requests.get(f"{url}{LIST}", headers=AUTH, timeout=30).status_code == 200
        finally:
            for sock in hostile:
                sock.close()


# -- 6. the session cap ------------------------------------------------------------------------------


def test_no_path_makes_a_session_past_the_cap(client: Any, mock: KontextMock) -> None:
    cap = len(mock.store.sessions)
    mock.config = mock.config.with_changes(max_sessions=cap)
    agent = client.post(AGENT, json=AGENT_BODY, headers=AUTH)
    assert agent.status_code == 409 and agent.json["error"] == "too_many_sessions"
    assert str(cap) in agent.json["message"]
    control = client.post("/_mock/sessions", json={})
    assert control.status_code == 409 and str(cap) in control.json["message"]
    with pytest.raises(Exception, match=str(cap)):
        mock.add_session()
    assert len(mock.store.sessions) == cap
    # and the state at the cap exports and imports back
    again = KontextMock(max_sessions=cap)
    again.import_state(mock.export_state())
    assert len(again.store.sessions) == cap


# -- 7. the smaller ones -----------------------------------------------------------------------------


def test_listing_active_sessions_skips_the_disconnected_ones(mock: KontextMock) -> None:
    app = mock.add_application()
    for _ in range(3000):
        mock.add_session(app.id, "disconnected")
    mock.add_session(app.id, "active")
    mock.select_sessions(app.id, "active", 100)  # indexes the application's live sessions
    before = mock.store.sessions_scanned
    assert len(mock.select_sessions(app.id, "active", 100)) == 1
    assert mock.store.sessions_scanned - before == 1  # not the 3,000 disconnected ones
    for session in mock.store.application_sessions(app.id):
        if session.status == "active":
            mock.disconnect(app.id, session.id)
    assert mock.select_sessions(app.id, "active", 100) == []
    assert len(mock.select_sessions(app.id, "inactive", 5000)) == 3001


def test_a_form_body_that_is_not_utf8_says_so(client: Any) -> None:
    response = client.post("/oauth2/token", data=b"grant_type=client_credentials&client_id=\xff",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert "UTF-8" in response.json["error_description"]


# -- the Host rule on the public API -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["attacker.example.com", "127.0.0.1.nip.io:8080", "10.0.0.5"])
def test_the_public_api_answers_only_loopback_names_on_loopback(live: LiveMock, host: str) -> None:
    response = requests.get(f"{live.url}{LIST}", headers={**AUTH, "Host": host}, timeout=30)
    assert response.status_code == 421 and response.json()["error"] == "host_refused"
    assert "--allow-host" in response.json()["message"]


def test_allowed_host_names_are_answered(mock: KontextMock) -> None:
    mock.config = mock.config.with_changes(allowed_hosts=("kontext.lan",))
    server = start(mock.app, "127.0.0.1", 0)
    try:
        for host in ("kontext.lan", "kontext.lan:8080", "localhost"):
            response = requests.get(f"{server.url}{LIST}", headers={**AUTH, "Host": host}, timeout=30)
            assert response.status_code == 200, host
        assert requests.get(f"{server.url}{LIST}", headers={**AUTH, "Host": "other.lan"},
                            timeout=30).status_code == 421
    finally:
        server.stop()


def test_allow_host_is_an_option_of_serve() -> None:
    with serve_process("--allow-host", "kontext.lan") as (url, _, _proc):
        response = requests.get(f"{url}{LIST}", headers={**AUTH, "Host": "kontext.lan"}, timeout=30)
        assert response.status_code == 200
